"""Benchmark: a bounded load test, BI clients reading while a pipeline writes, 60 s.

Run: ``uv run python benchmarks/load.py`` (``--seconds 10`` for a quick run). Loopback
only; it stops by itself. On a private PostgreSQL database (``ducttape_bench_load``:
``BENCH_DATABASE_URL``'s name plus ``_load``; created, migrated and dropped by the
script), seeded without timing (bulk_create and COPY, then VACUUM ANALYZE) with 4 silos
of 50 monthly KPIs x 36 months (2024-01 to 2026-12), one cycle with a goal on most
KPIs (so figures carry targets and attainments) and a few shared goals, plus a
"pipeline" silo of 100 KPIs with no measurements yet. Then a gunicorn as the
Dockerfile runs it (config/gunicorn.conf.py: 2 gthread workers) with production
settings, ``REDIS_URL`` on a private Redis database (default ``redis://127.0.0.1:6379/9``,
which must be empty; flushed at the end) so throttle counters and the roll-up queue
take the production path, and ``API_THROTTLE_RATE=1000000/min`` (the default 600/min
per user would throttle the test itself).

For ``--seconds`` (default 60), each client a thread with its own ``requests.Session``,
back to back (the next request as soon as the last answer is in):

- 4 BI clients (a BI-reader token) page through ``GET /api/v1/figures/?limit=500``,
  following ``next`` to the end, then starting over: one unfiltered, one
  ``period_after=2026-01-01``, one ``silo=bench_0``, one
  ``silo=bench_1&period_after=2025-07-01``;
- 1 BI client pulls ``GET /api/v1/figures/?format=csv&silo=bench_<n>`` for each seeded
  silo in turn, streamed, rows counted;
- 1 pipeline (a silo manager of the pipeline silo) posts
  ``POST /api/v1/measurements/bulk/`` batches of 500 new rows (5 new months of each
  pipeline KPI per batch, so no row is ever sent twice). Nothing is retried.

Reported per kind of request: requests, requests/s, p50/p99/max latency (a CSV to its
last byte) and errors (an exception, a non-2xx answer, or a 200 whose body is wrong: a
CSV with the wrong number of rows, a bulk answer other than ``{"created": 500,
"updated": 0}``). Afterwards, with SQL: every row of every batch answered 200 must be
stored exactly once with the value posted, nothing else stored for the pipeline's KPIs,
and a batch that failed must be stored either entirely or not at all.

Goals (issue 6): no errors, and every posted row stored exactly once. Exit 0 when it
measured, whether or not the goals were met (the last lines say PASS or MISS).
"""

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import math
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import _support
import psycopg
import redis
import requests

SILO_COUNT = 4
KPIS_PER_SILO = 50
MONTHS = 36
FIRST_PERIOD = dt.date(2024, 1, 1)
CYCLE_END = dt.date(2026, 12, 31)
PIPELINE_SILO = "pipeline"
PIPELINE_KPIS = 100
#: Months of every pipeline KPI per batch: 5 x 100 KPIs = 500 rows.
BATCH_MONTHS = 5
BATCH_ROWS = PIPELINE_KPIS * BATCH_MONTHS
PAGE_LIMIT = 500
SHARED_GOALS = 10
DEFAULT_SECONDS = 60
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"
THROTTLE_RATE = "1000000/min"
#: Per request (connect and each read): a request stuck longer counts as an error.
REQUEST_TIMEOUT = 60
SEED = 20261125
FIGURES = "/api/v1/figures/"
BULK = "/api/v1/measurements/bulk/"
PAGE = "figures page (JSON, limit 500)"
CSV = "figures CSV (one silo)"
POST = f"measurements bulk ({BATCH_ROWS} rows)"


# --- seeding (not timed) ---------------------------------------------------------


@dataclasses.dataclass
class Seeded:
    silo_slugs: list[str]
    measurements: int
    #: Rows per seeded silo (the fixed filters' expected counts).
    rows_per_silo: int
    pipeline_kpis: list[tuple[int, str]]  # (id, key)
    bi_token: str
    pipeline_token: str


