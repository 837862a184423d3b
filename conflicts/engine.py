"""Turn stored measurements into the detection statistics' inputs, block by block.

The statistics (metrics.detection) know nothing of the ORM; this module reads the
measurements once, puts the KPIs on one grid per frequency (finer KPIs aggregated to
coarser grids), prepares each grid's changes once for the whole run (the company-wide
drivers are estimated from the whole matrix, before any block), cuts the pairs into
blocks, and (de)serializes a block's result so that Celery workers can compute blocks
anywhere.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db import connection

from metrics import detection
from metrics.detection import effects, grids, prepare
from metrics.models import Direction

#: The methods a run can use (DetectionRun.method).
DRIVERS = "drivers"
PAIRWISE = "pairwise"
METHODS = (DRIVERS, PAIRWISE)

SIGN = {Direction.HIGHER_IS_BETTER: 1.0, Direction.LOWER_IS_BETTER: -1.0}

#: A run lists at most this many untested KPIs (it counts them all).
UNTESTED_KEPT = 1000


def method_parameters(method: str) -> dict[str, Any]:
    """Return the constants of ``method`` that a run records, for reproducibility."""
    if method == PAIRWISE:
        return {"tests": "two-sided, one family", "changes": "standardized as they are"}
    return {
        "tests": "one-sided, conflicts and synergies as two families",
        "gross_z": prepare.GROSS_Z,
        "residual_z": prepare.RESIDUAL_Z,
        "seasonal_p": prepare.SEASONAL_P,
        "seasonal_years": prepare.SEASONAL_YEARS,
        "seasonal_harmonics": prepare.SEASONAL_HARMONICS,
        "permutations": prepare.PERMUTATIONS,
        "max_drivers": prepare.MAX_DRIVERS,
        "driver_min_kpis": prepare.DRIVER_MIN_KPIS,
        "driver_min_silos": prepare.DRIVER_MIN_SILOS,
        "driver_member_r": prepare.DRIVER_MEMBER_R,
        "driver_lags": prepare.DRIVER_LAGS,
        "max_ar_order": prepare.MAX_AR_ORDER,
        "ar_evidence": prepare.AR_EVIDENCE,
        "confidence": effects.CONFIDENCE,
    }


@dataclass(eq=False)
class FrequencyMatrix:
    """One grid of a run, ready for the tests.

    Column j is KPI ``kpi_ids[j]`` of silo ``silo_ids[j]``; ``native[j]`` says whether
    the KPI is of this frequency (else it is a finer KPI aggregated to it). Rows are
    consecutive periods, so a change always spans exactly one period. ``standardized``
    is what the pairwise tests read, ``regression`` what the effect sizes regress
    (metrics.detection.effects), ``lost`` the degrees
    of freedom each column spent in the preparation. ``rank`` orders the columns along
    the value chain (silo position, then KPI key): at lag 0 the upstream KPI is the
    leader.
    """

    frequency: str
    kpi_ids: np.ndarray
    silo_ids: np.ndarray
    sign: np.ndarray
    rank: np.ndarray
    native: np.ndarray
    standardized: np.ndarray
    regression: prepare.EffectInputs
    lost: np.ndarray
    first_period: int
    one_sided: bool
    drivers: list[prepare.Driver] = field(default_factory=list)

    @property
    def same_group(self) -> np.ndarray:
        return self.silo_ids[:, None] == self.silo_ids[None, :]

    def blocks(self, block_size: int) -> Iterator[tuple[int, int, int, int]]:
        kpis = self.kpi_ids.size
        for leaders in detection.block_ranges(kpis, block_size):
            for followers in detection.block_ranges(kpis, 2 * block_size):
                yield (*leaders, *followers)


def load_series() -> tuple[list[grids.Series], int]:
    """Read every active, directional KPI's measurements in one SQL query.

    Target-band KPIs are left out: a KPI that improves towards a band from either side
    has no direction to correlate (its declared links still raise conflicts).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT k.id, k.silo_id, k.frequency, k.direction, k.aggregation,
                   s.position, k.key, m.period, m.value
            FROM metrics_measurement m
            JOIN metrics_kpi k ON k.id = m.kpi_id
            JOIN metrics_silo s ON s.id = k.silo_id
            WHERE k.is_active AND k.direction <> %s
            ORDER BY k.id, m.period
            """,
            [Direction.TARGET_BAND],
        )
        rows = cursor.fetchall()
    chain = sorted({(row[5], row[6]) for row in rows})
    rank = {key: index for index, (_, key) in enumerate(chain)}
    series: list[grids.Series] = []
    start = 0
    while start < len(rows):
        stop = start
        while stop < len(rows) and rows[stop][0] == rows[start][0]:
            stop += 1
        kpi_id, silo_id, frequency, direction, aggregation, _, key = rows[start][:7]
        series.append(
            grids.Series(
                kpi_id=kpi_id,
                silo_id=silo_id,
                frequency=frequency,
                aggregation=aggregation,
                sign=SIGN[direction],
                rank=rank[key],
                # SQLite's raw cursor answers dates as ISO strings.
                periods=[_date(row[7]) for row in rows[start:stop]],
                values=[float(row[8]) for row in rows[start:stop]],
            )
        )
        start = stop
    return series, len(rows)


def _date(value: dt.date | str) -> dt.date:
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


def load_matrices(method: str = DRIVERS) -> tuple[list[FrequencyMatrix], int]:
    """Read the measurements and prepare one matrix per grid for ``method``.

    Return the matrices and the number of measurements read. The *pairwise* method
    (the first one) keeps only each grid's native KPIs: it never compared frequencies.
    """
    series, measurements = load_series()
    return matrices_from(series, method), measurements


def matrices_from(series: list[grids.Series], method: str) -> list[FrequencyMatrix]:
    """Prepare the grids of ``series`` for ``method`` (pure: the benchmark calls it)."""
    if method not in METHODS:
        raise ValueError(f"unknown detection method {method!r}")
    matrices = []
    for grid in grids.build(series):
        if method == PAIRWISE:
            grid = _native_only(grid)
        if grid.levels.shape[0] < 2 or grid.kpi_ids.size == 0:
            continue
        changes = detection.period_changes(grid.levels, grid.sign)
        if method == DRIVERS:
            prepared = prepare.prepare(
                changes,
                groups=grid.silo_ids,
                position=grid.positions()[1:],
                season=grid.season,
            )
            tested, regression, lost = (
                prepared.tested,
                prepared.regression,
                prepared.lost,
            )
            drivers = prepared.drivers
        else:
            tested = detection.standardize(changes)
            lost = np.zeros(changes.shape[1], np.int64)
            regression = prepare.EffectInputs(
                standardized=tested,
                scale=_scale(changes),
                drivers=prepare.DriverScores.none(*changes.shape),
                seasonal_terms=None,
                seasonal=np.zeros(changes.shape[1], dtype=bool),
            )
            drivers = []
        matrices.append(
            FrequencyMatrix(
                frequency=grid.frequency,
                kpi_ids=grid.kpi_ids,
                silo_ids=grid.silo_ids,
                sign=grid.sign,
                rank=grid.rank,
                native=grid.native,
                standardized=tested,
                regression=regression,
                lost=lost,
                # The first change is the one into the grid's second period.
                first_period=grids.number(grid.first_period, grid.frequency) + 1,
                one_sided=method == DRIVERS,
                drivers=drivers,
            )
        )
    return matrices


def _scale(changes: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        scale = np.nanstd(changes, axis=0)
    return np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)


def _native_only(grid: grids.Grid) -> grids.Grid:
    keep = grid.native
    return grids.Grid(
        frequency=grid.frequency,
        first_period=grid.first_period,
        kpi_ids=grid.kpi_ids[keep],
        silo_ids=grid.silo_ids[keep],
        sign=grid.sign[keep],
        rank=grid.rank[keep],
        native=grid.native[keep],
        levels=grid.levels[:, keep],
    )


def untested_kpis(matrices: list[FrequencyMatrix], *, min_pairs: int) -> list[dict]:
    """Return every active KPI that a run with ``min_pairs`` cannot test, and why.

    Sorted by KPI key; each entry is ``{"kpi": key, "reason": text}``. One SQL query
    (the KPIs left out of the matrices); the rest is read off the native columns.
    """
    reasons: dict[int, str] = {}
    in_matrices: set[int] = set()
    for matrix in matrices:
        present = ~np.isnan(matrix.standardized)
        changes = present.sum(axis=0)
        varies = np.any(present & (matrix.standardized != 0), axis=0)
        for column in np.flatnonzero(matrix.native):
            kpi_id = int(matrix.kpi_ids[column])
            in_matrices.add(kpi_id)
            count = int(changes[column])
            if count < min_pairs:
                unit = grids.UNIT[matrix.frequency]
                reasons[kpi_id] = (
                    f"only {count} {unit}-over-{unit} change"
                    f"{'' if count == 1 else 's'}; at least {min_pairs} are needed"
                )
            elif not varies[column]:
                reasons[kpi_id] = (
                    "its changes never vary, so there is nothing to correlate"
                )
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
    for kpi_id, _, direction, has_data in active:
        if kpi_id in in_matrices:
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
        (
            {"kpi": keys[kpi_id], "reason": reason}
            for kpi_id, reason in reasons.items()
            if kpi_id in keys
        ),
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
        lost=matrix.lost,
        native=matrix.native,
        one_sided=matrix.one_sided,
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


def one_sided(matrices: list[FrequencyMatrix]) -> bool:
    """Whether a run's tests are one-sided (its method's; every matrix agrees)."""
    return any(matrix.one_sided for matrix in matrices)


def work_items(
    matrices: list[FrequencyMatrix], block_size: int
) -> list[tuple[int, tuple[int, int, int, int]]]:
    """Return every (matrix index, block) of a run."""
    return [
        (index, block)
        for index, matrix in enumerate(matrices)
        for block in matrix.blocks(block_size)
    ]


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
    the number of blocks. ``progress(done, total)`` is called after each block. The
    Celery chord (conflicts.tasks) runs the same blocks across workers and the same
    final step (:func:`metrics.detection.merge_scans`).
    """
    p_keep = first_p_keep(matrices, max_lag=max_lag, q_threshold=q_threshold)
    work = work_items(matrices, block_size)
    while True:
        scans = []
        for done, (index, block) in enumerate(work, start=1):
            scans.append(
                scan(
                    matrices[index],
                    block,
                    max_lag=max_lag,
                    min_pairs=min_pairs,
                    q_threshold=q_threshold,
                    p_keep=p_keep,
                )
            )
            if progress is not None:
                progress(done, len(work))
        merged = detection.merge_scans(
            scans,
            p_keep=p_keep,
            q_threshold=q_threshold,
            one_sided=one_sided(matrices),
        )
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


