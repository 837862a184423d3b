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
follower columns (:func:`scan_block`); each block ships its test count, a histogram of
its p-values and the tests below a first cut, and :func:`merge_scans` applies the
false-discovery step once over all blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special, stats

DEFAULT_MAX_LAG = 3
DEFAULT_MIN_PAIRS = 12
DEFAULT_Q_THRESHOLD = 0.05

# A pair whose shared values vary by less than this (relative to their magnitude) is
# treated as constant: the variance term is then floating-point noise, not signal.
_RELATIVE_VARIANCE_TOLERANCE = 1e-10


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


@dataclass(frozen=True)
class Association:
    """A significant lagged association between two KPIs (column indices)."""

    leader: int
    follower: int
    lag: int
    r: float
    p: float
    q: float
    n: int
    kind: Literal["conflict", "synergy"]


@dataclass(frozen=True, eq=False)
class Candidates:
    """The tests of one block that may survive false-discovery control.

    ``tests`` counts every test the block ran, so that the final Benjamini-Hochberg
    step knows the size of the whole family; the arrays hold only the tests with
    ``p <= p_limit``.
    """

    tests: int
    leader: np.ndarray
    follower: np.ndarray
    lag: np.ndarray
    r: np.ndarray
    p: np.ndarray
    n: np.ndarray


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


