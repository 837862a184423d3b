"""Benchmark: 1,000,000 figure rows as CSV through GET /api/v1/figures/ vs COPY TO.

Run: ``uv run python benchmarks/export.py``. Seeds a fresh PostgreSQL database with
1,000 monthly KPIs in 6 silos x 1,000 months of measurements (COPY) and silo goals on
half the KPIs in 20 yearly cycles, so about 12% of the rows carry a target and an
attainment. Then, against a live gunicorn (2 threaded workers, config/gunicorn.conf.py):

- API: ``GET /api/v1/figures/?format=csv`` downloaded as a stream (lines counted, body
  discarded), timed from the request to the last byte, while a thread polls the
  workers' VmRSS every 50 ms;
- COPY: ``COPY (<the endpoint's own SELECT>) TO STDOUT`` through psycopg, streamed and
  counted the same way. The SELECT is built by ``goals.figures`` itself, so the
  database does the same work on both sides; only the endpoint's Python (the
  attainment formula, CSV writing) is extra.

Goals (issue 3): the API streams at least one third of the COPY rate, and the worker
that serves it stays under 300 MB and flat. ``--profile`` also runs the export in this
process under cProfile and times its stages.
"""

import argparse
import cProfile
import datetime as dt
import io
import pstats
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import _support
import psycopg
import requests

SILO_COUNT = 6
GOAL_CYCLES = range(1964, 1984)  # FY1964..FY1983, one goal per cycle on every other KPI
FIRST_PERIOD = dt.date(1900, 1, 1)
GOAL_RATIO = 1 / 3
MEMORY_LIMIT_MB = 300
#: "Flat": after the first 10% of the rows, the serving worker grows by less than this.
FLAT_GROWTH_MB = 16
DOWNLOAD_CHUNK_BYTES = 1 << 16
WARM_UP_KPI = "bench_0.kpi_0000"


def seed(database_url: str, kpi_count: int, months: int) -> int:
    """Create silos, KPIs, cycles, goals and measurements; return the measurements."""
    from cycles.models import Cycle
    from goals.models import Goal
    from metrics.models import KPI, Aggregation, Direction, Silo

    silos = Silo.objects.bulk_create(
        Silo(slug=f"bench_{number}", name=f"Bench silo {number}", position=number)
        for number in range(SILO_COUNT)
    )
    aggregations = [Aggregation.SUM, Aggregation.MEAN, Aggregation.LAST]
    kpis = []
    for number in range(kpi_count):
        # 60% higher is better, 30% lower is better, 10% within a band.
        direction = (
            Direction.HIGHER_IS_BETTER
            if number % 10 < 6
            else Direction.LOWER_IS_BETTER
            if number % 10 < 9
            else Direction.TARGET_BAND
        )
        band = direction == Direction.TARGET_BAND
        silo = silos[number % SILO_COUNT]
        kpis.append(
            KPI(
                silo=silo,
                slug=f"kpi_{number:04d}",
                key=KPI.make_key(silo.slug, f"kpi_{number:04d}"),
                name=f"Bench KPI {number}",
                unit="count",
                direction=direction,
                band_low=-500_000.0 if band else None,
                band_high=500_000.0 if band else None,
                aggregation=aggregations[number % 3],
            )
        )
    kpis = KPI.objects.bulk_create(kpis)
    cycles = Cycle.objects.bulk_create(
        Cycle(
            name=f"FY{year}",
            start_date=dt.date(year, 1, 1),
            end_date=dt.date(year, 12, 31),
        )
        for year in GOAL_CYCLES
    )
    goals = []
    for cycle in cycles:
        for kpi in kpis[::2]:
            shape = {
                Direction.HIGHER_IS_BETTER: {"baseline": 0.0, "target": 1e6},
                Direction.LOWER_IS_BETTER: {"baseline": 1e6, "target": -1e6},
                Direction.TARGET_BAND: {
                    "baseline": 0.0,
                    "target_low": -250_000.0,
                    "target_high": 250_000.0,
                },
            }[kpi.direction]
            goals.append(
                Goal(
                    cycle=cycle,
                    kpi=kpi,
                    period_start=cycle.start_date,
                    period_end=cycle.start_date.replace(month=12),
                    **shape,
                )
            )
    Goal.objects.bulk_create(goals, batch_size=2000)

    generator = random.Random(7)
    now = dt.datetime.now(dt.UTC).isoformat()
    periods = [
        _support.month(index, first=FIRST_PERIOD).isoformat() for index in range(months)
    ]
    with psycopg.connect(database_url) as conn:
        with (
            conn.cursor() as cursor,
            cursor.copy(
                "COPY metrics_measurement"
                " (kpi_id, period, value, source, created_at, updated_at) FROM STDIN"
            ) as copy,
        ):
            for kpi in kpis:
                copy.write(
                    "".join(
                        f"{kpi.pk}\t{period}\t"
                        f"{generator.randrange(-4_000_000, 4_000_000) / 4!r}"
                        f"\t\t{now}\t{now}\n"
                        for period in periods
                    )
                )
        conn.commit()
        # Set hint bits and statistics now, or the first side to read pays for it.
        conn.autocommit = True
        conn.execute("VACUUM (ANALYZE)")
    return kpi_count * months


