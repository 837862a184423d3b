"""Rules of goals and shared goals."""

import datetime as dt
import math

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from goals.models import Contribution, Goal
from tests import factories

pytestmark = pytest.mark.django_db


def test_one_goal_per_kpi_and_cycle():
    goal = factories.GoalFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        factories.GoalFactory(cycle=goal.cycle, kpi=goal.kpi)
    assert Goal.objects.count() == 1


@pytest.mark.parametrize(
    ("target", "low", "high", "allowed"),
    [
        (150.0, None, None, True),
        (None, 1.0, 2.0, True),
        (None, 2.0, 1.0, False),
        (150.0, 1.0, 2.0, False),
        (None, None, None, False),
        (math.inf, None, None, False),
    ],
)
def test_database_holds_target_or_band(target, low, high, allowed):
    goal = factories.GoalFactory.build(
        cycle=factories.CycleFactory(),
        kpi=factories.KPIFactory(),
        target=target,
        target_low=low,
        target_high=high,
    )
    if allowed:
        goal.save()
    else:
        with pytest.raises(IntegrityError), transaction.atomic():
            goal.save()
        assert Goal.objects.count() == 0


def test_band_kpi_goal_needs_a_band_not_a_target():
    kpi = factories.KPIFactory(direction="target_band", band_low=1.0, band_high=2.0)
    goal = factories.GoalFactory.build(
        cycle=factories.CycleFactory(), kpi=kpi, target=1.5
    )

    with pytest.raises(ValidationError) as excinfo:
        goal.full_clean()
    assert excinfo.value.message_dict["target"] == [
        "A target-band KPI's goal sets a band (target low and high), not a single target."
    ]


def test_goal_due_period_must_not_precede_its_start():
    goal = factories.GoalFactory.build(
        cycle=factories.CycleFactory(),
        kpi=factories.KPIFactory(),
        period_start=dt.date(2027, 6, 1),
        period_end=dt.date(2027, 1, 1),
    )

    with pytest.raises(ValidationError) as excinfo:
        goal.full_clean()
    assert "period_end" in excinfo.value.message_dict
    with pytest.raises(IntegrityError, match="goal_period_order"), transaction.atomic():
        goal.save()


def test_contribution_weight_must_be_positive():
    contribution = factories.ContributionFactory.build(weight=0)
    contribution.shared_goal.cycle.save()
    contribution.shared_goal.save()
    contribution.goal = factories.GoalFactory(cycle=contribution.shared_goal.cycle)

    with (
        pytest.raises(IntegrityError, match="contribution_weight_positive"),
        transaction.atomic(),
    ):
        contribution.save()
    assert Contribution.objects.count() == 0


def test_contribution_goal_must_share_the_cycle():
    shared = factories.SharedGoalFactory()
    other_cycle_goal = factories.GoalFactory()

    contribution = Contribution(shared_goal=shared, goal=other_cycle_goal, weight=1)
    with pytest.raises(ValidationError) as excinfo:
        contribution.full_clean()
    assert excinfo.value.message_dict["goal"] == [
        "The goal belongs to another cycle than the shared goal."
    ]


@pytest.mark.parametrize(
    ("direction", "baseline", "target", "error"),
    [
        ("higher_is_better", 100.0, 80.0, "must not be below the baseline (100)"),
        ("lower_is_better", 5.0, 6.0, "must not be above the baseline (5)"),
        ("higher_is_better", 100.0, 100.0, None),
        ("lower_is_better", 5.0, 4.0, None),
    ],
)
def test_target_must_lie_on_the_improving_side(direction, baseline, target, error):
    goal = factories.GoalFactory.build(
        cycle=factories.CycleFactory(),
        kpi=factories.KPIFactory(direction=direction),
        baseline=baseline,
        target=target,
    )

    if error is None:
        goal.full_clean()
    else:
        with pytest.raises(ValidationError) as excinfo:
            goal.full_clean()
        assert error in excinfo.value.message_dict["target"][0]


@pytest.mark.parametrize(
    ("start", "end", "field", "message"),
    [
        (
            dt.date(2027, 1, 15),
            dt.date(2027, 12, 1),
            "period_start",
            "first day of a month",
        ),
        (dt.date(2026, 6, 1), dt.date(2027, 3, 1), "period_end", "must lie within FY"),
        (dt.date(2027, 1, 1), dt.date(2028, 1, 1), "period_end", "must lie within FY"),
    ],
)
def test_goal_periods_start_periods_inside_the_cycle(start, end, field, message):
    goal = factories.GoalFactory.build(
        cycle=factories.CycleFactory(name="FY2027"),
        kpi=factories.KPIFactory(),
        period_start=start,
        period_end=end,
    )

    with pytest.raises(ValidationError) as excinfo:
        goal.full_clean()
    assert message in excinfo.value.message_dict[field][0]
