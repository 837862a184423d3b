"""The block scan of observed-conflict detection, on plain arrays (no ORM).

:func:`scan_block` runs the lagged Pearson tests of one block of leader columns
against follower columns of a standardized matrix: six matrix products per lag give
every pair's pairwise-complete sums at once (:func:`_lag_correlation`), and only the
tests whose t statistic can reach q get a p-value. :func:`block_ranges` cuts a run
into blocks; the detection tasks scan them across Celery workers,
:func:`metrics.detection.find_associations` in this process.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import special, stats

from metrics.detection.fdr import (
    DEFAULT_Q_THRESHOLD,
    BlockScan,
    Candidates,
    histogram_edges,
)

DEFAULT_MAX_LAG = 3
DEFAULT_MIN_PAIRS = 12

# A pair whose shared values vary by less than this (relative to their magnitude) is
# treated as constant: the variance term is then floating-point noise, not signal.
_RELATIVE_VARIANCE_TOLERANCE = 1e-10


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

    Like computing every p-value and then cutting (the reference the tests check it
    against, ``tests/metrics/oracle.py``), but in bounded memory and without computing
    a p-value for the tests that cannot reach ``q_threshold`` (their t statistic is
    compared with the critical t per degrees of freedom instead). Self pairs and ``same_group`` pairs are not tests; ``groups``
    (one group id per column of the whole matrix) says the same as ``same_group``
    without a kpis x kpis matrix. With ``native`` (one flag per column), a pair of
    two columns that are both not native to this matrix is not a test either: two
    monthly KPIs aggregated to quarters were tested on the monthly grid already.

    ``lost`` (one count per column) is taken from the degrees of freedom of a lag-0
    test, the larger of the pair's two: at lag 0 both columns were residualized on the
    same drivers' scores. ``one_sided``: p-values of the sign's family (see
    :func:`metrics.detection.fdr.combine_candidates`).

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


def block_ranges(size: int, block: int) -> list[tuple[int, int]]:
    """Split 0..size into consecutive [start, stop) ranges of at most ``block``."""
    return [(start, min(start + block, size)) for start in range(0, size, block)]