def seed(url: str) -> Seeded:
    """Create silos, KPIs, a cycle, goals, shared goals, measurements and two users."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connections
    from rest_framework.authtoken.models import Token

    from core.roles import BI_READERS, SILO_MANAGERS
    from cycles.models import Cycle, Phase
    from goals.models import Contribution, Goal, SharedGoal
    from metrics.models import KPI, Aggregation, Direction, Silo

    generator = random.Random(SEED)
    silos = Silo.objects.bulk_create(
        [
            *(
                Silo(
                    slug=f"bench_{number}", name=f"Bench silo {number}", position=number
                )
                for number in range(SILO_COUNT)
            ),
            Silo(slug=PIPELINE_SILO, name="Pipeline silo", position=SILO_COUNT),
        ]
    )
    seeded_silos, pipeline_silo = silos[:SILO_COUNT], silos[SILO_COUNT]
    aggregations = [Aggregation.SUM, Aggregation.MEAN, Aggregation.LAST]

    def kpi(silo: Silo, number: int) -> KPI:
        # 60% higher is better, 30% lower is better, 10% within a band.
        direction = (
            Direction.HIGHER_IS_BETTER
            if number % 10 < 6
            else Direction.LOWER_IS_BETTER
            if number % 10 < 9
            else Direction.TARGET_BAND
        )
        band = direction == Direction.TARGET_BAND
        return KPI(
            silo=silo,
            slug=f"kpi_{number:03d}",
            key=KPI.make_key(silo.slug, f"kpi_{number:03d}"),
            name=f"{silo.name} KPI {number}",
            unit="count",
            direction=direction,
            band_low=500.0 if band else None,
            band_high=1_500.0 if band else None,
            aggregation=aggregations[number % 3],
        )

    kpis = KPI.objects.bulk_create(
        kpi(silo, number) for silo in seeded_silos for number in range(KPIS_PER_SILO)
    )
    pipeline_kpis = KPI.objects.bulk_create(
        kpi(pipeline_silo, number) for number in range(PIPELINE_KPIS)
    )
    cycle = Cycle.objects.create(
        name="FY2024-26",
        start_date=FIRST_PERIOD,
        end_date=CYCLE_END,
        phase=Phase.ALIGNING,
        budget=1_000_000,
    )

    # Values: a random walk per KPI around 1,000, in quarters (exact in binary).
    levels = {}
    for item in kpis:
        level, walk = generator.uniform(500, 1_500), []
        for _ in range(MONTHS):
            level += generator.gauss(0, 30)
            walk.append(round(level * 4) / 4)
        levels[item.pk] = walk

    def goal(item: KPI, start: float, end: float) -> Goal:
        shape: dict[str, float | None]
        if item.direction == Direction.HIGHER_IS_BETTER:
            shape = {"baseline": start, "target": end * 1.1}
        elif item.direction == Direction.LOWER_IS_BETTER:
            shape = {"baseline": start, "target": end * 0.9}
        else:
            shape = {"baseline": start, "target_low": 800.0, "target_high": 1_200.0}
        return Goal(
            cycle=cycle,
            kpi=item,
            period_start=FIRST_PERIOD,
            period_end=_support.month(MONTHS - 1, first=FIRST_PERIOD),
            **shape,
        )

    # A goal on 3 KPIs out of 4, and on every pipeline KPI (their first 36 months).
    goals = Goal.objects.bulk_create(
        [
            *(
                goal(item, levels[item.pk][0], levels[item.pk][-1])
                for number, item in enumerate(kpis)
                if number % 4
            ),
            *(goal(item, 1_000.0, 1_000.0) for item in pipeline_kpis),
        ]
    )
    # Shared goals of 5 goals from different silos; the first also counts a pipeline
    # KPI, so the pipeline's uploads take the roll-up scheduling path (Redis).
    shared = SharedGoal.objects.bulk_create(
        SharedGoal(cycle=cycle, name=f"Shared goal {number}")
        for number in range(SHARED_GOALS)
    )
    seeded_goals = [item for item in goals if item.kpi.silo_id != pipeline_silo.pk]
    by_silo: dict[int, list[Goal]] = {}
    for item in seeded_goals:
        by_silo.setdefault(item.kpi.silo_id, []).append(item)
    contributions = []
    for number, shared_goal in enumerate(shared):
        for slot in range(5):
            silo_goals = by_silo[seeded_silos[slot % SILO_COUNT].pk]
            contributions.append(
                Contribution(
                    shared_goal=shared_goal,
                    goal=silo_goals[number * 2 + slot // SILO_COUNT],
                    weight=generator.uniform(0.5, 2.0),
                )
            )
    pipeline_goal = next(item for item in goals if item.kpi_id == pipeline_kpis[0].pk)
    contributions.append(Contribution(shared_goal=shared[0], goal=pipeline_goal))
    Contribution.objects.bulk_create(contributions)

    users = get_user_model().objects
    reader = users.create_user("load_bi_reader", password=None)
    reader.groups.add(Group.objects.get(name=BI_READERS))
    pipeline = users.create_user("load_pipeline", password=None)
    pipeline.groups.add(Group.objects.get(name=SILO_MANAGERS))
    pipeline_silo.managers.add(pipeline)
    bi_token = Token.objects.create(user=reader).key
    pipeline_token = Token.objects.create(user=pipeline).key
    connections.close_all()

    now = dt.datetime.now(dt.UTC).isoformat()
    periods = [
        _support.month(index, first=FIRST_PERIOD).isoformat() for index in range(MONTHS)
    ]
    text = "".join(
        f"{kpi_id}\t{periods[index]}\t{value!r}\t\t{now}\t{now}\n"
        for kpi_id, walk in levels.items()
        for index, value in enumerate(walk)
    ).encode()
    count = _support.seed_measurements(url, text, expected=len(kpis) * MONTHS)
    return Seeded(
        silo_slugs=[silo.slug for silo in seeded_silos],
        measurements=count,
        rows_per_silo=KPIS_PER_SILO * MONTHS,
        pipeline_kpis=[(item.pk, item.key) for item in pipeline_kpis],
        bi_token=bi_token,
        pipeline_token=pipeline_token,
    )


# --- the server, with REDIS_URL ----------------------------------------------------


@contextlib.contextmanager
def load_server(url: str, log_dir: Path, redis_url: str) -> Iterator[_support.Server]:
    """``_support.live_server`` (the same gunicorn command), with REDIS_URL set, so the
    throttle counters and the roll-up queue live in Redis as in production."""
    with _support.live_server(
        url,
        log_dir,
        extra_environment={"REDIS_URL": redis_url, "API_THROTTLE_RATE": THROTTLE_RATE},
    ) as server:
        yield server


def private_redis(redis_url: str) -> redis.Redis:
    """Connect to the benchmark's Redis database; refuse one that holds keys."""
    client = redis.Redis.from_url(redis_url)
    try:
        keys = client.dbsize()
    except redis.RedisError as exc:
        raise _support.BenchmarkError(
            f"cannot reach Redis at {redis_url}: {exc}"
        ) from exc
    if keys:
        raise _support.BenchmarkError(
            f"{redis_url} holds {keys} keys: the benchmark flushes its Redis database "
            "at the end, so it must start empty (--redis-url picks another)."
        )
    return client


