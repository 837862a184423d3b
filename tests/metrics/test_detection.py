"""Tests of the pure detection statistics on synthetic arrays (no database)."""

import numpy as np
import pytest
from scipy import stats

from metrics import detection
from metrics.detection import (
    Association,
    benjamini_hochberg,
    combine_candidates,
    fdr,
    find_associations,
    pairs,
    period_changes,
)
from tests.metrics.oracle import (
    block_candidates,
    lagged_correlations,
    lagged_correlations_block,
)

PERIODS = 36


def planted_levels(
    seed: int, *, coefficient: float, lag: int, kpis: int = 2
) -> np.ndarray:
    """Return levels where KPI 1's change at t+lag = coefficient * KPI 0's at t + noise."""
    rng = np.random.default_rng(seed)
    changes = rng.normal(size=(PERIODS - 1, kpis))
    changes[lag:, 1] = coefficient * changes[: -lag or None, 0] + 0.4 * rng.normal(
        size=PERIODS - 1 - lag
    )
    first_row = np.full((1, kpis), 100.0)
    return np.cumsum(np.vstack([first_row, changes]), axis=0)


def test_period_changes_adjusts_direction_and_propagates_gaps():
    levels = np.array(
        [[1.0, 10.0, 5.0], [3.0, 7.0, 6.0], [np.nan, 4.0, 9.0], [6.0, 5.0, 1.0]]
    )
    changes = period_changes(levels, np.array([1, -1, 0]))
    expected = np.array(
        [[2.0, 3.0, np.nan], [np.nan, 3.0, np.nan], [np.nan, -1.0, np.nan]]
    )
    np.testing.assert_array_equal(changes, expected)


def test_period_changes_rejects_unknown_sign():
    with pytest.raises(ValueError, match="must be"):
        period_changes(np.zeros((3, 2)), np.array([1, 2]))


def test_correlation_matches_scipy_on_complete_cases():
    rng = np.random.default_rng(7)
    changes = rng.normal(size=(35, 5)) * [1.0, 1e6, 3.0, 0.01, 50.0] + 1e3
    changes[rng.random(changes.shape) < 0.2] = np.nan
    result = lagged_correlations(changes, max_lag=3, min_pairs=12)

    for lag, leader, follower in [(0, 0, 1), (1, 1, 2), (2, 3, 4), (3, 4, 0)]:
        x = changes[: 35 - lag, leader]
        y = changes[lag:, follower]
        both = ~np.isnan(x) & ~np.isnan(y)
        expected = stats.pearsonr(x[both], y[both])
        assert result.n[lag, leader, follower] == both.sum()
        assert result.r[lag, leader, follower] == pytest.approx(
            expected.statistic, abs=1e-12
        )
        assert result.r[lag, leader, follower] == pytest.approx(
            np.corrcoef(x[both], y[both])[0, 1], abs=1e-12
        )
        assert result.p[lag, leader, follower] == pytest.approx(
            expected.pvalue, rel=1e-9
        )


def test_planted_lagged_negative_relation_is_a_conflict_at_its_lag():
    changes = period_changes(
        planted_levels(11, coefficient=-0.8, lag=2), np.array([1, 1])
    )

    associations = find_associations(changes, same_group=None)

    assert [(a.leader, a.follower, a.lag, a.kind, a.n) for a in associations] == [
        (0, 1, 2, "conflict", 33)
    ]
    assert associations[0].q < 0.05
    assert associations[0].r < -0.7


def test_planted_positive_relation_is_a_synergy():
    changes = period_changes(planted_levels(12, coefficient=0.8, lag=1), np.ones(2))

    associations = find_associations(changes, same_group=None)

    assert [(a.leader, a.follower, a.lag, a.kind) for a in associations] == [
        (0, 1, 1, "synergy")
    ]


