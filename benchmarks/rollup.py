"""Benchmark: the shared-goal roll-up on PostgreSQL, 1,000 shared goals x 10 goals.

Run: ``uv run python benchmarks/rollup.py``. On a private PostgreSQL database
(``ducttape_bench_rollup``, created, migrated and dropped by the script), seeded without
timing (bulk_create, COPY, then VACUUM ANALYZE) with 6 silos, one cycle of 36 months
(2024-01 to 2026-12, phase "aligning"), 10,000 monthly KPIs with a value for each month
(360,000 measurements; higher-is-better, lower-is-better and target-band KPIs, sum,
mean and last aggregations), one goal per KPI over the whole cycle, 1,000 shared goals
of 10 contributions each (random weights, at least 2 silos) and one guardrail on 30%
of them (some breached):

- ``goals.rollups.shared_goals_rollup(reason="command", day=<today>)`` with all 1,000 shared goals
  open: once to warm up, then ``--runs`` timed runs on the same day (each replaces the
  day's snapshots: the idempotent path of the nightly re-runs), then one run under
  ``CaptureQueriesContext`` that counts the SQL queries and times each;
- the same with 900 of the shared goals moved to a second, closed cycle (100 open);
- for a sample of shared goals, the progress recomputed here from the raw measurement
  values (read with plain SQL) and the formulas of goals/progress.py's docstring,
  compared to the snapshot to 1e-9.

Goals (issue: roll-ups): the roll-up of 1,000 shared goals in at most 5 s, and the
same number of SQL queries for 100 and for 1,000 shared goals. Exit 0 when it measured,
whether or not the goals were met (the last lines say PASS or MISS).
"""

import argparse
import cProfile
import datetime as dt
import io
import math
import os
import pstats
import time
from dataclasses import dataclass
from typing import Any

import _support
import numpy as np
import psycopg
from psycopg import sql
from psycopg.rows import namedtuple_row

SILO_COUNT = 6
KPI_COUNT = 10_000
MONTHS = 36
FIRST_PERIOD = dt.date(2024, 1, 1)
CYCLE_END = dt.date(2026, 12, 31)
SHARED_GOALS = 1_000
SMALL_SHARED_GOALS = 100
CONTRIBUTIONS = 10
GUARDRAIL_SHARE = 0.30
#: Share of the KPIs with a target band (the rest split between higher and lower).
BAND_SHARE = 0.10
AGGREGATIONS = ("sum", "mean", "last")
SEED = 20261124
RUNS = 5
SAMPLE = 24
TOLERANCE = 1e-9
GOAL_SECONDS = 5.0


LAST_PERIOD = _support.month(MONTHS - 1, first=FIRST_PERIOD)


# -- seeding --------------------------------------------------------------------------


@dataclass
class Seeded:
    open_cycle_id: int
    closed_cycle_id: int
    shared_goal_ids: list[int]
    guardrails: int
    #: The shared goals with a guardrail, and those whose guardrail is set up breached.
    guarded_ids: list[int]
    breached_ids: set[int]
    measurements: int