def figures_sql() -> str:
    """Return the statement the CSV export runs, with no filters (all rows, in order)."""
    # Private names on purpose: the benchmark must run exactly the endpoint's SQL.
    from goals.figures import _ORDER, FigureQuery

    sql, params = FigureQuery()._sql()
    if params:
        raise _support.BenchmarkError(
            f"unexpected parameters in the figures SQL: {params}"
        )
    return sql + _ORDER


@dataclass
class Download:
    seconds: float
    first_byte_seconds: float
    lines: int
    megabytes: float
    complete: bool
    error: str = ""
    tenth_at: float | None = None  # time.monotonic() when 10% of the rows had arrived


def run_api(session: _support.Session, expected_rows: int) -> Download:
    url = f"{session.server.url}/api/v1/figures/?format=csv"
    lines = size = 0
    first_byte = tenth_at = None
    last_byte = b""
    error = ""
    started = time.perf_counter()
    with requests.get(
        url, headers=session.headers(), stream=True, timeout=600
    ) as answer:
        if answer.status_code != 200 or not answer.headers.get(
            "Content-Type", ""
        ).startswith("text/csv"):
            raise _support.BenchmarkError(
                f"GET figures CSV: {answer.status_code} {answer.text[:500]}"
            )
        try:
            for chunk in answer.iter_content(DOWNLOAD_CHUNK_BYTES):
                if first_byte is None:
                    first_byte = time.perf_counter() - started
                lines += chunk.count(b"\n")
                size += len(chunk)
                last_byte = chunk[-1:]
                if tenth_at is None and lines > expected_rows // 10:
                    tenth_at = time.monotonic()
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - started
    return Download(
        seconds=seconds,
        first_byte_seconds=first_byte or seconds,
        lines=lines,
        megabytes=size / 1e6,
        complete=not error and last_byte == b"\n",
        error=error,
        tenth_at=tenth_at,
    )


def run_copy(database_url: str, statement: str) -> Download:
    first_byte = None
    lines = size = 0
    with psycopg.connect(database_url) as conn:
        started = time.perf_counter()
        with (
            conn.cursor() as cursor,
            cursor.copy(f"COPY ({statement}) TO STDOUT (FORMAT csv)") as copy,
        ):
            for block in copy:
                if first_byte is None:
                    first_byte = time.perf_counter() - started
                lines += bytes(block).count(b"\n")
                size += len(block)
        seconds = time.perf_counter() - started
    return Download(seconds, first_byte or seconds, lines, size / 1e6, complete=True)


@dataclass
class Memory:
    pid: int
    before_mb: float
    peak_mb: float
    end_mb: float
    after_tenth_growth_mb: float | None
    high_water_mb: float | None


def serving_worker_memory(
    sampler: _support.MemorySampler, tenth_at: float | None
) -> Memory:
    """Return the memory of the worker that grew most during the request."""

    def describe(pid: int, series: list[tuple[float, int]]) -> Memory:
        rss = [kb for _, kb in series]
        growth = None
        if tenth_at is not None:
            early = [kb for moment, kb in series if moment <= tenth_at]
            late = [kb for moment, kb in series if moment > tenth_at]
            if early and late:
                growth = (max(late) - max(early)) / 1024
        high_water = _support.status_kb(pid, "VmHWM")
        return Memory(
            pid,
            rss[0] / 1024,
            max(rss) / 1024,
            rss[-1] / 1024,
            growth,
            high_water / 1024 if high_water is not None else None,
        )

    workers = [describe(pid, s) for pid, s in sampler.by_worker().items() if s]
    if not workers:
        raise _support.BenchmarkError("no gunicorn worker memory could be read")
    return max(workers, key=lambda memory: memory.peak_mb - memory.before_mb)


