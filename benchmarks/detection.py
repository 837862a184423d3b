"""Benchmark: conflict detection end to end on PostgreSQL, and its core vs a loop.

Run: ``uv run python benchmarks/detection.py``. On a private PostgreSQL database
(``ducttape_bench_detection``, created, migrated and dropped by the script), for K =
200, 2,000 and 10,000 monthly KPIs in 6 silos x 60 months, 5% of the values missing at
random, half higher-is-better and half lower-is-better, with 10 planted negative lagged
effects across silos (lag 1 to 3, coefficient -0.8 on the direction-adjusted changes):

- end to end: ``conflicts.services.detection_run_now(max_lag=3, min_pairs=12,
  q_threshold=0.05, block_size=1000)`` (read the measurements, compute, write the
  conflict register), timed in a fresh subprocess per K so that its peak RSS
  (``ru_maxrss``) is that K's own. Seeding (bulk_create and COPY, then VACUUM ANALYZE)
  is not timed. The tables are emptied between sizes;
- on K = 200 (the same data, in memory): ``scipy.stats.pearsonr`` per pair and lag in a
  Python loop vs the vectorized ``metrics.detection.find_associations``, which must
  find the same associations.

Each K runs both methods on the same data, each in its own subprocess: **drivers**
(the default: common drivers estimated and removed, prewhitening, one-sided tests) and
**pairwise** (the first method). Goals: with the drivers method K=2,000 end to end
<= 5 s, K=10,000 <= 60 s with a peak RSS under 2 GiB; the vectorized core at least
1,000 times faster than the loop. Exit 0 when it measured,
whether or not the goals were met (the last lines say PASS or MISS).
"""

import argparse
import cProfile
import datetime as dt
import io
import json
import os
import pstats
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _support
import numpy as np
import psycopg

SIZES = (200, 2_000, 10_000)
MONTHS = 60
FIRST_PERIOD = dt.date(2020, 1, 1)
SILO_COUNT = 6
MISSING = 0.05
PLANTED = 10
EFFECT = -0.8
#: The follower's own noise (its changes have unit scale before the effect is added):
#: r of about -0.94, so a planted effect survives the false-discovery step even among
#: the ~3e8 tests of K = 10,000.
FOLLOWER_NOISE = 0.3
SEED = 20261123
OPTIONS = {"max_lag": 3, "min_pairs": 12, "q_threshold": 0.05, "block_size": 1000}
CHILD_TIMEOUT = 1800
RESULT_PREFIX = "RESULT "

GOAL_SECONDS = {2_000: 5.0, 10_000: 60.0}
METHODS = ("drivers", "pairwise")
GOAL_MEMORY_K = 10_000
GOAL_MEMORY_MB = 2_048
GOAL_SPEED_UP = 1_000
LOOP_KPIS = 200
CORE_REPEATS = 7


