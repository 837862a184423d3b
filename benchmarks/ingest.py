"""Benchmark: 100,000 measurements through POST /api/v1/measurements/bulk/ vs COPY.

Run: ``uv run python benchmarks/ingest.py``. Against a live gunicorn (2 threaded workers, config/gunicorn.conf.py)
on a fresh PostgreSQL database, the API side sends 10 requests of 10,000 rows one after
the other and is timed from the first request to the last answer (the client's JSON
encoding is done beforehand and reported apart). The COPY side loads the same rows into
the same table with psycopg's ``COPY ... FROM STDIN``, committed. Each side runs 3
times on an emptied table, alternating, and the medians are compared.
Goal (issue 3): the API ingests at least one third of the COPY rate.
"""

import argparse
import datetime as dt
import json
import math
import random
import time

import _support
import psycopg
import requests

KPI_COUNT = 100
MONTHS = 1_000
FIRST_PERIOD = dt.date(1900, 1, 1)
ROWS_PER_REQUEST = 10_000
ROW_COUNT = KPI_COUNT * MONTHS
GOAL_RATIO = 1 / 3

# (kpi_id, kpi_key, period, value)
Row = tuple[int, str, dt.date, float]


def seed_kpis() -> list[tuple[int, str]]:
    """Create 5 silos of 20 monthly KPIs; return (id, key) of each KPI."""
    from metrics.models import KPI, Direction, Silo

    silos = Silo.objects.bulk_create(
        Silo(slug=f"bench_{number}", name=f"Bench silo {number}", position=number)
        for number in range(5)
    )
    kpis = KPI.objects.bulk_create(
        KPI(
            silo=silos[number % 5],
            slug=f"kpi_{number:03d}",
            key=KPI.make_key(silos[number % 5].slug, f"kpi_{number:03d}"),
            name=f"Bench KPI {number}",
            unit="count",
            direction=Direction.HIGHER_IS_BETTER,
        )
        for number in range(KPI_COUNT)
    )
    return [(kpi.pk, kpi.key) for kpi in kpis]


def make_rows(kpis: list[tuple[int, str]]) -> list[Row]:
    """Return one row per KPI and month, grouped by KPI (10 KPIs per request)."""
    generator = random.Random(3)
    periods = [_support.month(index, first=FIRST_PERIOD) for index in range(MONTHS)]
    # Quarters are exact in binary floating point, so sums compare exactly.
    return [
        (kpi_id, key, period, generator.randrange(-4_000_000, 4_000_000) / 4)
        for kpi_id, key in kpis
        for period in periods
    ]


def encode_bodies(rows: list[Row]) -> list[bytes]:
    return [
        json.dumps(
            {
                "measurements": [
                    {"kpi": key, "period": period.isoformat(), "value": value}
                    for _, key, period, value in rows[start : start + ROWS_PER_REQUEST]
                ]
            }
        ).encode()
        for start in range(0, len(rows), ROWS_PER_REQUEST)
    ]


def run_api(session: _support.Session, bodies: list[bytes]) -> float:
    """POST every body in turn; return the seconds from the first to the last answer."""
    url = f"{session.server.url}/api/v1/measurements/bulk/"
    headers = {**session.headers(), "Content-Type": "application/json"}
    with requests.Session() as client:
        started = time.perf_counter()
        answers = [client.post(url, data=body, headers=headers) for body in bodies]
        elapsed = time.perf_counter() - started
    for number, answer in enumerate(answers):
        expected = {"created": ROWS_PER_REQUEST, "updated": 0}
        if answer.status_code != 200 or answer.json() != expected:
            raise _support.BenchmarkError(
                f"request {number}: {answer.status_code} {answer.text[:500]}"
            )
    return elapsed


def encode_copy_text(rows: list[Row]) -> bytes:
    """Return the rows in COPY's text format (the counterpart of the JSON bodies)."""
    now = dt.datetime.now(dt.UTC).isoformat()
    return "".join(
        f"{kpi_id}\t{period.isoformat()}\t{value!r}\t\t{now}\t{now}\n"
        for kpi_id, _, period, value in rows
    ).encode()


def run_copy(database_url: str, text: bytes) -> float:
    """COPY the rows in one transaction; return the seconds up to the commit."""
    with psycopg.connect(database_url) as conn:
        started = time.perf_counter()
        _support.copy_measurements(conn, text)
        conn.commit()
        return time.perf_counter() - started