def seed(url: str) -> Seeded:
    """Create everything the roll-up reads (no signals: bulk_create and COPY only)."""
    from django.db import connections

    from cycles.models import Cycle, Phase
    from goals.models import Contribution, Goal, Guardrail, SharedGoal
    from metrics.models import KPI, Direction, Silo

    rng = np.random.default_rng(SEED)
    silos = Silo.objects.bulk_create(
        Silo(slug=f"bench_{number}", name=f"Bench silo {number}", position=number)
        for number in range(SILO_COUNT)
    )
    open_cycle, closed_cycle = Cycle.objects.bulk_create(
        [
            Cycle(
                name="FY2024-26",
                start_date=FIRST_PERIOD,
                end_date=CYCLE_END,
                phase=Phase.ALIGNING,
                budget=1_000_000,
            ),
            Cycle(
                name="FY2024-26 closed",
                start_date=FIRST_PERIOD,
                end_date=CYCLE_END,
                phase=Phase.CLOSED,
                budget=0,
            ),
        ]
    )

    # Levels: a random walk per KPI around its own scale (1 to 10,000 x 50-150).
    scale = 10.0 ** rng.uniform(0, 4, KPI_COUNT)
    start = scale * rng.uniform(50, 150, KPI_COUNT)
    steps = rng.standard_normal((KPI_COUNT, MONTHS - 1)) * scale[:, None] * 2.0
    levels = np.hstack([start[:, None], start[:, None] + np.cumsum(steps, axis=1)])
    # Round to 1/1024 of the scale's power of 2 (exact in binary, like real data).
    levels = np.round(levels * 1024) / 1024

    draw = rng.random(KPI_COUNT)
    directions = np.where(
        draw < BAND_SHARE,
        Direction.TARGET_BAND,
        np.where(
            draw < BAND_SHARE + (1 - BAND_SHARE) / 2,
            Direction.HIGHER_IS_BETTER,
            Direction.LOWER_IS_BETTER,
        ),
    )
    aggregations = [AGGREGATIONS[index % 3] for index in range(KPI_COUNT)]
    kpis = KPI.objects.bulk_create(
        (
            KPI(
                silo=silos[index % SILO_COUNT],
                slug=f"kpi_{index:05d}",
                key=KPI.make_key(silos[index % SILO_COUNT].slug, f"kpi_{index:05d}"),
                name=f"Bench KPI {index}",
                unit="count",
                direction=str(directions[index]),
                aggregation=aggregations[index],
                band_low=float(start[index] * 0.9)
                if directions[index] == Direction.TARGET_BAND
                else None,
                band_high=float(start[index] * 1.1)
                if directions[index] == Direction.TARGET_BAND
                else None,
            )
            for index in range(KPI_COUNT)
        ),
        batch_size=2_000,
    )

    # Goals: baseline and target placed around the actual so that attainments spread
    # over [0, 1] with some clamped at either end; targets on the improving side.
    goals = []
    for index, kpi in enumerate(kpis):
        row = levels[index]
        actual = {
            "sum": math.fsum(row),
            "mean": math.fsum(row) / MONTHS,
            "last": float(row[-1]),
        }[aggregations[index]]
        span = abs(actual) * float(rng.uniform(0.05, 0.3)) + 1.0
        reached = float(rng.uniform(-0.2, 1.2))
        baseline, target, low, high = 0.0, None, None, None
        if kpi.direction == Direction.HIGHER_IS_BETTER:
            baseline = actual - reached * span
            target = baseline + span
        elif kpi.direction == Direction.LOWER_IS_BETTER:
            baseline = actual + reached * span
            target = baseline - span
        else:
            baseline = actual
            offset = float(rng.uniform(-2.2, 1.2))
            low = actual + offset * span
            high = low + span
        goals.append(
            Goal(
                cycle=open_cycle,
                kpi=kpi,
                baseline=baseline,
                target=target,
                target_low=low,
                target_high=high,
                period_start=FIRST_PERIOD,
                period_end=LAST_PERIOD,
            )
        )
    goals = Goal.objects.bulk_create(goals, batch_size=2_000)

    shared = SharedGoal.objects.bulk_create(
        (
            SharedGoal(cycle=open_cycle, name=f"Shared goal {number:04d}")
            for number in range(SHARED_GOALS)
        ),
        batch_size=2_000,
    )
    # Each goal contributes once: a permutation cut into groups of 10, each group from
    # at least 2 silos (KPI i is in silo i % 6).
    while True:
        order = rng.permutation(KPI_COUNT)[: SHARED_GOALS * CONTRIBUTIONS]
        groups = order.reshape(SHARED_GOALS, CONTRIBUTIONS)
        if all(len(set((group % SILO_COUNT).tolist())) >= 2 for group in groups):
            break
    weights = rng.uniform(0.1, 5.0, groups.shape)
    Contribution.objects.bulk_create(
        (
            Contribution(
                shared_goal=shared[number],
                goal=goals[int(groups[number, slot])],
                weight=float(weights[number, slot]),
            )
            for number in range(SHARED_GOALS)
            for slot in range(CONTRIBUTIONS)
        ),
        batch_size=5_000,
    )

    # Guardrails on higher/lower KPIs: worsened by tolerance x U(-1, 2.5), so that about
    # 40% of them are breached.
    guarded = rng.random(SHARED_GOALS) < GUARDRAIL_SHARE
    candidates = np.flatnonzero(directions != Direction.TARGET_BAND)
    guardrails, breached = [], set()
    for number in np.flatnonzero(guarded).tolist():
        index = int(rng.choice(candidates))
        current = float(levels[index, -1])
        tolerance = abs(current) * float(rng.uniform(0.01, 0.1))
        worsened = tolerance * float(rng.uniform(-1.0, 2.5))
        if worsened > tolerance:
            breached.add(shared[number].pk)
        baseline = (
            current + worsened
            if directions[index] == Direction.HIGHER_IS_BETTER
            else current - worsened
        )
        guardrails.append(
            Guardrail(
                shared_goal=shared[number],
                kpi=kpis[index],
                baseline=baseline,
                tolerance=tolerance,
            )
        )
    Guardrail.objects.bulk_create(guardrails, batch_size=5_000)
    connections.close_all()

    ids = [kpi.pk for kpi in kpis]
    periods = [
        _support.month(index, first=FIRST_PERIOD).isoformat() for index in range(MONTHS)
    ]
    now = dt.datetime.now(dt.UTC).isoformat()
    text = "".join(
        f"{ids[row]}\t{periods[column]}\t{value!r}\t\t{now}\t{now}\n"
        for row, values in enumerate(levels.tolist())
        for column, value in enumerate(values)
    ).encode()
    count = _support.seed_measurements(url, text, expected=KPI_COUNT * MONTHS)
    return Seeded(
        open_cycle_id=open_cycle.pk,
        closed_cycle_id=closed_cycle.pk,
        shared_goal_ids=[item.pk for item in shared],
        guardrails=len(guardrails),
        guarded_ids=[shared[number].pk for number in np.flatnonzero(guarded).tolist()],
        breached_ids=breached,
        measurements=int(count),
    )