# --- the clients ---------------------------------------------------------------------


@dataclasses.dataclass
class Sample:
    kind: str
    client: str
    started: float  # time.monotonic()
    seconds: float
    error: str = ""  # empty: a success
    rows: int = 0


@dataclasses.dataclass
class Client:
    """One thread's requests and, for the paging clients, the passes it finished."""

    name: str
    kind: str
    description: str
    samples: list[Sample] = dataclasses.field(default_factory=list)
    #: Rows of each complete pass (all pages, first to last, without an error).
    passes: list[int] = dataclasses.field(default_factory=list)
    expected_pass_rows: int | None = None


@dataclasses.dataclass
class Batch:
    number: int
    rows: list[tuple[int, dt.date, float]]
    ok: bool = False
    error: str = ""


def _error_of(answer: requests.Response) -> str:
    return f"HTTP {answer.status_code}: {answer.text[:200]!r}"


def timed(
    client: Client, started: float, error: str, rows: int = 0, kind: str | None = None
) -> None:
    now = time.monotonic()
    client.samples.append(
        Sample(kind or client.kind, client.name, started, now - started, error, rows)
    )


def page_client(
    client: Client, base: str, token: str, query: str, deadline: float
) -> None:
    """Page through the figures until the deadline, starting over after the last page."""
    first = f"{base}{FIGURES}?limit={PAGE_LIMIT}{'&' + query if query else ''}"
    with requests.Session() as http:
        http.headers["Authorization"] = f"Token {token}"
        url, pass_rows = first, 0
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                answer = http.get(url, timeout=REQUEST_TIMEOUT)
                if answer.status_code != 200:
                    timed(client, started, _error_of(answer))
                    url, pass_rows = first, 0
                    continue
                body = answer.json()
                rows = len(body["results"])
            except (requests.RequestException, ValueError, KeyError) as exc:
                timed(client, started, f"{type(exc).__name__}: {exc}"[:200])
                url, pass_rows = first, 0
                continue
            timed(client, started, "", rows)
            pass_rows += rows
            if body["next"]:
                url = body["next"]
            else:
                client.passes.append(pass_rows)
                url, pass_rows = first, 0