def _lag_correlation(
    leaders: np.ndarray, followers: np.ndarray, lag: int, min_pairs: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return (r, n) of standardized leader columns at t against followers at t+lag.

    Six matrix products give every pair's pairwise-complete sums at once; ``r`` is NaN
    where the pair has fewer than ``min_pairs`` paired changes or no variation.
    """
    periods = leaders.shape[0]
    lead = leaders[: periods - lag]
    follow = followers[lag:]
    lead_mask = (~np.isnan(lead)).astype(float)
    follow_mask = (~np.isnan(follow)).astype(float)
    lead_values = np.nan_to_num(lead, nan=0.0)
    follow_values = np.nan_to_num(follow, nan=0.0)

    count = lead_mask.T @ follow_mask
    sum_x = lead_values.T @ follow_mask
    sum_y = lead_mask.T @ follow_values
    sum_xx = (lead_values**2).T @ follow_mask
    sum_yy = lead_mask.T @ follow_values**2
    sum_xy = lead_values.T @ follow_values

    spread_x = count * sum_xx - sum_x**2
    spread_y = count * sum_yy - sum_y**2
    testable = (
        (count >= min_pairs)
        & (spread_x > _RELATIVE_VARIANCE_TOLERANCE * count * sum_xx)
        & (spread_y > _RELATIVE_VARIANCE_TOLERANCE * count * sum_yy)
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = (count * sum_xy - sum_x * sum_y) / np.sqrt(spread_x * spread_y)
    r = np.where(testable, np.clip(correlation, -1.0, 1.0), np.nan)
    return r, np.rint(count).astype(np.int64)


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


def benjamini_hochberg(
    p_values: np.ndarray, *, total_tests: int | None = None
) -> np.ndarray:
    """Return Benjamini-Hochberg q-values for the finite p-values, NaN elsewhere.

    ``total_tests`` is the size of the whole family when only part of it is given
    (the default is the number of finite p-values). Given every p-value <= alpha of
    the family, the q-values <= alpha are exact: a p-value above alpha contributes
    p * m / rank > alpha to the running minimum, so it can never lower a q-value to
    alpha or below.
    """
    p_values = np.asarray(p_values, dtype=float)
    q_values = np.full(p_values.shape, np.nan)
    finite = np.isfinite(p_values)
    given = p_values[finite]
    family = given.size if total_tests is None else total_tests
    if family < given.size:
        raise ValueError("total_tests is smaller than the number of p-values given")
    if given.size == 0:
        return q_values
    order = np.argsort(given, kind="stable")
    ranks = np.arange(1, given.size + 1)
    scaled = given[order] * family / ranks
    # The running minimum from the largest p down makes the q-values monotone in p.
    monotone = np.minimum.accumulate(scaled[::-1])[::-1]
    q_sorted = np.minimum(monotone, 1.0)
    q_given = np.empty_like(q_sorted)
    q_given[order] = q_sorted
    q_values[finite] = q_given
    return q_values


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
    :func:`scan_block` for ``rank``). ``p_limit`` must be at least the final q
    threshold.
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


def combine_candidates(
    blocks: Sequence[Candidates],
    *,
    q_threshold: float = DEFAULT_Q_THRESHOLD,
    one_sided: bool = False,
) -> list[Association]:
    """Apply Benjamini-Hochberg over all blocks and return the significant pairs.

    Every block must have been cut with ``p_limit >= q_threshold``. With
    ``one_sided`` the p-values are one-sided and conflicts (r < 0) and synergies
    (r > 0) are two families, each of the run's size, each controlled at q. For each
    (leader, follower) keep the significant lag with the smallest p-value (the
    shortest lag on a tie). Return associations ordered by leader, then follower.
    """
    total_tests = sum(block.tests for block in blocks)
    if total_tests == 0:
        return []

    def joined(name: str) -> np.ndarray:
        return np.concatenate([getattr(block, name) for block in blocks])

    leader, follower, lag = joined("leader"), joined("follower"), joined("lag")
    r, p, n = joined("r"), joined("p"), joined("n")
    q = np.full(p.shape, np.nan)
    families = [r < 0, r >= 0] if one_sided else [np.ones(r.shape, dtype=bool)]
    for family in families:
        q[family] = benjamini_hochberg(p[family], total_tests=total_tests)
    significant = np.flatnonzero(q < q_threshold)
    # Sort by pair, then p, then lag: the first row of each pair is the one to keep.
    order = significant[
        np.lexsort(
            (
                lag[significant],
                p[significant],
                follower[significant],
                leader[significant],
            )
        )
    ]
    pairs = np.stack([leader[order], follower[order]], axis=1)
    first = np.ones(order.size, dtype=bool)
    first[1:] = np.any(pairs[1:] != pairs[:-1], axis=1)
    return [
        Association(
            leader=int(leader[index]),
            follower=int(follower[index]),
            lag=int(lag[index]),
            r=float(r[index]),
            p=float(p[index]),
            q=float(q[index]),
            n=int(n[index]),
            kind="conflict" if r[index] < 0 else "synergy",
        )
        for index in order[first]
    ]


#: Bins of the p-value histogram each block returns: log-spaced up to the q threshold.
#: The final step reads from it an upper bound of the Benjamini-Hochberg cut-off, so a
#: block only ships the few tests below that bound instead of every p <= q (under pure
#: noise, 5% of hundreds of millions of tests).
HISTOGRAM_BINS = 400
HISTOGRAM_FLOOR = 1e-12

#: Rejections a run expects at most when it picks its first cut (see plan_p_keep).
EXPECTED_REJECTIONS = 200_000


def histogram_edges(q_threshold: float) -> np.ndarray:
    """Return the upper edges of the p-value bins: bin j holds e[j-1] < p <= e[j]."""
    return np.geomspace(HISTOGRAM_FLOOR, q_threshold, HISTOGRAM_BINS)


@dataclass(frozen=True, eq=False)
class BlockScan:
    """What one block ships to the final step: its test count, its histograms of
    p-values <= q (one row per family: conflicts then synergies when one-sided, one
    row otherwise), and its tests with ``p <= p_keep``."""

    tests: int
    histogram: np.ndarray
    candidates: Candidates


def _critical_t(q_threshold: float, max_freedom: int, one_sided: bool) -> np.ndarray:
    # |t| at which the p-value equals q, per degrees of freedom (index = df). Taken
    # a hair lower so that rounding never drops a test whose exact p is <= q.
    freedom = np.arange(max_freedom + 1, dtype=float)
    tail = q_threshold if one_sided else q_threshold / 2.0
    with np.errstate(invalid="ignore"):
        critical = stats.t.isf(tail, np.maximum(freedom, 1.0))
    return critical * (1.0 - 1e-9)


def scan_block(
    standardized: np.ndarray,
    leader_columns: np.ndarray | Sequence[int],
    follower_columns: np.ndarray | Sequence[int],
    *,
    same_group: np.ndarray | None = None,
    max_lag: int = DEFAULT_MAX_LAG,
    min_pairs: int = DEFAULT_MIN_PAIRS,
    q_threshold: float = DEFAULT_Q_THRESHOLD,
    p_keep: float = DEFAULT_Q_THRESHOLD,
    rank: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    lost: np.ndarray | None = None,
    native: np.ndarray | None = None,
    one_sided: bool = False,
) -> BlockScan:
    """Test one block of pairs of a standardized matrix (changes, or prepared ones).

    Like :func:`lagged_correlations_block` followed by :func:`block_candidates`, but in
    bounded memory and without computing a p-value for the tests that cannot reach
    ``q_threshold`` (their t statistic is compared with the critical t per degrees of
    freedom instead). Self pairs and ``same_group`` pairs are not tests; ``groups``
    (one group id per column of the whole matrix) says the same as ``same_group``
    without a kpis x kpis matrix. With ``native`` (one flag per column), a pair of
    two columns that are both not native to this matrix is not a test either: two
    monthly KPIs aggregated to quarters were tested on the monthly grid already.

    ``lost`` (one count per column) is taken from the degrees of freedom of a lag-0
    test, the larger of the pair's two: at lag 0 both columns were residualized on the
    same drivers' scores. ``one_sided``: p-values of the sign's family (see
    :func:`combine_candidates`).

    At lag 0, (a, b) and (b, a) are one and the same test: it runs once, with the
    column of lower ``rank`` (one value per column of the whole matrix; the default is
    the column index) as the leader, so the family counts it once and the result does
    not depend on the order of the columns when ``rank`` is given.
    """
    if max_lag < 0 or min_pairs < 3:
        raise ValueError("max_lag must be >= 0 and min_pairs >= 3")
    if not 0 < p_keep <= q_threshold < 1:
        raise ValueError("need 0 < p_keep <= q_threshold < 1")
    standardized = np.asarray(standardized, dtype=float)
    leader_columns = np.asarray(leader_columns, dtype=np.intp)
    follower_columns = np.asarray(follower_columns, dtype=np.intp)
    periods = standardized.shape[0]
    excluded = leader_columns[:, None] == follower_columns[None, :]
    if same_group is not None:
        excluded |= np.asarray(same_group, dtype=bool)[
            leader_columns[:, None], follower_columns[None, :]
        ]
    if groups is not None:
        group_of = np.asarray(groups)
        excluded |= (
            group_of[leader_columns][:, None] == group_of[follower_columns][None, :]
        )
    if native is not None:
        is_native = np.asarray(native, dtype=bool)
        excluded |= ~(
            is_native[leader_columns][:, None] | is_native[follower_columns][None, :]
        )
    lost_at_zero = (
        np.zeros((leader_columns.size, follower_columns.size), dtype=np.int64)
        if lost is None
        else np.maximum(
            np.asarray(lost)[leader_columns][:, None],
            np.asarray(lost)[follower_columns][None, :],
        )
    )
    order = np.arange(standardized.shape[1]) if rank is None else np.asarray(rank)
    # Pairs at lag 0 with the "wrong" orientation (see above).
    mirrored = order[leader_columns][:, None] >= order[follower_columns][None, :]
    critical = _critical_t(q_threshold, periods, one_sided)
    edges = histogram_edges(q_threshold)
    histogram = np.zeros((2 if one_sided else 1, edges.size), dtype=np.int64)
    tests = 0
    kept: dict[str, list[np.ndarray]] = {
        name: [] for name in ("leader", "follower", "lag", "r", "p", "n")
    }
    leaders = standardized[:, leader_columns]
    followers = standardized[:, follower_columns]
    for lag in range(min(max_lag, max(periods - 1, 0)) + 1):
        r, n = _lag_correlation(leaders, followers, lag, min_pairs)
        spent = lost_at_zero if lag == 0 else 0
        usable = n - 2 - spent
        freedom = np.maximum(usable, 1)
        tested = ~np.isnan(r) & ~excluded & (usable >= 1)
        if lag == 0:
            tested &= ~mirrored
        tests += int(np.count_nonzero(tested))
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.abs(r) * np.sqrt(freedom / ((1.0 - r) * (1.0 + r)))
        leader, follower = np.nonzero(tested & (t >= critical[freedom]))
        if leader.size == 0:
            continue
        r_sel = r[leader, follower]
        n_sel = n[leader, follower]
        freedom_sel = freedom[leader, follower]
        p_sel = _t_p_values(r_sel, freedom_sel, one_sided)
        within_q = p_sel <= q_threshold
        family = (r_sel >= 0).astype(np.intp) if one_sided else np.zeros_like(leader)
        bins = np.searchsorted(edges, p_sel[within_q], side="left")
        histogram += np.bincount(
            family[within_q] * edges.size + bins, minlength=histogram.size
        )[: histogram.size].reshape(histogram.shape)
        keep = p_sel <= p_keep
        kept["leader"].append(leader_columns[leader[keep]])
        kept["follower"].append(follower_columns[follower[keep]])
        kept["lag"].append(np.full(int(keep.sum()), lag, dtype=np.int64))
        kept["r"].append(r_sel[keep])
        kept["p"].append(p_sel[keep])
        kept["n"].append(n_sel[keep])

    def joined(name: str, dtype: type) -> np.ndarray:
        parts = kept[name]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

    return BlockScan(
        tests=tests,
        histogram=histogram,
        candidates=Candidates(
            tests=tests,
            leader=joined("leader", np.intp),
            follower=joined("follower", np.intp),
            lag=joined("lag", np.int64),
            r=joined("r", float),
            p=joined("p", float),
            n=joined("n", np.int64),
        ),
    )


def _t_p_values(r: np.ndarray, freedom: np.ndarray, one_sided: bool) -> np.ndarray:
    """p-values of the t-test of ``r`` with ``freedom`` degrees of freedom."""
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.abs(r) * np.sqrt(freedom / ((1.0 - r) * (1.0 + r)))
        # Student's t distribution function itself (what stats.t.sf calls, without
        # its per-call overhead): millions of p-values per block under the null.
        p = special.stdtr(freedom, -t) * (1.0 if one_sided else 2.0)
    return np.where(np.isnan(r), np.nan, np.minimum(p, 1.0))


def plan_p_keep(
    kpis: int, periods: int, max_lag: int, q_threshold: float = DEFAULT_Q_THRESHOLD
) -> float:
    """Return the first cut blocks keep: q itself for small runs, lower for large ones.

    The Benjamini-Hochberg cut-off is at most q * rejections / tests; with the number of
    tests bounded by kpis^2 * lags, a cut of q * EXPECTED_REJECTIONS / that bound is
    enough unless a run rejects more, which :func:`bh_upper_bound` detects afterwards.
    """
    bound = max(kpis * (kpis - 1) * min(max_lag + 1, max(periods - 1, 1)), 1)
    return float(min(q_threshold, q_threshold * EXPECTED_REJECTIONS / bound))


def bh_upper_bound(
    histogram: np.ndarray, total_tests: int, q_threshold: float = DEFAULT_Q_THRESHOLD
) -> float:
    """Return an upper bound of the Benjamini-Hochberg cut-off from the summed histogram.

    The cut-off is the largest p with #(tests <= p) >= p * tests / q. It can fall in bin
    (e[j-1], e[j]] only if that bin's cumulative count exceeds e[j-1] * tests / q, so
    e[j] of the highest such bin bounds it. Candidates with p up to the bound are all
    the final step needs for exact q-values below q (see :func:`benjamini_hochberg`).
    A histogram of several rows (families) gives the largest of their bounds.
    """
    edges = histogram_edges(q_threshold)
    if total_tests == 0:
        return float(edges[0])
    bound = float(edges[0])
    for row in np.atleast_2d(histogram):
        cumulative = np.cumsum(row)
        possible = cumulative[1:] > edges[:-1] * total_tests / q_threshold
        above = np.flatnonzero(possible)
        if above.size:
            bound = max(bound, float(edges[above[-1] + 1]))
    return bound


def merge_scans(
    scans: Sequence[BlockScan],
    *,
    p_keep: float,
    q_threshold: float = DEFAULT_Q_THRESHOLD,
    one_sided: bool = False,
) -> list[Association] | float:
    """Apply the false-discovery step over all blocks' scans.

    Return the associations when the blocks kept every test the step needs, else the
    ``p_keep`` to scan the blocks again with (rare: more than EXPECTED_REJECTIONS).
    """
    total_tests = sum(scan.tests for scan in scans)
    histogram = np.sum([np.atleast_2d(scan.histogram) for scan in scans], axis=0)
    needed = bh_upper_bound(histogram, total_tests, q_threshold)
    if needed > p_keep:
        return needed
    return combine_candidates(
        [scan.candidates for scan in scans],
        q_threshold=q_threshold,
        one_sided=one_sided,
    )


def block_ranges(size: int, block: int) -> list[tuple[int, int]]:
    """Split 0..size into consecutive [start, stop) ranges of at most ``block``."""
    return [(start, min(start + block, size)) for start in range(0, size, block)]


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
