"""The detection run's inputs from stored measurements: the methods, one matrix of
changes per frequency (finer KPIs aggregated to coarser grids), each prepared once for the
whole run (the company-wide drivers are estimated from the whole matrix), and the KPIs
that cannot be tested, with the reason."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db import connection

from metrics import detection
from metrics.detection import drivers as common_drivers
from metrics.detection import effects, grids, prepare
from metrics.models import Direction

#: The methods a run can use (DetectionRun.method).
DRIVERS = "drivers"
PAIRWISE = "pairwise"
METHODS = (DRIVERS, PAIRWISE)

SIGN: dict[str, float] = {
    Direction.HIGHER_IS_BETTER: 1.0,
    Direction.LOWER_IS_BETTER: -1.0,
}

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
        "permutations": common_drivers.PERMUTATIONS,
        "max_drivers": common_drivers.MAX_DRIVERS,
        "driver_min_kpis": common_drivers.DRIVER_MIN_KPIS,
        "driver_min_silos": common_drivers.DRIVER_MIN_SILOS,
        "driver_member_r": common_drivers.DRIVER_MEMBER_R,
        "driver_lags": common_drivers.DRIVER_LAGS,
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
    drivers: list[common_drivers.Driver] = field(default_factory=list)

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
                drivers=common_drivers.DriverScores.none(*changes.shape),
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


def period_number(day: dt.date | str, frequency: str) -> int:
    """Number consecutive periods of one frequency with consecutive integers."""
    return grids.number(_date(day), frequency)