def csv_client(
    client: Client, base: str, token: str, silos: list[str], rows: int, deadline: float
) -> None:
    """Pull each silo's figures as CSV in turn, streamed; check the row count."""
    with requests.Session() as http:
        http.headers["Authorization"] = f"Token {token}"
        number = 0
        while time.monotonic() < deadline:
            silo = silos[number % len(silos)]
            number += 1
            started = time.monotonic()
            lines, last = 0, b""
            try:
                with http.get(
                    f"{base}{FIGURES}?format=csv&silo={silo}",
                    stream=True,
                    timeout=REQUEST_TIMEOUT,
                ) as answer:
                    if answer.status_code != 200:
                        timed(client, started, _error_of(answer))
                        continue
                    for chunk in answer.iter_content(1 << 16):
                        lines += chunk.count(b"\n")
                        last = chunk[-1:]
            except requests.RequestException as exc:
                timed(client, started, f"{type(exc).__name__}: {exc}"[:200])
                continue
            if last != b"\n" or lines - 1 != rows:
                error = f"CSV of {silo}: {lines - 1} rows, expected {rows}"
                timed(client, started, error, max(lines - 1, 0))
            else:
                timed(client, started, "", rows)


def pipeline_batches(kpis: list[tuple[int, str]]) -> Iterator[Batch]:
    """Yield batches of new rows: months 5n..5n+4 of every pipeline KPI for batch n."""
    generator = random.Random(SEED + 1)
    number = 0
    while True:
        periods = [
            _support.month(number * BATCH_MONTHS + index, first=FIRST_PERIOD)
            for index in range(BATCH_MONTHS)
        ]
        if periods[-1].year > 9_000:
            return
        yield Batch(
            number,
            [
                (kpi_id, period, generator.randrange(-4_000_000, 4_000_000) / 4)
                for kpi_id, _ in kpis
                for period in periods
            ],
        )
        number += 1