def test_independent_opposite_trends_are_not_flagged():
    rng = np.random.default_rng(3)
    trend = np.arange(PERIODS, dtype=float)
    levels = np.column_stack(
        [
            100 + 5 * trend + np.cumsum(rng.normal(size=PERIODS)),
            500 - 5 * trend + np.cumsum(rng.normal(size=PERIODS)),
        ]
    )
    # The levels themselves are almost perfectly anti-correlated: the trap is real.
    assert np.corrcoef(levels.T)[0, 1] < -0.95

    changes = period_changes(levels, np.ones(2))

    assert find_associations(changes, same_group=None) == []


def test_lower_is_better_follower_flips_the_sign():
    levels = planted_levels(11, coefficient=-0.8, lag=2)

    # The follower's raw value falls when the leader improves; if lower is better for
    # the follower, that fall is an improvement: a synergy, not a conflict.
    associations = find_associations(
        period_changes(levels, np.array([1, -1])), same_group=None
    )

    assert [(a.leader, a.follower, a.lag, a.kind) for a in associations] == [
        (0, 1, 2, "synergy")
    ]


def test_pairs_below_min_pairs_are_not_tested():
    rng = np.random.default_rng(5)
    changes = rng.normal(size=(20, 3))
    changes[:9, 2] = np.nan  # column 2 has 11 changes, one short of the minimum

    result = lagged_correlations(changes, max_lag=1, min_pairs=12)

    assert result.n[0, 0, 2] == 11
    assert np.isnan(result.r[:, :, 2]).all()
    assert np.isnan(result.p[:, 2, :]).all()
    assert result.n[1, 0, 1] == 19
    assert np.isfinite(result.r[1, 0, 1])


def test_constant_kpi_is_not_tested():
    rng = np.random.default_rng(6)
    changes = rng.normal(size=(20, 2))
    changes[:, 1] = 2.5

    result = lagged_correlations(changes, max_lag=0, min_pairs=12)

    assert np.isnan(result.r[0, 0, 1])
    assert np.isnan(result.p[0, 1, 0])


def test_benjamini_hochberg_matches_hand_computation():
    q = benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.005]))

    np.testing.assert_allclose(q, [0.02, 0.04, 0.04, 0.02], rtol=0, atol=1e-15)


def test_benjamini_hochberg_keeps_nan_and_shape_and_matches_scipy():
    rng = np.random.default_rng(9)
    p = rng.random((4, 5, 6)) ** 3
    p[rng.random(p.shape) < 0.1] = np.nan

    q = benjamini_hochberg(p)

    finite = ~np.isnan(p)
    assert q.shape == p.shape
    np.testing.assert_array_equal(np.isnan(q), ~finite)
    np.testing.assert_allclose(
        q[finite], stats.false_discovery_control(p[finite]), rtol=1e-12
    )
    order = np.argsort(p[finite])
    assert np.all(np.diff(q[finite][order]) >= 0)
    assert q[finite].max() <= 1.0


def test_benjamini_hochberg_on_a_subset_is_exact_below_alpha():
    rng = np.random.default_rng(10)
    p = np.concatenate([rng.random(200) * 1e-3, rng.random(800)])
    alpha = 0.05
    full = benjamini_hochberg(p)
    small = p <= alpha

    partial = benjamini_hochberg(p[small], total_tests=p.size)

    exact = full[small] <= alpha
    np.testing.assert_array_equal(partial[exact], full[small][exact])
    assert np.all(partial[~exact] > alpha)


def test_same_silo_pairs_never_appear_and_are_not_counted():
    changes = period_changes(
        planted_levels(11, coefficient=-0.8, lag=2, kpis=4), np.ones(4)
    )
    same_group = np.zeros((4, 4), dtype=bool)
    same_group[:2, :2] = True  # KPIs 0 and 1 are one silo

    assert find_associations(changes, same_group=same_group) == []
    result = lagged_correlations(changes)
    candidates = block_candidates(result, same_group=same_group)
    # 4 KPIs: 12 ordered pairs minus the 2 inside the silo at lags 1-3, and the 5
    # unordered cross-silo pairs at lag 0 (where (a, b) and (b, a) are one test).
    assert candidates.tests == 3 * 10 + 5


