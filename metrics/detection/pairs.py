"""The pairwise tests of observed-conflict detection, on plain arrays (no ORM).

For every ordered pair (leader, follower) of KPIs of different silos and lag 0..L,
correlate the leader's value at t with the follower's at t+lag over the periods where
both exist (pairwise-complete); pairs with fewer than ``min_pairs`` paired values, or
no variation on them, are not tested. The false-discovery step (Benjamini-Hochberg)
runs once over all tests of the run; per pair, the significant lag with the smallest
p-value is kept. A negative association is a conflict, a positive one a synergy.

Two ways to use it:

- the **drivers** method (the default; see :mod:`metrics.detection.prepare`) tests the
  prepared residual changes: *one-sided*, with conflicts (r < 0) and synergies (r > 0)
  as two families, each under Benjamini-Hochberg at q, and ``lost`` degrees of freedom
  taken from the lag-0 tests of two columns that shared the regressors of the
  preparation;
- the **pairwise** method (the first one, kept for comparison) tests the standardized
  changes as they are, two-sided, one family.

Pearson rather than Spearman: it reduces to six matrix products per lag even with
gaps, which is what lets thousands of KPIs run in seconds; outliers are dealt with
before (the preparation drops them). Large runs are split into blocks of leader and
follower columns (:func:`metrics.detection.scan.scan_block`); each block ships its test
count, a histogram of its p-values and the tests below a first cut, and
:func:`metrics.detection.fdr.merge_scans` applies the false-discovery step once over
all blocks. :func:`find_associations` does all of it in this process.
"""

from __future__ import annotations

import numpy as np

from metrics.detection.fdr import (
    DEFAULT_Q_THRESHOLD,
    Association,
    merge_scans,
    plan_p_keep,
)
from metrics.detection.scan import (
    DEFAULT_MAX_LAG,
    DEFAULT_MIN_PAIRS,
    block_ranges,
    scan_block,
)


def period_changes(levels: np.ndarray, direction_sign: np.ndarray) -> np.ndarray:
    """Return direction-adjusted period-over-period changes.

    ``levels`` is (periods x kpis) with NaN for missing values. ``direction_sign`` holds
    one value per KPI: +1 when higher is better, -1 when lower is better, 0 to skip the
    KPI (for example a target-band KPI, where neither direction is an improvement); a
    skipped KPI gets all-NaN changes and is never tested. The result has one row fewer
    than ``levels``; a change is NaN when either end is missing.
    """
    levels = np.asarray(levels, dtype=float)
    sign = np.asarray(direction_sign, dtype=float)
    if levels.ndim != 2 or sign.shape != (levels.shape[1],):
        raise ValueError("levels must be (periods x kpis) with one sign per KPI")
    if not np.all(np.isin(sign, (-1.0, 0.0, 1.0))):
        raise ValueError("direction_sign values must be +1, -1 or 0")
    changes = np.diff(levels, axis=0) * sign
    changes[:, sign == 0] = np.nan
    return changes


def standardize(changes: np.ndarray) -> np.ndarray:
    """Center and scale each column over its own values.

    Pearson's r is invariant to a*x+b (a > 0) on any subset of periods, so this does
    not change any result; it keeps the sums of the one-pass formula small and avoids
    the cancellation that raw business values (in millions) would cause.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        present = ~np.isnan(changes)
        counts = present.sum(axis=0)
        means = np.where(counts > 0, np.nansum(changes, axis=0) / counts, 0.0)
        centered = changes - means
        scale = np.sqrt(np.nansum(centered**2, axis=0) / np.maximum(counts, 1))
    scale = np.where(scale > 0, scale, 1.0)
    return centered / scale


def find_associations(
    changes: np.ndarray,
    *,
    same_group: np.ndarray | None,
    max_lag: int = DEFAULT_MAX_LAG,
    min_pairs: int = DEFAULT_MIN_PAIRS,
    q_threshold: float = DEFAULT_Q_THRESHOLD,
    block_size: int = 1000,
    rank: np.ndarray | None = None,
) -> list[Association]:
    """Return the significant lagged associations between KPIs of different groups.

    ``changes`` comes from :func:`period_changes`; ``same_group`` (kpis x kpis, True
    for pairs inside one silo) removes those pairs from testing altogether; ``rank``
    orients the lag-0 tests (see :func:`scan_block`). The pairs
    are scanned in blocks of ``block_size`` leaders x ``2 * block_size`` followers in
    this process; the detection tasks run the same blocks across Celery workers.
    """
    standardized = standardize(np.asarray(changes, dtype=float))
    periods, kpis = standardized.shape
    p_keep = plan_p_keep(kpis, periods, max_lag, q_threshold)
    blocks = [
        (np.arange(*leaders), np.arange(*followers))
        for leaders in block_ranges(kpis, block_size)
        for followers in block_ranges(kpis, 2 * block_size)
    ]
    while True:
        scans = [
            scan_block(
                standardized,
                leaders,
                followers,
                same_group=same_group,
                max_lag=max_lag,
                min_pairs=min_pairs,
                q_threshold=q_threshold,
                p_keep=p_keep,
                rank=rank,
            )
            for leaders, followers in blocks
        ]
        merged = merge_scans(scans, p_keep=p_keep, q_threshold=q_threshold)
        if isinstance(merged, list):
            return merged
        p_keep = merged