def pipeline_client(
    client: Client,
    base: str,
    token: str,
    kpis: list[tuple[int, str]],
    batches: list[Batch],
    deadline: float,
) -> None:
    """Post batches back to back until the deadline; retry nothing."""
    keys = dict(kpis)
    with requests.Session() as http:
        http.headers.update(
            {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        )
        for batch in pipeline_batches(kpis):
            if time.monotonic() >= deadline:
                break
            body = json.dumps(
                {
                    "measurements": [
                        {"kpi": keys[kpi_id], "period": period.isoformat(), "value": v}
                        for kpi_id, period, v in batch.rows
                    ]
                }
            )
            batches.append(batch)
            started = time.monotonic()
            try:
                answer = http.post(f"{base}{BULK}", data=body, timeout=REQUEST_TIMEOUT)
                expected = {"created": len(batch.rows), "updated": 0}
                if answer.status_code != 200:
                    batch.error = _error_of(answer)
                elif answer.json() != expected:
                    batch.error = f"answer {answer.text[:200]!r}, expected {expected}"
                else:
                    batch.ok = True
            except (requests.RequestException, ValueError) as exc:
                batch.error = f"{type(exc).__name__}: {exc}"[:200]
            timed(client, started, batch.error, len(batch.rows) if batch.ok else 0)


def warm_up(base: str, seeded: Seeded) -> None:
    """Make every worker thread import the views and open its database connection."""
    bi = {"Authorization": f"Token {seeded.bi_token}"}
    pipeline = {"Authorization": f"Token {seeded.pipeline_token}"}
    with requests.Session() as http:
        for _ in range(4 * _support.WORKERS):
            for answer in (
                http.get(f"{base}{FIGURES}?limit=10", headers=bi, timeout=60),
                http.get(
                    f"{base}{FIGURES}?format=csv&kpi={seeded.silo_slugs[0]}.kpi_000",
                    headers=bi,
                    timeout=60,
                ),
                # No rows: authenticates and parses, writes nothing.
                http.post(
                    f"{base}{BULK}",
                    json={"measurements": []},
                    headers=pipeline,
                    timeout=60,
                ),
            ):
                if answer.status_code != 200:
                    raise _support.BenchmarkError(
                        f"warm-up {answer.request.method} {answer.url}: "
                        f"{_error_of(answer)}"
                    )


# --- CPU accounting (the machine is shared) ------------------------------------------


TICKS = os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """Return the CPU seconds all CPUs spent busy since boot (not idle or iowait)."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / TICKS


def process_cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def backend_pids(url: str) -> list[int]:
    """Return the PostgreSQL backends connected to the benchmark's database."""
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> "
            "pg_backend_pid()",
            [name],
        ).fetchall()
    return [pid for (pid,) in rows]


@dataclasses.dataclass
class Cpu:
    """CPU seconds used during the run: by whom."""

    machine: float = 0.0
    gunicorn: float = 0.0
    postgres: float = 0.0
    clients: float = 0.0

    @property
    def others(self) -> float:
        return max(0.0, self.machine - self.gunicorn - self.postgres - self.clients)


@contextlib.contextmanager
def cpu_accounting(server: _support.Server, url: str) -> Iterator[Cpu]:
    cpu = Cpu()
    workers = server.worker_pids()
    backends_before = {pid: process_cpu_seconds(pid) for pid in backend_pids(url)}
    gunicorn_before = sum(process_cpu_seconds(pid) for pid in workers)
    clients_before = time.process_time()
    machine_before = machine_busy_seconds()
    yield cpu
    cpu.machine = machine_busy_seconds() - machine_before
    cpu.clients = time.process_time() - clients_before
    cpu.gunicorn = sum(process_cpu_seconds(pid) for pid in workers) - gunicorn_before
    cpu.postgres = sum(
        process_cpu_seconds(pid) - backends_before.get(pid, 0.0)
        for pid in backend_pids(url)
    )


# --- the run ---------------------------------------------------------------------


