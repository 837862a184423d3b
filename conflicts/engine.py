"""Turn stored measurements into the detection statistics' inputs, block by block.

The statistics (metrics.detection) know nothing of the ORM; this module reads the
measurements once into one change matrix per frequency, cuts the pairs into blocks, and
(de)serializes a block's result so that Celery workers can compute blocks anywhere.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import connection

from metrics import detection, periods
from metrics.models import Direction

SIGN = {
    Direction.HIGHER_IS_BETTER: 1.0,
    Direction.LOWER_IS_BETTER: -1.0,
    # A target-band KPI improves towards its band from either side: no direction to
    # correlate, so it is not tested (its declared links still raise conflicts).
    Direction.TARGET_BAND: 0.0,
}


def period_number(day: dt.date | str, frequency: str) -> int:
    """Number consecutive periods of one frequency with consecutive integers."""
    if isinstance(day, str):  # SQLite's raw cursor answers dates as ISO strings
        day = dt.date.fromisoformat(day)
    if frequency == periods.MONTHLY:
        return day.year * 12 + day.month - 1
    if frequency == periods.QUARTERLY:
        return day.year * 4 + (day.month - 1) // 3
    return (day.toordinal() - 1) // 7  # weeks start on Monday; date(1, 1, 1) is one


@dataclass(eq=False)
class FrequencyMatrix:
    """The standardized direction-adjusted changes of every KPI of one frequency.

    Column j is KPI ``kpi_ids[j]`` of silo ``silo_ids[j]``; rows are consecutive periods
    (missing values are NaN), so a change always spans exactly one period. ``rank``
    orders the columns along the value chain (silo position, then KPI key): at lag 0
    the upstream KPI is the leader.
    """

    frequency: str
    kpi_ids: np.ndarray
    silo_ids: np.ndarray
    standardized: np.ndarray
    first_period: int
    rank: np.ndarray

    @property
    def same_group(self) -> np.ndarray:
        return self.silo_ids[:, None] == self.silo_ids[None, :]

    def blocks(self, block_size: int) -> Iterator[tuple[int, int, int, int]]:
        kpis = self.kpi_ids.size
        for leaders in detection.block_ranges(kpis, block_size):
            for followers in detection.block_ranges(kpis, 2 * block_size):
                yield (*leaders, *followers)


def load_matrices() -> tuple[list[FrequencyMatrix], int]:
    """Read every active KPI's measurements into one matrix per frequency.

    Return the matrices and the number of measurements read, in one SQL query.
    Target-band KPIs are left out (no direction to improve in); a KPI with too few
    values is in the matrix but never reaches ``min_pairs`` and is not tested.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT k.id, k.silo_id, k.frequency, k.direction, m.period, m.value,
                   s.position, k.key
            FROM metrics_measurement m
            JOIN metrics_kpi k ON k.id = m.kpi_id
            JOIN metrics_silo s ON s.id = k.silo_id
            WHERE k.is_active AND k.direction <> %s
            ORDER BY k.frequency, k.id, m.period
            """,
            [Direction.TARGET_BAND],
        )
        rows = cursor.fetchall()
    matrices: list[FrequencyMatrix] = []
    start = 0
    while start < len(rows):
        frequency = rows[start][2]
        stop = start
        while stop < len(rows) and rows[stop][2] == frequency:
            stop += 1
        matrix = _matrix(frequency, rows[start:stop])
        if matrix is not None:
            matrices.append(matrix)
        start = stop
    return matrices, len(rows)


def _matrix(frequency: str, rows: list[tuple[Any, ...]]) -> FrequencyMatrix | None:
    kpi_column = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    kpi_ids, columns = np.unique(kpi_column, return_inverse=True)
    numbers: dict[dt.date, int] = {}
    period_column = np.fromiter(
        (
            numbers.get(row[4])
            if row[4] in numbers
            else numbers.setdefault(row[4], period_number(row[4], frequency))
            for row in rows
        ),
        dtype=np.int64,
        count=len(rows),
    )
    first = int(period_column.min())
    levels = np.full((int(period_column.max()) - first + 1, kpi_ids.size), np.nan)
    levels[period_column - first, columns] = np.fromiter(
        (row[5] for row in rows), dtype=float, count=len(rows)
    )
    silo_by_kpi = {row[0]: row[1] for row in rows}
    sign_by_kpi = {row[0]: SIGN[row[3]] for row in rows}
    chain_order = {row[0]: (row[6], row[7]) for row in rows}
    by_chain = sorted(range(kpi_ids.size), key=lambda j: chain_order[int(kpi_ids[j])])
    rank = np.empty(kpi_ids.size, dtype=np.int64)
    rank[by_chain] = np.arange(kpi_ids.size)
    if levels.shape[0] < 2:
        return None
    changes = detection.period_changes(
        levels, np.array([sign_by_kpi[int(k)] for k in kpi_ids])
    )
    return FrequencyMatrix(
        frequency=frequency,
        kpi_ids=kpi_ids,
        silo_ids=np.array([silo_by_kpi[int(k)] for k in kpi_ids], dtype=np.int64),
        standardized=detection.standardize(changes),
        first_period=first,
        rank=rank,
    )


#: A run lists at most this many untested KPIs (it counts them all).
UNTESTED_KEPT = 1000


def untested_kpis(matrices: list[FrequencyMatrix], *, min_pairs: int) -> list[dict]:
    """Return every active KPI that a run with ``min_pairs`` cannot test, and why.

    Sorted by KPI key; each entry is ``{"kpi": key, "reason": text}``. One SQL query
    (the KPIs left out of the matrices); the rest is read off the matrices.
    """
    reasons: dict[int, str] = {}
    for matrix in matrices:
        present = ~np.isnan(matrix.standardized)
        changes = present.sum(axis=0)
        # standardize() leaves a column without variation as zeros.
        varies = np.any(present & (matrix.standardized != 0), axis=0)
        for column, kpi_id in enumerate(matrix.kpi_ids.tolist()):
            count = int(changes[column])
            if count < min_pairs:
                reasons[kpi_id] = (
                    f"only {count} period-over-period change"
                    f"{'' if count == 1 else 's'}; at least {min_pairs} are needed"
                )
            elif not varies[column]:
                reasons[kpi_id] = (
                    "its changes never vary, so there is nothing to correlate"
                )
    in_matrices = [int(k) for matrix in matrices for k in matrix.kpi_ids]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT k.id, k.key, k.direction,
                   EXISTS (SELECT 1 FROM metrics_measurement m WHERE m.kpi_id = k.id)
            FROM metrics_kpi k
            WHERE k.is_active
            ORDER BY k.key
            """
        )
        active = cursor.fetchall()
    keys = {kpi_id: key for kpi_id, key, _, _ in active}
    tested = set(in_matrices)
    for kpi_id, _, direction, has_data in active:
        if kpi_id in tested:
            continue
        if direction == Direction.TARGET_BAND:
            reasons[kpi_id] = (
                "a target-band KPI has no better direction to correlate (its "
                "declared links still raise conflicts)"
            )
        else:
            reasons[kpi_id] = (
                "only one period has a value" if has_data else "no measurements yet"
            )
    return sorted(
        ({"kpi": keys[kpi_id], "reason": reason} for kpi_id, reason in reasons.items()),
        key=lambda entry: entry["kpi"],
    )