def max_rss_mb() -> float:
    """Peak RSS of this process so far, in MiB (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Data:
    """K KPIs' levels (months x K, NaN where missing), their signs, silos and the
    planted effects as (leader column, follower column, lag)."""

    levels: np.ndarray
    sign: np.ndarray
    silo: np.ndarray
    planted: list[tuple[int, int, int]]

    @property
    def changes(self) -> np.ndarray:
        from metrics.detection import period_changes

        return period_changes(self.levels, self.sign)


def make_data(kpis: int, seed: int = SEED) -> Data:
    """Random walks with planted negative lagged effects, 5% of the values missing."""
    rng = np.random.default_rng(seed)
    columns = np.arange(kpis)
    silo = columns % SILO_COUNT
    # Alternate per round of silos, so that each silo has both directions.
    sign = np.where((columns // SILO_COUNT) % 2 == 0, 1.0, -1.0)
    # Direction-adjusted changes, unit scale; the effects are planted on these.
    changes = rng.standard_normal((MONTHS - 1, kpis))
    planted: list[tuple[int, int, int]] = []
    order = rng.permutation(kpis)
    for leader, follower in zip(order[0::2], order[1::2], strict=False):
        if len(planted) == PLANTED:
            break
        if silo[leader] == silo[follower]:
            continue
        lag = 1 + len(planted) % 3
        # Leaders and followers are all distinct KPIs: no effect feeds another.
        changes[lag:, follower] = (
            EFFECT * changes[:-lag, leader] + FOLLOWER_NOISE * changes[lag:, follower]
        )
        planted.append((int(leader), int(follower), lag))
    scale = 10.0 ** rng.uniform(0, 4, kpis)
    start = scale * rng.uniform(50, 150, kpis)
    levels = np.vstack([start, start + np.cumsum(changes * scale * sign, axis=0)])
    levels[rng.random(levels.shape) < MISSING] = np.nan
    return Data(levels=levels, sign=sign, silo=silo, planted=planted)


# -- the database side ----------------------------------------------------------------


def empty_tables(url: str) -> None:
    """Empty everything detection reads or writes (and what refers to it)."""
    from conflicts.models import Conflict, ConflictTransition, DetectionRun
    from metrics.models import KPI, Measurement, Silo

    tables = ", ".join(
        model._meta.db_table
        for model in (
            ConflictTransition,
            Conflict,
            DetectionRun,
            Measurement,
            KPI,
            Silo,
        )
    )
    with psycopg.connect(url) as conn:
        conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


def seed(url: str, data: Data) -> tuple[np.ndarray, int]:
    """Create the silos, KPIs and measurements; return the KPI ids and the rows."""
    from django.db import connections

    from metrics.models import KPI, Direction, Silo

    silos = Silo.objects.bulk_create(
        Silo(slug=f"bench_{number}", name=f"Bench silo {number}", position=number)
        for number in range(SILO_COUNT)
    )
    kpis = KPI.objects.bulk_create(
        (
            KPI(
                silo=silos[data.silo[column]],
                slug=f"kpi_{column:05d}",
                key=KPI.make_key(silos[data.silo[column]].slug, f"kpi_{column:05d}"),
                name=f"Bench KPI {column}",
                unit="count",
                direction=Direction.HIGHER_IS_BETTER
                if data.sign[column] > 0
                else Direction.LOWER_IS_BETTER,
            )
            for column in range(data.sign.size)
        ),
        batch_size=2_000,
    )
    connections.close_all()
    kpi_ids = np.array([kpi.pk for kpi in kpis], dtype=np.int64)

    by_kpi = data.levels.T
    columns, months = np.nonzero(~np.isnan(by_kpi))
    values = by_kpi[columns, months]
    periods = [
        _support.month(index, first=FIRST_PERIOD).isoformat() for index in range(MONTHS)
    ]
    ids = kpi_ids.tolist()
    now = dt.datetime.now(dt.UTC).isoformat()
    text = "".join(
        f"{ids[column]}\t{periods[index]}\t{value!r}\t\t{now}\t{now}\n"
        for column, index, value in zip(
            columns.tolist(), months.tolist(), values.tolist(), strict=True
        )
    ).encode()
    return kpi_ids, _support.seed_measurements(url, text, expected=values.size)


def detect_in_child(url: str, kpis: int, profile: bool, method: str) -> dict[str, Any]:
    """Run ``--k`` in a fresh interpreter; return its result (or the error)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--k", str(kpis)]
    command += ["--database-url", url, "--method", method]
    command += ["--profile"] if profile else []
    try:
        finished = subprocess.run(  # noqa: S603 (our own interpreter and script)
            command,
            cwd=_support.ROOT,
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT,
            check=False,
            preexec_fn=_support._die_with_parent,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"no result within {CHILD_TIMEOUT} s"}
    result: dict[str, Any] = {}
    for line in finished.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX) :])
        elif line.strip():
            print(f"  | {line}")
    if finished.returncode != 0 or not result:
        tail = "\n".join(finished.stderr.splitlines()[-15:])
        return {"error": f"exit {finished.returncode}: {tail}"}
    return result