def verify(database_url: str, rows: list[Row], side: str) -> None:
    """Check that exactly the rows sent are stored, with their values."""
    expected_sum = math.fsum(row[3] for row in rows)
    with psycopg.connect(database_url) as conn:
        count, total = conn.execute(
            "SELECT count(*), sum(value) FROM metrics_measurement"
        ).fetchone()
        stored = conn.execute(
            "SELECT kpi_id, period, value FROM metrics_measurement"
            " ORDER BY kpi_id, period"
        ).fetchall()
    sent = sorted((kpi_id, period, value) for kpi_id, _, period, value in rows)
    if count != ROW_COUNT or total != expected_sum or stored != sent:
        raise _support.BenchmarkError(
            f"{side}: stored {count} rows summing to {total}; sent {len(rows)} rows "
            f"summing to {expected_sum}"
            + ("" if stored == sent else "; the stored values differ")
        )


def empty_table(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("TRUNCATE metrics_measurement")


def warm_up(session: _support.Session) -> None:
    """Make each worker import the views and open its database connection."""
    with requests.Session() as client:
        for _ in range(4 * _support.WORKERS):
            answer = client.get(
                f"{session.server.url}/api/v1/kpis/?limit=1", headers=session.headers()
            )
            if answer.status_code != 200:
                raise _support.BenchmarkError(f"warm-up: {answer.status_code}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each side")
    arguments = parser.parse_args()

    with _support.bench_session() as session:
        machine = _support.machine_description()
        postgres = _support.postgres_version(session.database_url)
        rows = make_rows(seed_kpis())
        encoding_started = time.perf_counter()
        bodies = encode_bodies(rows)
        encoding = time.perf_counter() - encoding_started
        encoding_started = time.perf_counter()
        copy_text = encode_copy_text(rows)
        copy_encoding = time.perf_counter() - encoding_started
        warm_up(session)

        api_seconds: list[float] = []
        copy_seconds: list[float] = []
        for number in range(1, arguments.runs + 1):
            api_seconds.append(run_api(session, bodies))
            verify(session.database_url, rows, f"API run {number}")
            empty_table(session.database_url)
            copy_seconds.append(run_copy(session.database_url, copy_text))
            verify(session.database_url, rows, f"COPY run {number}")
            empty_table(session.database_url)
            print(
                f"run {number}: API {api_seconds[-1]:.2f} s, "
                f"COPY {copy_seconds[-1]:.2f} s",
                flush=True,
            )

    table = [
        (
            f"run {number}",
            f"{api:.2f}",
            f"{_support.rate(ROW_COUNT, api):,.0f}",
            f"{copy:.2f}",
            f"{_support.rate(ROW_COUNT, copy):,.0f}",
        )
        for number, (api, copy) in enumerate(
            zip(api_seconds, copy_seconds, strict=True), start=1
        )
    ]
    api_median = _support.median(api_seconds)
    copy_median = _support.median(copy_seconds)
    api_rate = _support.rate(ROW_COUNT, api_median)
    copy_rate = _support.rate(ROW_COUNT, copy_median)
    table.append(
        (
            "median",
            f"{api_median:.2f}",
            f"{api_rate:,.0f}",
            f"{copy_median:.2f}",
            f"{copy_rate:,.0f}",
        )
    )
    ratio = api_rate / copy_rate
    _support.print_table(
        f"ingest: {ROW_COUNT:,} measurements ({KPI_COUNT} monthly KPIs x {MONTHS:,} "
        f"months); API = {len(bodies)} bulk requests of {ROWS_PER_REQUEST:,} rows "
        f"to gunicorn ({_support.WORKERS} gthread workers)",
        ["", "API s", "API rows/s", "COPY s", "COPY rows/s"],
        table,
    )
    print(f"machine: {machine}; {postgres}")
    print(
        f"client-side encoding, not timed above: JSON {encoding:.2f} s "
        f"({sum(len(body) for body in bodies) / 1e6:.1f} MB), COPY text "
        f"{copy_encoding:.2f} s ({len(copy_text) / 1e6:.1f} MB)"
    )
    print(
        f"API / COPY (medians): {ratio:.2f}; goal >= {GOAL_RATIO:.2f}: "
        f"{'MET' if ratio >= GOAL_RATIO else 'NOT MET'}"
    )
    return 0


if __name__ == "__main__":
    _support.run(main)