def run_load(
    server: _support.Server, seeded: Seeded, seconds: float
) -> tuple[list[Client], list[Batch], float, float]:
    """Run every client until the deadline; return them, the batches, the start and
    the seconds from the start to the last answer."""
    base = server.url
    silo_rows = seeded.rows_per_silo
    paging = [
        ("bi-all", "", None),
        ("bi-2026", "period_after=2026-01-01", None),
        (f"bi-{seeded.silo_slugs[0]}", f"silo={seeded.silo_slugs[0]}", silo_rows),
        (
            f"bi-{seeded.silo_slugs[1]}-h2",
            f"silo={seeded.silo_slugs[1]}&period_after=2025-07-01",
            silo_rows // 2,
        ),
    ]
    clients: list[Client] = []
    threads: list[threading.Thread] = []
    batches: list[Batch] = []

    def start(client: Client, target: Callable[..., None], *arguments: object) -> None:
        clients.append(client)
        threads.append(
            threading.Thread(target=target, args=(client, *arguments), name=client.name)
        )

    started = time.monotonic()
    deadline = started + seconds
    for name, query, expected in paging:
        start(
            Client(name, PAGE, query or "(no filter)", expected_pass_rows=expected),
            page_client,
            base,
            seeded.bi_token,
            query,
            deadline,
        )
    start(
        Client("bi-csv", CSV, "silo=<each seeded silo in turn>"),
        csv_client,
        base,
        seeded.bi_token,
        seeded.silo_slugs,
        silo_rows,
        deadline,
    )
    start(
        Client("pipeline", POST, f"{BATCH_ROWS} new rows per batch"),
        pipeline_client,
        base,
        seeded.pipeline_token,
        seeded.pipeline_kpis,
        batches,
        deadline,
    )
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return clients, batches, started, time.monotonic() - started


# --- the check ---------------------------------------------------------------------


@dataclasses.dataclass
class Check:
    posted_ok_rows: int = 0
    stored_rows: int = 0
    distinct_rows: int = 0
    missing: int = 0
    wrong_value: int = 0
    stray: int = 0
    failed_batches: int = 0
    failed_stored: int = 0  # failed batches stored entirely (a lost answer)
    failed_partial: int = 0  # failed batches stored in part: must be 0

    @property
    def exactly_once(self) -> bool:
        return (
            self.missing == 0
            and self.wrong_value == 0
            and self.stray == 0
            and self.stored_rows == self.distinct_rows
            and self.stored_rows
            == self.posted_ok_rows + self.failed_stored * BATCH_ROWS
        )


def check_pipeline_rows(url: str, seeded: Seeded, batches: list[Batch]) -> Check:
    """Compare what the pipeline was told was stored with what the database holds."""
    ids = [kpi_id for kpi_id, _ in seeded.pipeline_kpis]
    with psycopg.connect(url) as conn:
        stored_rows, distinct_rows = conn.execute(
            "SELECT count(*), count(DISTINCT (kpi_id, period)) FROM metrics_measurement"
            " WHERE kpi_id = ANY(%s)",
            [ids],
        ).fetchone()
        stored = {
            (kpi_id, period): value
            for kpi_id, period, value in conn.execute(
                "SELECT kpi_id, period, value FROM metrics_measurement"
                " WHERE kpi_id = ANY(%s)",
                [ids],
            )
        }
    check = Check(stored_rows=stored_rows, distinct_rows=distinct_rows)
    sent = set()
    for batch in batches:
        present = [(kpi_id, period) in stored for kpi_id, period, _ in batch.rows]
        sent.update((kpi_id, period) for kpi_id, period, _ in batch.rows)
        if batch.ok:
            check.posted_ok_rows += len(batch.rows)
            check.missing += present.count(False)
            check.wrong_value += sum(
                1
                for kpi_id, period, value in batch.rows
                if (kpi_id, period) in stored and stored[kpi_id, period] != value
            )
        else:
            check.failed_batches += 1
            if all(present):
                check.failed_stored += 1
            elif any(present):
                check.failed_partial += 1
    check.stray = len(stored.keys() - sent)
    return check


# --- the report ------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted ``values``."""
    return values[max(0, math.ceil(fraction * len(values)) - 1)]


def latency_cells(samples: list[Sample]) -> list[str]:
    seconds = sorted(sample.seconds for sample in samples)
    if not seconds:
        return ["", "", ""]
    return [
        f"{percentile(seconds, 0.50) * 1000:,.0f}",
        f"{percentile(seconds, 0.99) * 1000:,.0f}",
        f"{seconds[-1] * 1000:,.0f}",
    ]


def p50_ms(samples: list[Sample]) -> str:
    seconds = sorted(sample.seconds for sample in samples)
    return f"{percentile(seconds, 0.5) * 1000:,.0f}" if seconds else "-"