def profile_in_process(statement: str, token: str, expected_rows: int) -> None:
    """Time the export's stages in this process, then profile one whole request."""
    import warnings

    from django.db import connection
    from django.test import Client

    from goals.api.figures import CSV_CHUNK_ROWS, FigureCSVRenderer
    from goals.figures import figure_list

    # collectstatic has not run here; WhiteNoise would say so on the first request.
    warnings.filterwarnings("ignore", "No directory at", UserWarning)

    def timed(label: str, work: Callable[[], int]) -> None:
        started = time.perf_counter()
        rows = work()
        print(
            f"  {label:<58} {time.perf_counter() - started:6.2f} s  ({rows:,} rows)",
            flush=True,
        )

    def figures_only() -> int:
        return sum(len(chunk) for chunk in figure_list().csv_chunks(CSV_CHUNK_ROWS))

    def figures_and_csv() -> int:
        stream = FigureCSVRenderer().stream(figure_list().csv_chunks(CSV_CHUNK_ROWS))
        return sum(text.count("\n") for text in stream) - 1

    def whole_request() -> int:
        response = Client().get(
            "/api/v1/figures/?format=csv", HTTP_AUTHORIZATION=f"Token {token}"
        )
        return sum(bytes(part).count(b"\n") for part in response.streaming_content) - 1

    def copy_in_process() -> int:
        with connection.cursor() as cursor:
            copy_statement = f"COPY ({statement}) TO STDOUT (FORMAT csv)"
            with cursor.cursor.copy(copy_statement) as copy:
                return sum(bytes(block).count(b"\n") for block in copy)

    print("\nin-process stages, each from the start:")
    timed("COPY (same SELECT) TO STDOUT (the database's share)", copy_in_process)
    timed("figure_list().csv_chunks(): fetch, shape CSV rows", figures_only)
    timed("+ FigureCSVRenderer.stream(): CSV text", figures_and_csv)
    timed("whole request through Django's test client", whole_request)

    profiler = cProfile.Profile()
    profiler.enable()
    rows = whole_request()
    profiler.disable()
    print(f"\ncProfile of one whole request ({rows:,} rows), by own time:")
    report = io.StringIO()
    pstats.Stats(profiler, stream=report).sort_stats("tottime").print_stats(18)
    print(_support.trim_profile(report.getvalue()))
    report = io.StringIO()
    pstats.Stats(profiler, stream=report).sort_stats("cumulative").print_stats(25)
    print("by cumulative time:")
    print(_support.trim_profile(report.getvalue()))
    if rows != expected_rows:
        print(f"(in-process request returned {rows:,} rows, not {expected_rows:,})")


