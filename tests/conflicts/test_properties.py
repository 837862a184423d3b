"""Property tests (hypothesis) of the detection statistics: order, scale, determinism."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metrics.detection import find_associations, period_changes


@st.composite
def companies(draw):
    """Levels of 3-8 KPIs in 2-3 silos over 20-40 periods, maybe with gaps and one
    planted lagged effect, plus each KPI's direction."""
    kpis = draw(st.integers(3, 8))
    periods = draw(st.integers(20, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    changes = rng.normal(size=(periods - 1, kpis))
    if draw(st.booleans()):
        lag = draw(st.integers(0, 3))
        coefficient = draw(st.sampled_from([-0.9, -0.7, 0.7, 0.9]))
        changes[lag:, 1] = coefficient * changes[: periods - 1 - lag, 0] + 0.3 * (
            rng.normal(size=periods - 1 - lag)
        )
    levels = np.vstack([np.full((1, kpis), 100.0), 100.0 + np.cumsum(changes, axis=0)])
    gap_share = draw(st.sampled_from([0.0, 0.05, 0.15]))
    levels[rng.random(levels.shape) < gap_share] = np.nan
    signs = np.array(
        draw(st.lists(st.sampled_from([1, -1]), min_size=kpis, max_size=kpis))
    )
    groups = np.array(draw(st.lists(st.integers(0, 2), min_size=kpis, max_size=kpis)))
    return levels, signs, groups


def run(levels, signs, groups, rank):
    return find_associations(
        period_changes(levels, signs),
        same_group=groups[:, None] == groups[None, :],
        rank=rank,
    )


def canonical(associations, names):
    return sorted(
        (names[a.leader], names[a.follower], a.lag, a.kind, a.n) for a in associations
    )


PROPERTY_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(company=companies(), data=st.data())
def test_result_does_not_depend_on_kpi_order(company, data):
    levels, signs, groups = company
    kpis = levels.shape[1]
    identity = np.arange(kpis)
    order = np.array(data.draw(st.permutations(range(kpis))))

    original = run(levels, signs, groups, rank=identity)
    # Column c of the shuffled company is KPI order[c]; its rank travels with it.
    shuffled = run(levels[:, order], signs[order], groups[order], rank=order)

    assert canonical(shuffled, order) == canonical(original, identity)
    by_pair = {(a.leader, a.follower): a for a in original}
    for a in shuffled:
        twin = by_pair[(order[a.leader], order[a.follower])]
        assert a.r == pytest.approx(twin.r, abs=1e-9)
        assert a.q == pytest.approx(twin.q, rel=1e-6)


@PROPERTY_SETTINGS
@given(
    company=companies(),
    scale=st.floats(1e-3, 1e6, allow_nan=False, allow_infinity=False),
    shift=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    column=st.integers(0, 7),
)
def test_result_does_not_depend_on_rescaling_a_kpi(company, scale, shift, column):
    levels, signs, groups = company
    column %= levels.shape[1]
    identity = np.arange(levels.shape[1])
    rescaled = levels.copy()
    rescaled[:, column] = scale * rescaled[:, column] + shift

    original = run(levels, signs, groups, rank=identity)
    moved = run(rescaled, signs, groups, rank=identity)

    assert canonical(moved, identity) == canonical(original, identity)
    # A shift of 1e6 on values scaled by 1e-3 leaves the changes only ~10 significant
    # digits in float64: equal up to that rounding, not bit for bit.
    for a, b in zip(moved, original, strict=True):
        assert a.r == pytest.approx(b.r, abs=1e-6)
        assert a.q == pytest.approx(b.q, rel=1e-4)


@PROPERTY_SETTINGS
@given(company=companies())
def test_rerunning_on_the_same_data_gives_the_same_result(company):
    levels, signs, groups = company
    identity = np.arange(levels.shape[1])

    assert run(levels, signs, groups, identity) == run(levels, signs, groups, identity)


@PROPERTY_SETTINGS
@given(company=companies())
def test_pairs_inside_one_silo_never_come_out(company):
    levels, signs, groups = company

    for a in run(levels, signs, groups, np.arange(levels.shape[1])):
        assert groups[a.leader] != groups[a.follower]
        assert a.q < 0.05
        assert a.n >= 12
        assert (a.kind == "conflict") == (a.r < 0)
