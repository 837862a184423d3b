"""The goal and shared-goal arithmetic (goals/progress.py): pure, no database."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from goals.progress import (
    GUARDRAIL_CAP,
    Guard,
    Part,
    aggregate,
    attainment,
    shared_progress,
    weighted_mean,
    worsening,
)

UP, DOWN, BAND = "higher_is_better", "lower_is_better", "target_band"


@pytest.mark.parametrize(
    ("values", "aggregation", "expected"),
    [
        ([1.0, 2.0, 4.0], "sum", 7.0),
        ([1.0, 2.0, 4.0], "mean", 7.0 / 3),
        ([1.0, 2.0, 4.0], "last", 4.0),
        # math.fsum: exact, where a running sum gives 0.6000000000000001.
        ([0.1, 0.2, 0.3], "sum", 0.6),
        ([], "sum", None),
    ],
)
def test_aggregate(values, aggregation, expected):
    assert aggregate(values, aggregation) == expected


@pytest.mark.parametrize(
    ("direction", "baseline", "actual", "target", "expected"),
    [
        (UP, 100, 125, 150, 0.5),
        (UP, 100, 150, 150, 1.0),
        (UP, 100, 170, 150, 1.0),  # beyond the target: clamped
        (UP, 100, 80, 150, 0.0),  # worse than the baseline: clamped
        (DOWN, 10, 8, 6, 0.5),
        (DOWN, 10, 5, 6, 1.0),
        (DOWN, 10, 12, 6, 0.0),
        (UP, 100, 100, 100, 1.0),  # target equals baseline: met
        (UP, 100, 99, 100, 0.0),  # ... not met
        (DOWN, 10, 10, 10, 1.0),
        (DOWN, 10, 10.5, 10, 0.0),
        (UP, 100, None, 150, None),  # no data: unknown, never 0
    ],
)
def test_attainment_by_direction(direction, baseline, actual, target, expected):
    assert (
        attainment(direction=direction, baseline=baseline, actual=actual, target=target)
        == expected
    )


@pytest.mark.parametrize(
    ("actual", "expected"),
    [
        (95.0, 1.0),  # inside the band [90, 100]
        (90.0, 1.0),
        (100.0, 1.0),
        (105.0, 0.5),  # half a band width (10) above
        (85.0, 0.5),
        (110.0, 0.0),  # one tolerance out
        (150.0, 0.0),
    ],
)
def test_band_attainment_falls_linearly_to_zero_one_band_width_outside(
    actual, expected
):
    assert (
        attainment(
            direction=BAND,
            baseline=70.0,
            actual=actual,
            target_low=90.0,
            target_high=100.0,
        )
        == expected
    )


def test_a_zero_width_band_at_a_subnormal_edge_still_has_a_slope():
    # 10% of 5e-324 underflows to 0: the tolerance falls back to 1 (found by hypothesis).
    assert (
        attainment(
            direction=BAND,
            baseline=0,
            actual=0.5,
            target_low=5e-324,
            target_high=5e-324,
        )
        == 0.5
    )


def test_zero_width_band_uses_ten_percent_of_the_edge():
    # Band [50, 50]: tolerance 5, so 52.5 is half way.
    assert (
        attainment(
            direction=BAND, baseline=0, actual=52.5, target_low=50, target_high=50
        )
        == 0.5
    )


@pytest.mark.parametrize(
    ("direction", "baseline", "current", "expected"),
    [
        (UP, 84.0, 81.5, 2.5),  # CSAT fell 2.5 points
        (UP, 84.0, 86.0, -2.0),  # it rose: negative worsening
        (DOWN, 4.0, 5.0, 1.0),  # a lower-is-better KPI rose by 1
        (UP, 84.0, None, None),
    ],
)
def test_worsening(direction, baseline, current, expected):
    assert (
        worsening(direction=direction, baseline=baseline, current=current) == expected
    )


def test_band_worsening_is_the_growth_of_the_distance_outside_the_band():
    common = {"direction": BAND, "band_low": 90.0, "band_high": 100.0}
    assert worsening(baseline=95.0, current=103.0, **common) == 3.0
    assert worsening(baseline=104.0, current=101.0, **common) == -3.0
    assert worsening(baseline=95.0, current=99.0, **common) == 0.0


def test_shared_progress_is_the_weighted_mean_over_parts_with_data():
    parts = [
        Part(key=1, silo="sales", weight=0.5, attainment=0.8),
        Part(key=2, silo="finance", weight=0.3, attainment=0.2),
        Part(key=3, silo="finance", weight=0.2, attainment=None),
    ]

    result = shared_progress(parts)

    # (0.5 * 0.8 + 0.3 * 0.2) / 0.8 = 0.575; the part without data is left out.
    assert result.progress == pytest.approx(0.575)
    assert (result.with_data, result.total) == (2, 3)
    assert result.per_silo == {"sales": 0.8, "finance": pytest.approx(0.2)}
    assert result.breached == ()
    assert result.capped is False


def test_shared_progress_without_any_data_is_unknown():
    result = shared_progress([Part(key=1, silo="sales", weight=1.0, attainment=None)])

    assert (result.progress, result.with_data, result.total) == (None, 0, 1)
    assert result.per_silo == {"sales": None}


def test_a_breached_guardrail_caps_progress():
    parts = [
        Part(key=1, silo="sales", weight=1.0, attainment=0.9),
        Part(key=2, silo="finance", weight=1.0, attainment=0.7),
    ]
    guards = [
        Guard(key=7, worsened_by=2.5, tolerance=2.0),  # CSAT fell 2.5 > 2 points
        Guard(key=8, worsened_by=1.0, tolerance=2.0),
        Guard(key=9, worsened_by=None, tolerance=0.0),  # no data: not breached
    ]

    result = shared_progress(parts, guards)

    assert result.uncapped == pytest.approx(0.8)
    assert result.progress == GUARDRAIL_CAP == 0.5
    assert result.breached == (7,)
    assert result.capped is True


def test_a_breached_guardrail_does_not_raise_low_progress():
    parts = [Part(key=1, silo="sales", weight=1.0, attainment=0.3)]

    result = shared_progress(parts, [Guard(key=1, worsened_by=5.0, tolerance=0.0)])

    assert (result.progress, result.breached, result.capped) == (0.3, (1,), False)


def test_worsening_exactly_at_the_tolerance_is_no_breach():
    assert Guard(key=1, worsened_by=2.0, tolerance=2.0).breached is False


finite = st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(
    direction=st.sampled_from([UP, DOWN]),
    baseline=finite,
    actual=finite,
    target=finite,
)
def test_attainment_is_within_zero_and_one(direction, baseline, actual, target):
    if (direction == UP and target < baseline) or (
        direction == DOWN and target > baseline
    ):
        target, baseline = baseline, target
    value = attainment(
        direction=direction, baseline=baseline, actual=actual, target=target
    )
    assert value is not None
    assert 0.0 <= value <= 1.0
    assert math.isfinite(value)


@settings(max_examples=200, deadline=None)
@given(low=finite, width=st.floats(0, 1e9), actual=finite)
def test_band_attainment_is_within_zero_and_one(low, width, actual):
    value = attainment(
        direction=BAND,
        baseline=0.0,
        actual=actual,
        target_low=low,
        target_high=low + width,
    )
    assert 0.0 <= value <= 1.0


parts_strategy = st.lists(
    st.tuples(
        st.sampled_from(["sales", "support", "finance"]),
        st.floats(1e-6, 1e6),
        st.one_of(st.none(), st.floats(0, 1)),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(rows=parts_strategy, factor=st.floats(1e-6, 1e12))
def test_scaling_every_weight_changes_nothing(rows, factor):
    parts = [
        Part(key=i, silo=s, weight=w, attainment=a) for i, (s, w, a) in enumerate(rows)
    ]
    scaled = [
        Part(key=p.key, silo=p.silo, weight=p.weight * factor, attainment=p.attainment)
        for p in parts
    ]

    original, rescaled = shared_progress(parts), shared_progress(scaled)

    if original.progress is None:
        assert rescaled.progress is None
    else:
        assert rescaled.progress == pytest.approx(
            original.progress, rel=1e-9, abs=1e-12
        )
        assert 0.0 <= rescaled.progress <= 1.0
        assert math.isfinite(rescaled.progress)
    assert rescaled.with_data == original.with_data


@settings(max_examples=200, deadline=None)
@given(
    pairs=st.lists(
        st.tuples(st.floats(1e-300, 1.7e308, allow_infinity=False), st.floats(0, 1)),
        min_size=1,
        max_size=20,
    )
)
def test_weighted_mean_is_finite_even_for_huge_weights(pairs):
    value = weighted_mean(pairs)
    assert math.isfinite(value)
    assert 0.0 <= value <= 1.0