def warm_up(session: _support.Session) -> None:
    """Run the CSV path on one KPI in each worker (imports, connection, plan cache)."""
    for _ in range(4 * _support.WORKERS):
        requests.get(
            f"{session.server.url}/api/v1/figures/?format=csv&kpi={WARM_UP_KPI}",
            headers=session.headers(),
            timeout=60,
        ).raise_for_status()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kpis", type=int, default=1_000)
    parser.add_argument("--months", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=3, help="runs of each side")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also time the stages and cProfile a request in this process",
    )
    arguments = parser.parse_args()

    apis: list[Download] = []
    copies: list[Download] = []
    memories: list[Memory] = []
    with _support.bench_session() as session:
        machine = _support.machine_description()
        postgres = _support.postgres_version(session.database_url)
        seed_started = time.perf_counter()
        expected_rows = seed(session.database_url, arguments.kpis, arguments.months)
        print(
            f"seeded {expected_rows:,} measurements in "
            f"{time.perf_counter() - seed_started:.1f} s",
            flush=True,
        )
        statement = figures_sql()
        warm_up(session)
        for number in range(1, arguments.runs + 1):
            with _support.MemorySampler(session.server) as sampler:
                apis.append(run_api(session, expected_rows))
            memories.append(serving_worker_memory(sampler, apis[-1].tenth_at))
            copies.append(run_copy(session.database_url, statement))
            print(
                f"run {number}: API {apis[-1].seconds:.2f} s ({apis[-1].lines:,} "
                f"lines), COPY {copies[-1].seconds:.2f} s ({copies[-1].lines:,} "
                f"lines), worker peak {memories[-1].peak_mb:.0f} MB",
                flush=True,
            )
        server_log = session.server.log_tail(10)
        timeout = session.server.timeout
        if arguments.profile:
            profile_in_process(statement, session.token, expected_rows)

    table = []
    for number, (api, copy, memory) in enumerate(
        zip(apis, copies, memories, strict=True), start=1
    ):
        table.append(
            (
                f"run {number}",
                f"{api.seconds:.2f}",
                f"{api.first_byte_seconds:.2f}",
                f"{_support.rate(api.lines - 1, api.seconds):,.0f}",
                f"{copy.seconds:.2f}",
                f"{copy.first_byte_seconds:.2f}",
                f"{_support.rate(copy.lines, copy.seconds):,.0f}",
                f"{memory.before_mb:.0f}",
                f"{memory.peak_mb:.0f}",
                _megabytes(memory.after_tenth_growth_mb, signed=True),
            )
        )
    api_seconds = _support.median([api.seconds for api in apis])
    copy_seconds = _support.median([copy.seconds for copy in copies])
    # Rates of the rows received (a download cut short counts what arrived).
    api_rate = _support.median(
        [_support.rate(api.lines - 1, api.seconds) for api in apis]
    )
    copy_rate = _support.median(
        [_support.rate(copy.lines, copy.seconds) for copy in copies]
    )
    peak = max(memory.peak_mb for memory in memories)
    growths = [
        memory.after_tenth_growth_mb
        for memory in memories
        if memory.after_tenth_growth_mb is not None
    ]
    growth = max(growths) if len(growths) == len(memories) else None
    table.append(
        (
            "median",
            f"{api_seconds:.2f}",
            "",
            f"{api_rate:,.0f}",
            f"{copy_seconds:.2f}",
            "",
            f"{copy_rate:,.0f}",
            "",
            f"{peak:.0f} (max)",
            f"{_megabytes(growth, signed=True)} (max)",
        )
    )
    _support.print_table(
        f"export: {expected_rows:,} figure rows ({arguments.kpis:,} KPIs x "
        f"{arguments.months:,} months, {SILO_COUNT} silos, "
        f"{apis[0].megabytes:.0f} MB of CSV); API = GET figures/?format=csv from "
        f"gunicorn ({_support.WORKERS} gthread workers, --timeout {timeout}); COPY = "
        "COPY (same SELECT) TO STDOUT",
        [
            "",
            "API s",
            "1st byte",
            "API rows/s",
            "COPY s",
            "1st byte",
            "COPY rows/s",
            "RSS before MB",
            "RSS peak MB",
            "growth MB",
        ],
        table,
    )
    high_water = max(
        (memory.high_water_mb for memory in memories if memory.high_water_mb),
        default=None,
    )
    print(
        "RSS: the serving worker's VmRSS, sampled every 50 ms; growth: after the "
        f"first 10% of the rows; worker VmHWM at the end: {_megabytes(high_water)} MB"
    )
    print(f"machine: {machine}; {postgres}")
    problems = []
    for number, api in enumerate(apis, start=1):
        if not api.complete:
            problems.append(
                f"run {number}: the CSV download broke off after {api.lines:,} lines "
                f"({api.error or 'no final newline'})"
            )
    counts = {api.lines - 1 for api in apis} | {copy.lines for copy in copies}
    if counts != {expected_rows}:
        problems.append(
            f"row counts differ: API {[api.lines - 1 for api in apis]}, COPY "
            f"{[copy.lines for copy in copies]}, stored {expected_rows:,}"
        )
    for problem in problems:
        print(f"PROBLEM: {problem}")
    if problems and server_log:
        print(f"gunicorn log (last lines):\n{server_log}")
    ratio = api_rate / copy_rate
    rate_met = ratio >= GOAL_RATIO and not problems
    memory_met = (
        peak < MEMORY_LIMIT_MB and growth is not None and growth < FLAT_GROWTH_MB
    )
    print(
        f"API / COPY (medians): {ratio:.2f}; goal >= {GOAL_RATIO:.2f}: "
        f"{'MET' if rate_met else 'NOT MET'}"
    )
    print(
        f"server memory: peak {peak:.0f} MB, growth {_megabytes(growth, signed=True)} "
        f"MB; goal under {MEMORY_LIMIT_MB} MB and flat (< {FLAT_GROWTH_MB} MB growth "
        f"after the first 10% of rows): {'MET' if memory_met else 'NOT MET'}"
    )
    return 0


def _megabytes(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.1f}" if signed else f"{value:.0f}"


if __name__ == "__main__":
    _support.run(main)