def child(url: str, kpis: int, profile: bool, method: str) -> int:
    """Time ``detection_run_now`` once in this process and print one JSON line."""
    _support.setup_django(url)
    from django.db import connection

    from conflicts import services

    connection.ensure_connection()
    before_mb = max_rss_mb()
    marks: list[tuple[float, str, float]] = []

    def progress(line: str) -> None:
        marks.append((time.perf_counter(), line, max_rss_mb()))

    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    run = services.detection_run_now(**OPTIONS, method=method, progress=progress)
    if profiler is not None:
        profiler.disable()
    seconds = time.perf_counter() - started
    peak_mb = max_rss_mb()

    read_at, read_mb = next(
        (moment, rss) for moment, line, rss in marks if line.startswith("Read ")
    )
    computed_at, computed_mb = next(
        (moment, rss) for moment, line, rss in marks if " tests, " in line
    )
    if profiler is not None:
        report = io.StringIO()
        pstats.Stats(profiler, stream=report).sort_stats("tottime").print_stats(20)
        print(f"cProfile of K={kpis:,} ({seconds:.2f} s under the profiler), own time:")
        print(_support.trim_profile(report.getvalue()))
    result = {
        "kpis": run.kpis,
        "measurements": run.measurements,
        "status": run.status,
        "tests": run.tests,
        "blocks": run.blocks,
        "conflicts": run.conflicts_found,
        "synergies": run.synergies_found,
        "seconds": seconds,
        "read_seconds": read_at - started,
        "compute_seconds": computed_at - read_at,
        "write_seconds": started + seconds - computed_at,
        "rss_before_mb": before_mb,
        "rss_after_read_mb": read_mb,
        "rss_after_compute_mb": computed_mb,
        "peak_rss_mb": peak_mb,
        "profiled": profile,
    }
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


def empty_register(url: str) -> None:
    """Empty the register and the runs (the measurements stay): each method starts
    from the same state."""
    from conflicts.models import Conflict, ConflictTransition, DetectionRun

    tables = ", ".join(
        model._meta.db_table for model in (ConflictTransition, Conflict, DetectionRun)
    )
    with psycopg.connect(url) as conn:
        conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


def planted_found(kpi_ids: np.ndarray, data: Data) -> tuple[int, int]:
    """Return (planted effects in the register with their lag, other conflicts)."""
    from conflicts.models import Conflict

    found = set(
        Conflict.objects.filter(is_observed=True).values_list(
            "leader_kpi_id", "affected_kpi_id", "lag"
        )
    )
    planted = {
        (int(kpi_ids[leader]), int(kpi_ids[follower]), lag)
        for leader, follower, lag in data.planted
    }
    return len(found & planted), len(found - planted)


class OtherCpu:
    """CPU seconds the whole machine spent outside this process's children (PostgreSQL
    serving the run included) while the block ran: a busy machine slows the run."""

    seconds = 0.0
    available = 0.0

    @staticmethod
    def _busy_and_total() -> tuple[float, float]:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
        idle = fields[3] + fields[4]
        total = sum(fields[:8])
        tick = os.sysconf("SC_CLK_TCK")
        return (total - idle) / tick, total / tick

    @staticmethod
    def _children() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def __enter__(self) -> "OtherCpu":
        self._start = (*self._busy_and_total(), self._children())
        return self

    def __exit__(self, *exc_info: object) -> None:
        busy, total = self._busy_and_total()
        children = self._children()
        self.seconds = max(0.0, busy - self._start[0] - (children - self._start[2]))
        self.available = total - self._start[1]


# -- the loop vs the vectorized core --------------------------------------------------