def test_pure_noise_gives_no_false_discovery():
    # 30 KPIs x 35 changes x 4 lags = 3,480 tests under the null. BH at q = 0.05 bounds
    # the expected share of false discoveries when some are made; with every null
    # true, the chance of any discovery at all is at most 5%, so a fixed seed
    # should give none (seed 2024 does; the assertion allows one for safety).
    rng = np.random.default_rng(2024)
    levels = np.cumsum(rng.normal(size=(PERIODS, 30)), axis=0)

    associations = find_associations(
        period_changes(levels, np.ones(30)), same_group=None
    )

    assert len(associations) <= 1


def test_blocks_concatenate_to_the_full_computation_exactly():
    rng = np.random.default_rng(21)
    changes = rng.normal(size=(35, 17)) * 100
    changes[rng.random(changes.shape) < 0.1] = np.nan
    full = lagged_correlations(changes)
    parts = [np.arange(0, 5), np.arange(5, 11), np.arange(11, 17)]

    grid = [
        [lagged_correlations_block(changes, leaders, followers) for followers in parts]
        for leaders in parts
    ]

    def joined(name: str) -> np.ndarray:
        return np.concatenate(
            [
                np.concatenate([getattr(block, name) for block in row], axis=2)
                for row in grid
            ],
            axis=1,
        )

    # Counts and the untested pattern are exact. BLAS picks its kernel by matrix
    # shape, so a block's sums may differ from the full product in the last bit:
    # r and p agree to a few units in the last place, not bit for bit.
    np.testing.assert_array_equal(joined("n"), full.n)
    np.testing.assert_array_equal(np.isnan(joined("r")), np.isnan(full.r))
    np.testing.assert_allclose(joined("r"), full.r, rtol=0, atol=1e-14)
    # atol covers the self pairs, where r is 1 to within an ulp and p is ~0.
    np.testing.assert_allclose(joined("p"), full.p, rtol=1e-12, atol=1e-200)


def test_blocked_run_finds_the_same_associations_as_one_run():
    levels = planted_levels(11, coefficient=-0.8, lag=2, kpis=12)
    levels[:, 7] = planted_levels(12, coefficient=0.8, lag=1)[:, 1]
    changes = period_changes(levels, np.ones(12))
    same_group = np.zeros((12, 12), dtype=bool)
    same_group[8:, 8:] = True

    single = find_associations(changes, same_group=same_group)
    halves = [np.arange(0, 6), np.arange(6, 12)]
    blocks = [
        block_candidates(
            lagged_correlations_block(changes, leaders, followers),
            same_group=same_group,
        )
        for leaders in halves
        for followers in halves
    ]

    blocked = combine_candidates(blocks)

    def key(a: Association) -> tuple:
        return (a.leader, a.follower, a.lag, a.kind, a.n)

    assert [key(a) for a in blocked] == [key(a) for a in single]
    for block_found, single_found in zip(blocked, single, strict=True):
        assert block_found.r == pytest.approx(single_found.r, abs=1e-14)
        assert block_found.q == pytest.approx(single_found.q, rel=1e-12)
    assert all(isinstance(a, Association) for a in single)
    assert (0, 1, 2, "conflict") in [
        (a.leader, a.follower, a.lag, a.kind) for a in single
    ]