def scan(
    matrix: FrequencyMatrix,
    block: tuple[int, int, int, int],
    *,
    max_lag: int,
    min_pairs: int,
    q_threshold: float,
    p_keep: float,
) -> detection.BlockScan:
    """Scan one block of ``matrix`` and name its candidates by KPI id, not column."""
    leader_start, leader_stop, follower_start, follower_stop = block
    result = detection.scan_block(
        matrix.standardized,
        np.arange(leader_start, leader_stop),
        np.arange(follower_start, follower_stop),
        groups=matrix.silo_ids,
        max_lag=max_lag,
        min_pairs=min_pairs,
        q_threshold=q_threshold,
        p_keep=p_keep,
        rank=matrix.rank,
    )
    found = result.candidates
    return detection.BlockScan(
        tests=result.tests,
        histogram=result.histogram,
        candidates=detection.Candidates(
            tests=found.tests,
            leader=matrix.kpi_ids[found.leader],
            follower=matrix.kpi_ids[found.follower],
            lag=found.lag,
            r=found.r,
            p=found.p,
            n=found.n,
        ),
    )


def scan_all(
    matrices: list[FrequencyMatrix],
    *,
    max_lag: int,
    min_pairs: int,
    q_threshold: float,
    block_size: int,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[detection.Association], int, int]:
    """Scan every block in this process and apply the false-discovery step over all.

    Return the associations (leader and follower are KPI ids), the number of tests and
    the number of blocks. ``progress(done, total)`` is called after each block.
    """
    p_keep = first_p_keep(matrices, max_lag=max_lag, q_threshold=q_threshold)
    work = [
        (matrix, block) for matrix in matrices for block in matrix.blocks(block_size)
    ]
    while True:
        scans = []
        for done, (matrix, block) in enumerate(work, start=1):
            scans.append(
                scan(
                    matrix,
                    block,
                    max_lag=max_lag,
                    min_pairs=min_pairs,
                    q_threshold=q_threshold,
                    p_keep=p_keep,
                )
            )
            if progress is not None:
                progress(done, len(work))
        merged = detection.merge_scans(scans, p_keep=p_keep, q_threshold=q_threshold)
        if isinstance(merged, list):
            return merged, sum(s.tests for s in scans), len(work)
        p_keep = merged


def first_p_keep(
    matrices: list[FrequencyMatrix], *, max_lag: int, q_threshold: float
) -> float:
    """Return the first cut for all blocks of a run (see detection.plan_p_keep)."""
    kpis = sum(matrix.kpi_ids.size for matrix in matrices)
    rows = max((matrix.standardized.shape[0] for matrix in matrices), default=1)
    return detection.plan_p_keep(kpis, rows, max_lag, q_threshold)


def scan_to_json(
    result: detection.BlockScan, work_item: list[Any] | None = None
) -> dict[str, Any]:
    """Serialize a block's scan for the Celery result backend (floats round-trip).

    ``work_item`` ([matrix index, block]) names the block, so that the final step can
    check that it received every block exactly once.
    """
    found = result.candidates
    return {
        "work_item": work_item,
        "tests": result.tests,
        "histogram": result.histogram.tolist(),
        "leader": found.leader.tolist(),
        "follower": found.follower.tolist(),
        "lag": found.lag.tolist(),
        "r": found.r.tolist(),
        "p": found.p.tolist(),
        "n": found.n.tolist(),
    }


def scan_from_json(data: dict[str, Any]) -> detection.BlockScan:
    """Rebuild a block's scan from :func:`scan_to_json`."""
    return detection.BlockScan(
        tests=int(data["tests"]),
        histogram=np.asarray(data["histogram"], dtype=np.int64),
        candidates=detection.Candidates(
            tests=int(data["tests"]),
            leader=np.asarray(data["leader"], dtype=np.int64),
            follower=np.asarray(data["follower"], dtype=np.int64),
            lag=np.asarray(data["lag"], dtype=np.int64),
            r=np.asarray(data["r"], dtype=float),
            p=np.asarray(data["p"], dtype=float),
            n=np.asarray(data["n"], dtype=np.int64),
        ),
    )
