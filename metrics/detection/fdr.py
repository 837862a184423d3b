"""The false-discovery step of observed-conflict detection, on plain arrays (no ORM).

Each block of pairs (:mod:`metrics.detection.scan`) ships a :class:`BlockScan`: its
test count, a histogram of its p-values <= q, and its tests below a first cut.
:func:`merge_scans` reads from the summed histograms an upper bound of the
Benjamini-Hochberg cut-off; when the blocks kept every test below it,
:func:`combine_candidates` runs Benjamini-Hochberg once over all tests of the run
and, per pair, keeps the significant lag with the smallest p-value. A negative
association is a conflict, a positive one a synergy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

DEFAULT_Q_THRESHOLD = 0.05


#: Bins of the p-value histogram each block returns: log-spaced up to the q threshold.
#: The final step reads from it an upper bound of the Benjamini-Hochberg cut-off, so a
#: block only ships the few tests below that bound instead of every p <= q (under pure
#: noise, 5% of hundreds of millions of tests).
HISTOGRAM_BINS = 400
HISTOGRAM_FLOOR = 1e-12

#: Rejections a run expects at most when it picks its first cut (see plan_p_keep).
EXPECTED_REJECTIONS = 200_000


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


@dataclass(frozen=True, eq=False)
class BlockScan:
    """What one block ships to the final step: its test count, its histograms of
    p-values <= q (one row per family: conflicts then synergies when one-sided, one
    row otherwise), and its tests with ``p <= p_keep``."""

    tests: int
    histogram: np.ndarray
    candidates: Candidates


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


def histogram_edges(q_threshold: float) -> np.ndarray:
    """Return the upper edges of the p-value bins: bin j holds e[j-1] < p <= e[j]."""
    return np.geomspace(HISTOGRAM_FLOOR, q_threshold, HISTOGRAM_BINS)


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