def move_to_closed_cycle(url: str, seeded: Seeded, keep: int) -> None:
    """Leave the first ``keep`` shared goals open; move the others to the closed cycle."""
    from goals.models import SharedGoal

    moved = SharedGoal.objects.filter(pk__in=seeded.shared_goal_ids[keep:]).update(
        cycle_id=seeded.closed_cycle_id
    )
    if moved != len(seeded.shared_goal_ids) - keep:
        raise _support.BenchmarkError(f"moved {moved} shared goals to the closed cycle")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"VACUUM (ANALYZE) {SharedGoal._meta.db_table}")


# -- measuring ------------------------------------------------------------------------


@dataclass
class Measured:
    open_shared_goals: int
    seconds: list[float]
    warm_up_seconds: float
    queries: list[tuple[float, str]]
    counted_seconds: float
    snapshotted: int
    breached: int

    @property
    def best(self) -> float:
        return min(self.seconds)

    @property
    def median(self) -> float:
        return _support.median(self.seconds)

    @property
    def query_count(self) -> int:
        return len(self.queries)


def run_rollup(day: dt.date) -> Any:
    from goals.models import RollupRun
    from goals.rollups import shared_goals_rollup

    run = shared_goals_rollup(reason="command", day=day)
    if run.status != RollupRun.Status.DONE:
        raise _support.BenchmarkError(f"the roll-up did not run: {run.status}")
    return run