def loop_associations(
    changes: np.ndarray, silo: np.ndarray
) -> tuple[list[tuple[int, int, int, float, float]], int]:
    """The straightforward way: scipy's pearsonr per pair and lag, then BH.

    Every ordered pair of KPIs of different silos, lags 0..max_lag, on the paired
    changes where both exist; pairs with fewer than min_pairs are not tested. At lag 0
    (a, b) and (b, a) are the same test, run once with the lower column as the leader,
    as the vectorized core does, so that both test the same family. Return the
    associations as (leader, follower, lag, r, q) and the number of tests.
    """
    from scipy import stats

    from metrics.detection import benjamini_hochberg

    max_lag, min_pairs = OPTIONS["max_lag"], OPTIONS["min_pairs"]
    periods, kpis = changes.shape
    tests: list[tuple[int, int, int, float, float]] = []
    for leader in range(kpis):
        for follower in range(kpis):
            if silo[leader] == silo[follower]:
                continue
            for lag in range(max_lag + 1):
                if lag == 0 and leader > follower:
                    continue
                x = changes[: periods - lag, leader]
                y = changes[lag:, follower]
                both = ~np.isnan(x) & ~np.isnan(y)
                if both.sum() < min_pairs:
                    continue
                r, p = stats.pearsonr(x[both], y[both])
                tests.append((leader, follower, lag, float(r), float(p)))
    q = benjamini_hochberg(np.array([test[4] for test in tests]))
    best: dict[tuple[int, int], tuple[float, int, int]] = {}
    for index, (leader, follower, lag, _, p) in enumerate(tests):
        if q[index] < OPTIONS["q_threshold"]:
            key = (p, lag, index)
            if (leader, follower) not in best or key < best[(leader, follower)]:
                best[(leader, follower)] = key
    found = [
        (*tests[index][:4], float(q[index]))
        for _, (_, _, index) in sorted(best.items())
    ]
    return found, len(tests)


@dataclass
class Comparison:
    kpis: int
    loop_seconds: float
    loop_tests: int
    core_seconds: float
    core_all_seconds: list[float]
    loop_found: int
    core_found: int
    same: bool
    max_r_difference: float


def compare_loop_and_core(kpis: int, repeats: int) -> Comparison:
    from metrics.detection import find_associations

    data = make_data(kpis)
    changes = data.changes
    same_group = data.silo[:, None] == data.silo[None, :]
    core_options = {key: value for key, value in OPTIONS.items() if key != "block_size"}

    started = time.perf_counter()
    looped, loop_tests = loop_associations(changes, data.silo)
    loop_seconds = time.perf_counter() - started

    core_all = []
    core: list[Any] = []
    for _ in range(repeats):
        started = time.perf_counter()
        core = find_associations(
            changes,
            same_group=same_group,
            block_size=OPTIONS["block_size"],
            **core_options,
        )
        core_all.append(time.perf_counter() - started)

    loop_keys = [(lead, follow, lag) for lead, follow, lag, _, _ in looped]
    core_keys = [(a.leader, a.follower, a.lag) for a in core]
    same = loop_keys == core_keys
    difference = (
        max(
            (abs(a.r - row[3]) for a, row in zip(core, looped, strict=True)),
            default=0.0,
        )
        if same
        else float("nan")
    )
    return Comparison(
        kpis=kpis,
        loop_seconds=loop_seconds,
        loop_tests=loop_tests,
        core_seconds=min(core_all),
        core_all_seconds=core_all,
        loop_found=len(looped),
        core_found=len(core),
        same=same,
        max_r_difference=difference,
    )