def test_result_does_not_depend_on_rescaling_or_kpi_order():
    levels = planted_levels(11, coefficient=-0.8, lag=2, kpis=5)
    changes = period_changes(levels, np.ones(5))
    baseline = find_associations(changes, same_group=None)

    permutation = np.array([3, 1, 4, 0, 2])
    rescaled = changes[:, permutation] * [2.0, 1e5, 0.3, 7.0, 1e-4] + 1e4
    # rank keeps the lag-0 orientation of the original columns.
    moved = find_associations(rescaled, same_group=None, rank=permutation)

    # Column c of the new matrix is column permutation[c] of the old one.
    def key(a: Association) -> tuple:
        return (a.leader, a.follower, a.lag, a.kind, a.n)

    assert sorted(
        (int(permutation[a.leader]), int(permutation[a.follower]), *key(a)[2:])
        for a in moved
    ) == sorted(key(a) for a in baseline)
    for a in moved:
        original = next(
            b
            for b in baseline
            if (b.leader, b.follower)
            == (permutation[a.leader], permutation[a.follower])
        )
        assert a.r == pytest.approx(original.r, abs=1e-12)
        assert a.q == pytest.approx(original.q, rel=1e-9)


def test_a_tight_first_cut_is_widened_and_gives_the_exact_result(monkeypatch):
    # Many true effects: with room for only one rejection in the first cut, the blocks
    # keep too few candidates, the histogram says so, and the second scan is exact.
    rng = np.random.default_rng(5)
    changes = rng.normal(size=(47, 40))
    for leader in range(0, 40, 2):
        changes[1:, leader + 1] = -0.8 * changes[:-1, leader] + 0.3 * rng.normal(
            size=46
        )
    groups = np.arange(40) % 2  # leaders and followers in two silos
    same_group = groups[:, None] == groups[None, :]
    exact = combine_candidates(
        [block_candidates(lagged_correlations(changes), same_group=same_group)]
    )
    calls = []
    original = pairs.scan_block

    def counting(*args, **kwargs):
        calls.append(kwargs["p_keep"])
        return original(*args, **kwargs)

    monkeypatch.setattr(fdr, "EXPECTED_REJECTIONS", 1)
    monkeypatch.setattr(pairs, "scan_block", counting)

    found = find_associations(changes, same_group=same_group, block_size=15)

    assert len(exact) >= 15
    assert [(a.leader, a.follower, a.lag, a.n) for a in found] == [
        (a.leader, a.follower, a.lag, a.n) for a in exact
    ]
    for a, b in zip(found, exact, strict=True):
        assert a.q == pytest.approx(b.q, rel=1e-9)
    # 3 x 2 blocks scanned twice: first with the tight cut, then with the wider one.
    assert len(calls) == 12
    assert calls[0] < calls[-1]


@pytest.mark.parametrize("seed", range(5))
def test_bh_upper_bound_is_never_below_the_true_cutoff(seed):
    rng = np.random.default_rng(seed)
    tests = 200_000
    # Mostly null p-values, plus a varying number of strong signals.
    p = np.concatenate([rng.random(tests - 500 * seed), rng.random(500 * seed) * 1e-4])
    q = benjamini_hochberg(p)
    cutoff = p[q < 0.05].max(initial=0.0)
    edges = detection.histogram_edges(0.05)
    below = p[p <= 0.05]
    histogram = np.bincount(
        np.searchsorted(edges, below, side="left"), minlength=edges.size
    )[: edges.size]

    bound = detection.bh_upper_bound(histogram, tests, 0.05)

    assert bound >= cutoff
    # and it is tight: within two bins of the cut-off when there is one.
    if cutoff > 0:
        assert bound <= cutoff * (edges[1] / edges[0]) ** 2


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (3, 1), (5, 2), (9, 4), (13, 30)])
@pytest.mark.parametrize("missing", [0.0, 0.5, 1.0])
def test_preparation_never_fails_on_small_or_empty_matrices(shape, missing):
    from metrics.detection.prepare import prepare

    rng = np.random.default_rng(3)
    changes = rng.normal(size=shape)
    changes[rng.random(shape) < missing] = np.nan

    prepared = prepare(
        changes,
        groups=np.arange(shape[1]) % 3,
        position=np.arange(shape[0]) % 12,
        season=12,
    )

    assert prepared.tested.shape == shape
    assert prepared.lost.shape == (shape[1],)
    assert not np.isinf(prepared.tested).any()