def measure(day: dt.date, runs: int, expected: int) -> Measured:
    """Warm up, time ``runs`` roll-ups, then count the queries of one more."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    started = time.perf_counter()
    run = run_rollup(day)
    warm_up = time.perf_counter() - started
    if run.shared_goals != expected:
        raise _support.BenchmarkError(
            f"the roll-up snapshotted {run.shared_goals} shared goals, expected "
            f"{expected}"
        )
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        run = run_rollup(day)
        seconds.append(time.perf_counter() - started)
        print(
            f"  {expected:,} open shared goals: {seconds[-1]:.3f} s "
            f"({run.shared_goals:,} snapshotted, {run.breached} breached)",
            flush=True,
        )
    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        run = run_rollup(day)
        counted = time.perf_counter() - started
    queries = [
        (float(query["time"]), query["sql"]) for query in captured.captured_queries
    ]
    return Measured(
        open_shared_goals=expected,
        seconds=seconds,
        warm_up_seconds=warm_up,
        queries=queries,
        counted_seconds=counted,
        snapshotted=run.shared_goals,
        breached=run.breached,
    )


def profile_once(day: dt.date) -> str:
    """cProfile one roll-up; return the top functions by cumulative and own time."""
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    run_rollup(day)
    profiler.disable()
    seconds = time.perf_counter() - started
    report = io.StringIO()
    stats = pstats.Stats(profiler, stream=report)
    stats.sort_stats("cumulative").print_stats(25)
    stats.sort_stats("tottime").print_stats(15)
    lines = [
        line
        for line in report.getvalue().splitlines()
        if line.strip() and not line.lstrip().startswith(("Ordered by", "List reduced"))
    ]
    return (
        f"cProfile of one roll-up ({seconds:.2f} s under the profiler):\n"
        + "\n".join(lines)
    )


# -- the independent check ------------------------------------------------------------


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


def _attainment(
    direction: str,
    baseline: float,
    actual: float | None,
    target: float | None,
    low: float | None,
    high: float | None,
) -> float | None:
    """goals/progress.py's docstring, written out again."""
    if actual is None:
        return None
    if direction == "target_band":
        if low is None or high is None:
            raise ValueError("a target-band goal needs its band")
        if low <= actual <= high:
            return 1.0
        distance = low - actual if actual < low else actual - high
        width = high - low
        edge = max(abs(low), abs(high))
        tolerance = width if width > 0 else (0.1 * edge if edge > 0 else 1.0)
        return _clamp(1.0 - distance / tolerance)
    if target is None:
        raise ValueError("a higher- or lower-is-better goal needs a target")
    if target == baseline:
        met = actual >= target if direction == "higher_is_better" else actual <= target
        return 1.0 if met else 0.0
    if direction == "higher_is_better":
        return _clamp((actual - baseline) / (target - baseline))
    return _clamp((baseline - actual) / (baseline - target))


def _mean(pairs: list[tuple[float, float]]) -> float | None:
    if not pairs:
        return None
    return _clamp(
        sum(weight * value for weight, value in pairs)
        / sum(weight for weight, _ in pairs)
    )


def _difference(a: float | None, b: float | None) -> float:
    if a is None or b is None:
        return 0.0 if a is None and b is None else math.inf
    return abs(a - b)


@dataclass
class Check:
    checked: int
    largest_difference: float
    mismatches: list[str]
    breached_in_sample: int