# -- the report -----------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default=",".join(str(size) for size in SIZES),
        help="comma-separated KPI counts for the end-to-end runs",
    )
    parser.add_argument("--loop-kpis", type=int, default=LOOP_KPIS)
    parser.add_argument(
        "--repeats", type=int, default=CORE_REPEATS, help="runs of the vectorized core"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile each end-to-end run (its times then include the profiler)",
    )
    # Internal: one end-to-end run in this process, on a seeded database.
    parser.add_argument("--k", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--method", default="drivers", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.k is not None:
        return child(
            arguments.database_url, arguments.k, arguments.profile, arguments.method
        )
    sizes = [int(size) for size in arguments.sizes.split(",") if size.strip()]

    url = _support.database_url("_detection")
    runs: list[tuple[int, str, int, dict[str, Any], tuple[int, int], float]] = []
    with _support.django_database(url):
        from django.db import connections

        machine = _support.machine_description()
        postgres = _support.postgres_version(url)
        for kpis in sizes:
            empty_tables(url)
            data = make_data(kpis)
            seed_started = time.perf_counter()
            kpi_ids, measurements = seed(url, data)
            seed_seconds = time.perf_counter() - seed_started
            print(
                f"K={kpis:,}: seeded {measurements:,} measurements in "
                f"{seed_seconds:.1f} s (not timed); detecting in a subprocess...",
                flush=True,
            )
            for method in METHODS:
                empty_register(url)
                with OtherCpu() as other:
                    result = detect_in_child(url, kpis, arguments.profile, method)
                result["other_cpu"] = other.seconds
                found = (
                    planted_found(kpi_ids, data) if "error" not in result else (0, 0)
                )
                connections.close_all()
                runs.append((kpis, method, measurements, result, found, seed_seconds))
                report_run(kpis, method, result, found, other)
        empty_tables(url)
    return finish(arguments, runs, machine, postgres)


def report_run(kpis, method, result, found, other) -> None:  # type: ignore[no-untyped-def]
    """Print one run's line as it finishes."""
    if "error" in result:
        print(f"K={kpis:,} {method}: FAILED: {result['error']}", flush=True)
    else:
        print(
            f"K={kpis:,} {method}: {result['seconds']:.2f} s end to end (read "
            f"{result['read_seconds']:.2f}, compute "
            f"{result['compute_seconds']:.2f}, write "
            f"{result['write_seconds']:.2f}), {result['tests']:,} tests, "
            f"{result['conflicts']} conflicts, planted found {found[0]}/"
            f"{PLANTED}, peak RSS {result['peak_rss_mb']:,.0f} MiB; CPU "
            f"used by other processes meanwhile: {other.seconds:.1f} s "
            f"of {other.available:.1f} s",
            flush=True,
        )


def finish(arguments, runs, machine, postgres) -> int:  # type: ignore[no-untyped-def]
    """Compare the loop with the core, print the tables and the goals."""
    print(
        f"K={arguments.loop_kpis}: pearsonr loop vs vectorized core (in memory)...",
        flush=True,
    )
    comparison = compare_loop_and_core(arguments.loop_kpis, arguments.repeats)

    rows = []
    for kpis, method, measurements, result, found, _ in runs:
        if "error" in result:
            rows.append(
                (f"{kpis:,}", method, f"{measurements:,}", "failed", *[""] * 10)
            )
            continue
        rows.append(
            (
                f"{kpis:,}",
                method,
                f"{measurements:,}",
                f"{result['tests']:,}",
                f"{result['blocks']}",
                f"{result['conflicts']}",
                f"{found[0]}/{PLANTED}",
                f"{result['synergies']}",
                f"{result['read_seconds']:.2f}",
                f"{result['compute_seconds']:.2f}",
                f"{result['write_seconds']:.2f}",
                f"{result['seconds']:.2f}",
                f"{result['rss_before_mb']:,.0f}",
                f"{result['peak_rss_mb']:,.0f}",
            )
        )
    option_text = ", ".join(f"{key}={value}" for key, value in OPTIONS.items())
    _support.print_table(
        f"detection end to end: detection_run_now({option_text}); monthly KPIs in "
        f"{SILO_COUNT} silos x {MONTHS} months, {MISSING:.0%} missing, {PLANTED} "
        f"planted effects (r about -0.94, lag 1-3); one subprocess per K"
        + (" (under cProfile)" if arguments.profile else ""),
        [
            "K",
            "method",
            "measurements",
            "tests",
            "blocks",
            "conflicts",
            "planted found",
            "synergies",
            "read s",
            "compute s",
            "write s",
            "total s",
            "RSS start MiB",
            "peak RSS MiB",
        ],
        rows,
    )
    print(
        "read: run start + conflicts.inputs.load_matrices; compute: engine.scan_all (blocks + "
        "false-discovery step); write: services.detection_run_finish (register reconcile, run "
        "record). RSS start: after Django setup and imports, before the run."
    )
    for kpis, method, _, result, _, _ in runs:
        if "error" not in result:
            print(
                f"  K={kpis:,} {method}: peak RSS after read {result['rss_after_read_mb']:,.0f} "
                f"MiB, after compute {result['rss_after_compute_mb']:,.0f} MiB, at "
                f"the end {result['peak_rss_mb']:,.0f} MiB"
            )

    speed_up = comparison.loop_seconds / comparison.core_seconds
    _support.print_table(
        f"K={comparison.kpis}: scipy.stats.pearsonr per pair and lag (Python loop, "
        f"once) vs metrics.detection.find_associations (best of "
        f"{len(comparison.core_all_seconds)})",
        ["", "seconds", "tests", "associations"],
        [
            (
                "pearsonr loop",
                f"{comparison.loop_seconds:.3f}",
                f"{comparison.loop_tests:,}",
                comparison.loop_found,
            ),
            (
                "find_associations",
                f"{comparison.core_seconds:.4f}",
                "",
                comparison.core_found,
            ),
        ],
    )
    print(
        "core runs: "
        + ", ".join(f"{seconds * 1000:.1f}" for seconds in comparison.core_all_seconds)
        + f" ms (median {_support.median(comparison.core_all_seconds) * 1000:.1f} ms: "
        f"{comparison.loop_seconds / _support.median(comparison.core_all_seconds):,.0f}x)"
    )
    print(
        "same associations (pairs and lags): "
        + (
            f"yes, |r| differs by at most {comparison.max_r_difference:.1e}"
            if comparison.same
            else "NO"
        )
    )
    print(f"machine: {machine}; {postgres}")

    print("\ngoals:")
    by_size = {
        kpis: result for kpis, method, _, result, _, _ in runs if method == "drivers"
    }
    for kpis, limit in GOAL_SECONDS.items():
        result = by_size.get(kpis)
        if result is None:
            print(f"  K={kpis:,} drivers end to end <= {limit:g} s: not run")
        elif "error" in result:
            print(f"  K={kpis:,} end to end <= {limit:g} s: MISS (the run failed)")
        else:
            print(
                f"  K={kpis:,} drivers end to end {result['seconds']:.2f} s; goal <= "
                f"{limit:g} s: {_support.verdict(result['seconds'] <= limit)}"
            )
    result = by_size.get(GOAL_MEMORY_K)
    if result is None:
        print(f"  K={GOAL_MEMORY_K:,} peak RSS < 2 GiB: not run")
    elif "error" in result:
        print(f"  K={GOAL_MEMORY_K:,} peak RSS < 2 GiB: MISS (the run failed)")
    else:
        print(
            f"  K={GOAL_MEMORY_K:,} peak RSS {result['peak_rss_mb']:,.0f} MiB; goal < "
            f"2 GiB ({GOAL_MEMORY_MB:,} MiB): "
            f"{_support.verdict(result['peak_rss_mb'] < GOAL_MEMORY_MB)}"
        )
    print(
        f"  K={comparison.kpis} core vs loop {speed_up:,.0f}x "
        f"({comparison.loop_seconds:.2f} s / {comparison.core_seconds * 1000:.2f} ms); "
        f"goal >= {GOAL_SPEED_UP:,}x: {_support.verdict(speed_up >= GOAL_SPEED_UP)}"
        + ("" if comparison.same else " (but the associations differ)")
    )
    if arguments.profile:
        print("  (end-to-end times measured under cProfile: slower than without)")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    _support.run(main)