def report(
    clients: list[Client], started: float, elapsed: float, seconds: float
) -> list[Sample]:
    samples = [sample for client in clients for sample in client.samples]
    kinds = [PAGE, CSV, POST]
    rows = []
    for kind in [*kinds, "all"]:
        chosen = [s for s in samples if kind in ("all", s.kind)]
        count = len({c.name for c in clients if kind in ("all", c.kind)})
        rows.append(
            [
                kind,
                count,
                f"{len(chosen):,}",
                f"{_support.rate(len(chosen), elapsed):,.1f}",
                *latency_cells(chosen),
                sum(1 for s in chosen if s.error),
                f"{sum(s.rows for s in chosen if not s.error):,}",
            ]
        )
    _support.print_table(
        f"load: {elapsed:.1f} s ({seconds:g} s of new requests, then the ones in "
        "flight); latency from the request to the last byte",
        [
            "request",
            "clients",
            "requests",
            "req/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "errors",
            "rows",
        ],
        rows,
    )

    # Per client, with the p50 of the first and the last quarter of the run: the
    # pipeline's rows make the unfiltered figures grow while they are paged.
    quarter = seconds / 4
    per_client = []
    for client in clients:
        early = [s for s in client.samples if s.started < started + quarter]
        late = [s for s in client.samples if s.started >= started + 3 * quarter]
        passes = ""
        if client.kind == PAGE:
            passes = f"{len(client.passes)}"
            if client.passes:
                low, high = min(client.passes), max(client.passes)
                passes += (
                    f" ({low:,}" + (f"-{high:,}" if high != low else "") + " rows)"
                )
        per_client.append(
            [
                client.name,
                client.description,
                f"{len(client.samples):,}",
                *latency_cells(client.samples),
                p50_ms(early),
                p50_ms(late),
                sum(1 for s in client.samples if s.error),
                passes,
            ]
        )
    _support.print_table(
        "per client (p50 first / last: of the requests started in the first and the "
        "last quarter of the run)",
        [
            "client",
            "query",
            "requests",
            "p50 ms",
            "p99 ms",
            "max ms",
            "p50 first",
            "p50 last",
            "errors",
            "complete passes",
        ],
        per_client,
    )
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds",
        type=float,
        default=DEFAULT_SECONDS,
        help="how long the clients start new requests",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL),
        help="a Redis database of its own: must be empty, flushed at the end",
    )
    arguments = parser.parse_args()
    if arguments.seconds <= 0:
        parser.error("--seconds must be positive")

    url = _support.database_url("_load")
    redis_client = private_redis(arguments.redis_url)
    redis_keys = celery_queue = 0
    with contextlib.ExitStack() as cleanup:
        # Registered first, so it runs last: after gunicorn has stopped.
        cleanup.callback(redis_client.flushdb)
        cleanup.enter_context(_support.django_database(url))
        machine = _support.machine_description()
        postgres = _support.postgres_version(url)
        seed_started = time.perf_counter()
        seeded = seed(url)
        print(
            f"seeded in {time.perf_counter() - seed_started:.1f} s (not timed): "
            f"{SILO_COUNT} silos x {KPIS_PER_SILO} KPIs x {MONTHS} months "
            f"({seeded.measurements:,} measurements), 1 cycle with goals, "
            f"{SHARED_GOALS} shared goals; pipeline silo of {PIPELINE_KPIS} KPIs",
            flush=True,
        )
        log_dir = Path(cleanup.enter_context(tempfile.TemporaryDirectory()))
        server = cleanup.enter_context(load_server(url, log_dir, arguments.redis_url))
        warm_up(server.url, seeded)
        load_before = os.getloadavg()
        wall_clock = dt.datetime.now(dt.UTC)
        print(
            f"running for {arguments.seconds:g} s from {wall_clock:%H:%M:%S} UTC "
            f"(load average {load_before[0]:.2f})",
            flush=True,
        )
        with cpu_accounting(server, url) as cpu:
            clients, batches, started, elapsed = run_load(
                server, seeded, arguments.seconds
            )
        load_after = os.getloadavg()
        check = check_pipeline_rows(url, seeded, batches)
        redis_keys = redis_client.dbsize()
        celery_queue = redis_client.llen("celery")
        log = server.log_path.read_text(errors="replace")
    database_left = _support.database_exists(url)
    redis_left = redis_client.dbsize()

    samples = report(clients, started, elapsed, arguments.seconds)
    errors = [sample for sample in samples if sample.error]
    print(f"\nmachine: {machine}; {postgres}; run started {wall_clock:%H:%M} UTC")
    print(
        f"server: gunicorn config.wsgi, config/gunicorn.conf.py, {_support.WORKERS} "
        f"gthread workers; REDIS_URL={arguments.redis_url}; "
        f"API_THROTTLE_RATE={THROTTLE_RATE} (the default, 600/min per user, would "
        "throttle the BI clients, who share one account)"
    )
    print(
        f"CPU seconds during the run ({2 * elapsed:.0f} available on 2 CPUs): machine "
        f"{cpu.machine:.0f}: gunicorn workers {cpu.gunicorn:.0f}, their PostgreSQL "
        f"backends {cpu.postgres:.0f}, the client threads {cpu.clients:.0f}, other "
        f"processes {cpu.others:.0f}; load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after"
    )
    timeouts = log.count("WORKER TIMEOUT")
    tracebacks = log.count("Traceback")
    print(
        f"gunicorn log: {tracebacks} tracebacks, {timeouts} worker timeouts; Redis "
        f"after the run: {redis_keys} keys, {celery_queue} roll-up task(s) queued"
    )
    for sample in errors[:10]:
        print(
            f"error: {sample.client} at +{sample.started - started:.1f} s: {sample.error}"
        )
    if len(errors) > 10:
        print(f"... and {len(errors) - 10} more errors")

    print(
        f"\ncheck: {len(batches)} batches posted, {len(batches) - check.failed_batches} "
        f"answered 200 ({check.posted_ok_rows:,} rows); stored for the pipeline's "
        f"KPIs: {check.stored_rows:,} rows ({check.distinct_rows:,} distinct (KPI, "
        f"period)); missing {check.missing}, wrong value {check.wrong_value}, not "
        f"posted {check.stray}"
    )
    print(
        f"check: failed batches {check.failed_batches}: stored entirely "
        f"{check.failed_stored}, in part {check.failed_partial} (all or nothing: "
        f"{'OK' if check.failed_partial == 0 else 'NOT OK'})"
    )
    fixed = [client for client in clients if client.expected_pass_rows is not None]
    wrong_passes = [
        (client.name, rows)
        for client in fixed
        for rows in client.passes
        if rows != client.expected_pass_rows
    ]
    print(
        "check: complete passes of the fixed filters returned the expected rows: "
        + ("OK" if not wrong_passes else f"NOT OK {wrong_passes[:5]}")
        + f" ({', '.join(f'{c.name} {len(c.passes)} x {c.expected_pass_rows:,}' for c in fixed)})"
    )
    print(
        f"cleanup: database {urlsplit(url).path.lstrip('/')} dropped: "
        f"{'no' if database_left else 'yes'}; Redis {arguments.redis_url} flushed: "
        f"{'yes' if redis_left == 0 else f'no ({redis_left} keys)'}"
    )

    total = len(samples)
    print(
        f"\nsummary: {total:,} requests in {elapsed:.1f} s = "
        f"{_support.rate(total, elapsed):,.1f} req/s, p50 "
        f"{latency_cells(samples)[0]} ms, p99 {latency_cells(samples)[1]} ms, "
        f"{len(errors)} errors"
    )
    print(f"  errors {len(errors)}; goal 0: {_support.verdict(not errors)}")
    print(
        f"  every posted row stored exactly once ({check.posted_ok_rows:,} rows): "
        f"{_support.verdict(check.exactly_once and check.failed_partial == 0)}"
    )
    return 0


if __name__ == "__main__":
    _support.run(main)