def check_sample(url: str, shared_goal_ids: list[int], day: dt.date) -> Check:
    """Recompute the sample's progress from raw SQL rows and compare to the snapshots."""
    from cycles.models import Cycle
    from goals.models import (
        Contribution,
        Goal,
        Guardrail,
        SharedGoal,
        SharedGoalSnapshot,
    )
    from goals.progress import GUARDRAIL_CAP
    from metrics.models import KPI, Measurement, Silo

    tables = {
        model.__name__: sql.Identifier(model._meta.db_table)
        for model in (
            Contribution,
            Goal,
            Guardrail,
            SharedGoal,
            SharedGoalSnapshot,
            KPI,
            Measurement,
            Silo,
            Cycle,
        )
    }
    with psycopg.connect(url, row_factory=namedtuple_row) as conn:
        parts = conn.execute(
            sql.SQL(
                """SELECT c.shared_goal_id, c.weight, g.baseline, g.target,
                          g.target_low, g.target_high, g.period_start, g.period_end,
                          g.kpi_id, k.direction, k.aggregation, s.slug AS silo
                   FROM {Contribution} c
                   JOIN {Goal} g ON g.id = c.goal_id
                   JOIN {KPI} k ON k.id = g.kpi_id
                   JOIN {Silo} s ON s.id = k.silo_id
                   WHERE c.shared_goal_id = ANY(%s)
                   ORDER BY c.shared_goal_id, c.goal_id"""
            ).format(**tables),
            [shared_goal_ids],
        ).fetchall()
        guards = conn.execute(
            sql.SQL(
                """SELECT r.shared_goal_id, r.baseline, r.tolerance, r.kpi_id,
                          k.direction, y.start_date, y.end_date
                   FROM {Guardrail} r
                   JOIN {KPI} k ON k.id = r.kpi_id
                   JOIN {SharedGoal} sg ON sg.id = r.shared_goal_id
                   JOIN {Cycle} y ON y.id = sg.cycle_id
                   WHERE r.shared_goal_id = ANY(%s)"""
            ).format(**tables),
            [shared_goal_ids],
        ).fetchall()
        kpi_ids = sorted({row.kpi_id for row in parts} | {row.kpi_id for row in guards})
        values: dict[int, list[tuple[dt.date, float]]] = {}
        for row in conn.execute(
            sql.SQL(
                """SELECT kpi_id, period, value FROM {Measurement}
                   WHERE kpi_id = ANY(%s) ORDER BY kpi_id, period"""
            ).format(**tables),
            [kpi_ids],
        ):
            values.setdefault(row.kpi_id, []).append((row.period, row.value))
        snapshots = {
            row.shared_goal_id: row
            for row in conn.execute(
                sql.SQL(
                    """SELECT shared_goal_id, progress, uncapped_progress,
                              contributions_with_data, contributions_total, per_silo,
                              guardrail_breached
                       FROM {SharedGoalSnapshot}
                       WHERE shared_goal_id = ANY(%s) AND day = %s"""
                ).format(**tables),
                [shared_goal_ids, day],
            )
        }

    def actual(kpi_id: int, first: dt.date, last: dt.date, how: str) -> float | None:
        inside = [
            value for period, value in values.get(kpi_id, []) if first <= period <= last
        ]
        if not inside:
            return None
        if how == "sum":
            return math.fsum(inside)
        if how == "mean":
            return math.fsum(inside) / len(inside)
        return inside[-1]

    largest, mismatches, breached_count = 0.0, [], 0
    for shared_id in shared_goal_ids:
        mine = [row for row in parts if row.shared_goal_id == shared_id]
        known: list[tuple[float, float]] = []
        per_silo: dict[str, list[tuple[float, float]]] = {}
        for part in mine:
            reached = _attainment(
                part.direction,
                part.baseline,
                actual(
                    part.kpi_id, part.period_start, part.period_end, part.aggregation
                ),
                part.target,
                part.target_low,
                part.target_high,
            )
            per_silo.setdefault(part.silo, [])
            if reached is not None:
                known.append((part.weight, reached))
                per_silo[part.silo].append((part.weight, reached))
        uncapped = _mean(known)
        breached = False
        for guard in (row for row in guards if row.shared_goal_id == shared_id):
            current = actual(guard.kpi_id, guard.start_date, guard.end_date, "last")
            if current is None:
                continue
            worsened = (
                guard.baseline - current
                if guard.direction == "higher_is_better"
                else current - guard.baseline
            )
            breached = breached or worsened > guard.tolerance
        breached_count += breached
        expected = (
            min(uncapped, GUARDRAIL_CAP)
            if breached and uncapped is not None
            else uncapped
        )
        snapshot = snapshots.get(shared_id)
        if snapshot is None:
            mismatches.append(f"shared goal {shared_id}: no snapshot for {day}")
            continue
        differences = [
            _difference(snapshot.progress, expected),
            _difference(snapshot.uncapped_progress, uncapped),
            *(
                _difference(snapshot.per_silo.get(silo), _mean(pairs))
                for silo, pairs in per_silo.items()
            ),
        ]
        largest = max(largest, *differences)
        if (
            max(differences) > TOLERANCE
            or snapshot.contributions_with_data != len(known)
            or snapshot.contributions_total != len(mine)
            or set(snapshot.per_silo) != set(per_silo)
            or snapshot.guardrail_breached != breached
        ):
            mismatches.append(
                f"shared goal {shared_id}: snapshot progress {snapshot.progress}, "
                f"uncapped {snapshot.uncapped_progress}, "
                f"{snapshot.contributions_with_data}/{snapshot.contributions_total}, "
                f"breached {snapshot.guardrail_breached}; recomputed {expected}, "
                f"{uncapped}, {len(known)}/{len(mine)}, breached {breached}"
            )
    return Check(len(shared_goal_ids), largest, mismatches, breached_count)


