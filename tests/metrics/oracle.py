"""The straightforward reference implementation the fast block scan is checked against.

It computes every lagged correlation and every p-value of a block (with scipy's t
distribution), then cuts the tests that may survive false-discovery control: what
:func:`metrics.detection.scan.scan_block` does in bounded memory, computing p-values
only for the tests that can reach q. No application code or benchmark uses it; the
tests compare the two, and this one with scipy's own Pearson test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from metrics.detection import (
    DEFAULT_MAX_LAG,
    DEFAULT_MIN_PAIRS,
    DEFAULT_Q_THRESHOLD,
    Candidates,
    standardize,
)
from metrics.detection.scan import _lag_correlation


@dataclass(frozen=True, eq=False)
class LagResult:
    """Correlations of leader columns against follower columns, per lag.

    ``r``, ``p`` and ``n`` have shape (lags, leaders, followers); ``r`` and ``p`` are
    NaN where the pair was not tested. ``n`` counts the paired changes.
    """

    r: np.ndarray
    p: np.ndarray
    n: np.ndarray
    leader_columns: np.ndarray
    follower_columns: np.ndarray


def lagged_correlations_block(
    changes: np.ndarray,
    leader_columns: np.ndarray | Sequence[int],
    follower_columns: np.ndarray | Sequence[int],
    *,
    max_lag: int = DEFAULT_MAX_LAG,
    min_pairs: int = DEFAULT_MIN_PAIRS,
) -> LagResult:
    """Correlate the leader columns' changes at t with the followers' at t+lag.

    Use the periods where both changes exist (pairwise-complete). Return NaN ``r`` and
    ``p`` where fewer than ``min_pairs`` paired changes exist or either side is
    constant on them. A pair of a column with itself is computed like any other; the
    caller excludes it. Blocks of one matrix concatenate to the full computation.
    """
    if max_lag < 0 or min_pairs < 3:
        raise ValueError("max_lag must be >= 0 and min_pairs >= 3")
    leader_columns = np.asarray(leader_columns, dtype=np.intp)
    follower_columns = np.asarray(follower_columns, dtype=np.intp)
    # Standardize on the whole matrix, never per block, so that blocks agree exactly.
    standardized = standardize(np.asarray(changes, dtype=float))
    periods = standardized.shape[0]
    shape = (max_lag + 1, leader_columns.size, follower_columns.size)
    r = np.full(shape, np.nan)
    n = np.zeros(shape, dtype=np.int64)

    leaders = standardized[:, leader_columns]
    followers = standardized[:, follower_columns]
    for lag in range(min(max_lag, periods - 1) + 1):
        r[lag], n[lag] = _lag_correlation(leaders, followers, lag, min_pairs)

    return LagResult(
        r=r,
        p=_pearson_p_values(r, n),
        n=n,
        leader_columns=leader_columns,
        follower_columns=follower_columns,
    )


def lagged_correlations(
    changes: np.ndarray,
    max_lag: int = DEFAULT_MAX_LAG,
    min_pairs: int = DEFAULT_MIN_PAIRS,
) -> LagResult:
    """Return the lagged correlations of every column against every column.

    Arrays have shape (lags, kpis, kpis), indexed [lag, leader, follower].
    """
    columns = np.arange(np.asarray(changes).shape[1])
    return lagged_correlations_block(
        changes, columns, columns, max_lag=max_lag, min_pairs=min_pairs
    )


def _pearson_p_values(r: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Return two-sided p-values of Pearson's t-test with n-2 degrees of freedom."""
    freedom = np.maximum(n - 2, 1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        # |r| == 1 gives an infinite t and a p-value of exactly 0, as it should.
        t = np.abs(r) * np.sqrt(freedom / ((1.0 - r) * (1.0 + r)))
        p = 2.0 * stats.t.sf(t, freedom)
    return np.where(np.isnan(r), np.nan, np.minimum(p, 1.0))


def block_candidates(
    result: LagResult,
    *,
    same_group: np.ndarray | None = None,
    p_limit: float = DEFAULT_Q_THRESHOLD,
    rank: np.ndarray | None = None,
) -> Candidates:
    """Return the tests of a block with ``p <= p_limit`` and the block's test count.

    A pair of a KPI with itself and a pair marked in ``same_group`` (kpis x kpis,
    True inside one silo) are not tests: they count neither here nor in the
    false-discovery step, nor does the mirror of a lag-0 pair (see
    :func:`metrics.detection.scan.scan_block` for ``rank``). ``p_limit`` must be at
    least the final q threshold.
    """
    leaders = result.leader_columns[:, None]
    followers = result.follower_columns[None, :]
    excluded = leaders == followers
    if same_group is not None:
        excluded = excluded | np.asarray(same_group, dtype=bool)[leaders, followers]
    tested = ~np.isnan(result.p) & ~excluded[None, :, :]
    # Lag 0 is symmetric: one test per unordered pair (see scan_block).
    order = (
        np.arange(max(leaders.max(initial=0), followers.max(initial=0)) + 1)
        if rank is None
        else np.asarray(rank)
    )
    tested[0] &= order[leaders] < order[followers]
    lag, leader, follower = np.nonzero(tested & (result.p <= p_limit))
    return Candidates(
        tests=int(tested.sum()),
        leader=result.leader_columns[leader],
        follower=result.follower_columns[follower],
        lag=lag,
        r=result.r[lag, leader, follower],
        p=result.p[lag, leader, follower],
        n=result.n[lag, leader, follower],
    )