def native_frequency(matrices: list[FrequencyMatrix]) -> dict[int, str]:
    """Return each tested KPI's own frequency."""
    return {
        int(kpi): matrix.frequency
        for matrix in matrices
        for kpi in matrix.kpi_ids[matrix.native]
    }


def grid_of(frequency: dict[int, str], leader: int, follower: int) -> str:
    """The grid a pair is tested on: the coarser of the two KPIs' frequencies ("" if
    either is not in the run's matrices)."""
    if leader not in frequency or follower not in frequency:
        return ""
    return max(frequency[leader], frequency[follower], key=grids.ORDER.index)


def effects_of(
    matrices: list[FrequencyMatrix], associations: list[detection.Association]
) -> dict[tuple[int, int], effects.Effect]:
    """Return the effect of each association, by (leader, follower).

    A lag-0 association is estimated both ways round, since the register may orient
    it along a declared link (see conflicts.services.register).
    """
    by_frequency = {matrix.frequency: matrix for matrix in matrices}
    frequency = native_frequency(matrices)
    result: dict[tuple[int, int], effects.Effect] = {}
    for association in associations:
        matrix = by_frequency.get(
            grid_of(frequency, association.leader, association.follower)
        )
        if matrix is None:
            continue
        column = {int(kpi): index for index, kpi in enumerate(matrix.kpi_ids)}
        orientations = [(association.leader, association.follower)]
        if association.lag == 0:
            orientations.append((association.follower, association.leader))
        for leader, follower in orientations:
            i, j = column[leader], column[follower]
            estimated = effects.estimate(
                matrix.regression,
                i,
                j,
                lag=association.lag,
                leader_sign=float(matrix.sign[i]),
                follower_sign=float(matrix.sign[j]),
                lost=int(max(matrix.lost[i], matrix.lost[j]))
                if association.lag == 0
                else 0,
            )
            if estimated is not None:
                result[(leader, follower)] = estimated
    return result


def drivers_of(matrices: list[FrequencyMatrix]) -> list[dict[str, Any]]:
    """Describe each grid's company-wide drivers by KPI id (largest share first)."""
    described = []
    for matrix in matrices:
        for number, driver in enumerate(matrix.drivers, start=1):
            described.append(
                {
                    "grid": matrix.frequency,
                    "number": number,
                    "share": round(driver.share, 4),
                    "kpis": [
                        {"kpi_id": int(matrix.kpi_ids[c]), "correlation": round(r, 3)}
                        for c, r in zip(
                            driver.columns, driver.correlations, strict=True
                        )
                    ],
                }
            )
    return described


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
        "histogram": np.asarray(result.histogram).tolist(),
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
        histogram=np.atleast_2d(np.asarray(data["histogram"], dtype=np.int64)),
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


def period_number(day: dt.date | str, frequency: str) -> int:
    """Number consecutive periods of one frequency with consecutive integers."""
    return grids.number(_date(day), frequency)