def pick_sample(seeded: Seeded, size: int) -> list[int]:
    """A third with a breached guardrail, a third with an unbreached one, the rest
    without guardrails."""
    rng = np.random.default_rng(SEED + 1)
    breached = sorted(seeded.breached_ids)
    unbreached = [pk for pk in seeded.guarded_ids if pk not in seeded.breached_ids]
    guarded = set(seeded.guarded_ids)
    free = [pk for pk in seeded.shared_goal_ids if pk not in guarded]
    sample: list[int] = []
    for pool, count in (
        (breached, size // 3),
        (unbreached, size // 3),
        (free, size - 2 * (size // 3)),
    ):
        picked = rng.choice(pool, size=min(count, len(pool)), replace=False)
        sample.extend(int(pk) for pk in picked)
    return sorted(sample)


def snapshot_summary(day: dt.date) -> str:
    """The day's snapshots: how many, and the spread of their progress."""
    from goals.models import SharedGoalSnapshot

    rows = list(
        SharedGoalSnapshot.objects.filter(day=day).values_list(
            "progress", "uncapped_progress"
        )
    )
    known = sorted(progress for progress, _ in rows if progress is not None)
    capped = sum(1 for progress, uncapped in rows if progress != uncapped)
    if not known:
        return f"{len(rows):,} snapshots for {day}, none with a progress"
    quartiles = [known[round(share * (len(known) - 1))] for share in (0, 0.25, 0.5)]
    quartiles += [known[round(share * (len(known) - 1))] for share in (0.75, 1)]
    return (
        f"{len(rows):,} snapshots for {day} (one per shared goal); progress min / "
        "quartiles / max "
        + " / ".join(f"{value:.3f}" for value in quartiles)
        + f"; {len(rows) - len(known)} without data; {capped} capped by a guardrail"
    )


# -- the report -----------------------------------------------------------------------


def _short_sql(sql: str, width: int = 90) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def print_queries(measured: Measured) -> None:
    sql_seconds = sum(seconds for seconds, _ in measured.queries)
    _support.print_table(
        f"{measured.open_shared_goals:,} open shared goals: the {measured.query_count} "
        f"queries of the counting run ({measured.counted_seconds:.3f} s in all, "
        f"{sql_seconds:.3f} s in SQL, {measured.counted_seconds - sql_seconds:.3f} s "
        "in Python)",
        ["query", "seconds"],
        [(_short_sql(text), f"{seconds:.3f}") for seconds, text in measured.queries],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS, help="timed runs per size")
    parser.add_argument(
        "--sample",
        type=int,
        default=SAMPLE,
        help="shared goals recomputed and compared",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also cProfile one roll-up of the 1,000 shared goals",
    )
    arguments = parser.parse_args()

    url = _support.database_url("_rollup")
    with _support.django_database(url):
        from django.db import connections
        from django.utils import timezone

        machine = _support.machine_description()
        postgres = _support.postgres_version(url)

        started = time.perf_counter()
        seeded = seed(url)
        print(
            f"seeded in {time.perf_counter() - started:.1f} s (not timed): "
            f"{SILO_COUNT} silos, {KPI_COUNT:,} KPIs and goals, "
            f"{seeded.measurements:,} measurements, {SHARED_GOALS:,} shared goals x "
            f"{CONTRIBUTIONS} contributions, {seeded.guardrails} guardrails "
            f"({len(seeded.breached_ids)} set up breached)",
            flush=True,
        )
        day = timezone.localdate()

        print(f"roll-up of {SHARED_GOALS:,} open shared goals for {day}:", flush=True)
        large = measure(day, arguments.runs, SHARED_GOALS)
        large_snapshots = snapshot_summary(day)
        check = check_sample(url, pick_sample(seeded, arguments.sample), day)
        profile = profile_once(day) if arguments.profile else ""

        move_to_closed_cycle(url, seeded, SMALL_SHARED_GOALS)
        print(
            f"roll-up of {SMALL_SHARED_GOALS:,} open shared goals (the other "
            f"{SHARED_GOALS - SMALL_SHARED_GOALS:,} moved to a closed cycle):",
            flush=True,
        )
        small = measure(day, arguments.runs, SMALL_SHARED_GOALS)
        small_check = check_sample(url, seeded.shared_goal_ids[:10], day)
        connections.close_all()

    _support.print_table(
        f"goals.rollups.shared_goals_rollup(reason='command'): {SHARED_GOALS:,} shared goals x "
        f"{CONTRIBUTIONS} contributions, {KPI_COUNT:,} goals over {MONTHS} months "
        f"({seeded.measurements:,} measurements), {seeded.guardrails} guardrails; "
        f"warm-up run, then {arguments.runs} runs on the same day (replacing the "
        "snapshots)",
        [
            "open shared goals",
            "queries",
            "warm-up s",
            "best s",
            "median s",
            "runs s",
            "breached",
        ],
        [
            (
                f"{measured.open_shared_goals:,}",
                measured.query_count,
                f"{measured.warm_up_seconds:.3f}",
                f"{measured.best:.3f}",
                f"{measured.median:.3f}",
                ", ".join(f"{seconds:.2f}" for seconds in measured.seconds),
                measured.breached,
            )
            for measured in (small, large)
        ],
    )
    print_queries(large)
    print_queries(small)
    equal = small.query_count == large.query_count
    print(
        f"\nqueries: {small.query_count} for {SMALL_SHARED_GOALS:,}, "
        f"{large.query_count} for {SHARED_GOALS:,}; equal: {'yes' if equal else 'no'}"
    )
    print(
        f"check: {check.checked} sampled shared goals ({check.breached_in_sample} with a "
        f"breached guardrail) recomputed from the raw measurements, largest difference "
        f"{check.largest_difference:.1e}: "
        + ("OK" if not check.mismatches else f"{len(check.mismatches)} MISMATCHES")
    )
    print(
        f"check after the {SMALL_SHARED_GOALS}-goal runs: {small_check.checked} shared "
        f"goals, largest difference {small_check.largest_difference:.1e}: "
        + (
            "OK"
            if not small_check.mismatches
            else f"{len(small_check.mismatches)} MISMATCHES"
        )
    )
    for line in (check.mismatches + small_check.mismatches)[:10]:
        print(f"  {line}")
    expected_small = len(
        seeded.breached_ids & set(seeded.shared_goal_ids[:SMALL_SHARED_GOALS])
    )
    breaches_ok = (
        large.breached == len(seeded.breached_ids) and small.breached == expected_small
    )
    print(
        f"breached guardrails: {large.breached} of {SHARED_GOALS:,} (set up: "
        f"{len(seeded.breached_ids)}), {small.breached} of {SMALL_SHARED_GOALS} (set "
        f"up: {expected_small}): " + ("OK" if breaches_ok else "DIFFERENT")
    )
    print(f"after the {SHARED_GOALS:,}-goal runs: {large_snapshots}")
    print(f"machine: {machine}; {postgres}")
    if profile:
        print()
        print(profile)

    print("\ngoals:")
    print(
        f"  {SHARED_GOALS:,} shared goals: roll-up {large.best:.2f} s best, "
        f"{large.median:.2f} s median; goal <= {GOAL_SECONDS:g} s: "
        f"{_support.verdict(large.median <= GOAL_SECONDS)}"
    )
    print(
        f"  SQL queries {small.query_count} ({SMALL_SHARED_GOALS:,}) vs "
        f"{large.query_count} ({SHARED_GOALS:,}); goal equal: {_support.verdict(equal)}"
    )
    if check.mismatches or small_check.mismatches or not breaches_ok:
        print("  (but the snapshots differ from the recomputed progress: see above)")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    _support.run(main)
