"""Pace and status of goals (goals.pace), on the numbers a sales year really has.

The traps: a sum goal read against its whole-year totals says 0% until autumn; a linear
pace calls a December-heavy business "at risk" every November; a KPI whose figures stop
coming in must not stand still on its last good month.
"""

import datetime as dt

import pytest
import time_machine

from goals import pace as pacing
from goals.selectors import goal_list_with_actuals, goal_pace, with_pace
from metrics.models import Measurement
from tests import factories

MONTHS_2027 = [dt.date(2027, month, 1) for month in range(1, 13)]
# A December-heavy year: 6% of the deals in each of the first eleven months, 34% in
# December (a year-end push). Total 1000.
SEASON = [60.0] * 11 + [340.0]


def linear_shape():
    return pacing.shape(periods=MONTHS_2027, frequency="monthly", aggregation="sum")


def deals_pace(actual, latest, *, goal_shape=None, today=None, baseline=1000.0):
    return pacing.pace(
        direction="higher_is_better",
        aggregation="sum",
        baseline=baseline,
        actual=actual,
        latest=latest,
        goal_shape=goal_shape or linear_shape(),
        frequency="monthly",
        today=today,
        target=1200.0,
    )


def test_a_sum_goal_on_pace_reads_its_share_not_zero():
    # Last year 1000 deals, this year's target 1200. By June, on an even pace, half of
    # each is due: 500 and 600. 600 done is exactly on pace: (600 - 500) / 200 = 0.5.
    # The whole-year reading would be (600 - 1000) / 200, clamped to 0%.
    pace = deals_pace(600.0, dt.date(2027, 6, 1))

    assert (pace.attainment, pace.expected, pace.status) == (0.5, 0.5, "on_track")
    assert (pace.shape, pace.as_of) == ("linear", dt.date(2027, 6, 1))


@pytest.mark.parametrize(
    ("actual", "attainment", "status"),
    [
        # 25% behind 0.5 is 0.375: at 575 deals (0.375) still on track.
        (575.0, 0.375, "on_track"),
        (560.0, 0.3, "at_risk"),
        # 50% behind is 0.25: 550 deals (0.25) is at risk, 540 off track.
        (550.0, 0.25, "at_risk"),
        (540.0, 0.2, "off_track"),
        # Behind last year's pace: nothing gained, clamped at 0.
        (450.0, 0.0, "off_track"),
        # The year's whole gain already made by June: 100%, but a running total is only
        # "met" at its due period.
        (800.0, 1.0, "on_track"),
    ],
)
def test_status_thresholds(actual, attainment, status):
    pace = deals_pace(actual, dt.date(2027, 6, 1))

    assert pace.attainment == pytest.approx(attainment, abs=1e-12)
    assert pace.status == status


def test_at_the_due_period_a_sum_goal_is_met_or_off_track():
    assert deals_pace(1200.0, dt.date(2027, 12, 1)).status == "met"
    missed = deals_pace(1190.0, dt.date(2027, 12, 1))
    assert (missed.attainment, missed.status) == (0.95, "off_track")


def test_the_seasonal_shape_keeps_a_december_heavy_business_on_track_in_november():
    prior = dict(zip([dt.date(2026, m, 1) for m in range(1, 13)], SEASON, strict=True))
    seasonal = pacing.shape(
        periods=MONTHS_2027, frequency="monthly", aggregation="sum", prior=prior
    )
    # This year the same shape, 20% bigger: 72 a month to November, 792 in all.
    actual = 72.0 * 11

    linear = deals_pace(actual, dt.date(2027, 11, 1))
    shaped = deals_pace(actual, dt.date(2027, 11, 1), goal_shape=seasonal)

    # Linear: 11/12 of 1000 and 1200 due, (792 - 916.67) / 200 -> 0: "off track".
    assert (linear.expected, linear.attainment, linear.status) == (
        11 / 12,
        0.0,
        "off_track",
    )
    # Last year's shape: 66% due by November: (792 - 660) / 200 = 0.66, on pace.
    assert seasonal.kind == "seasonal"
    assert shaped.expected == pytest.approx(0.66, abs=1e-12)
    assert shaped.attainment == pytest.approx(0.66, abs=1e-12)
    assert shaped.status == "on_track"


@pytest.mark.parametrize(
    "prior",
    [
        # A month missing last year, a negative month, or nothing sold at all: the
        # shape would be made up, so the pace stays linear.
        {dt.date(2026, m, 1): 60.0 for m in range(1, 12)},
        {**{dt.date(2026, m, 1): 60.0 for m in range(1, 13)}, dt.date(2026, 3, 1): -5},
        {dt.date(2026, m, 1): 0.0 for m in range(1, 13)},
    ],
)
def test_an_incomplete_or_odd_last_year_gives_a_linear_pace(prior):
    shape = pacing.shape(
        periods=MONTHS_2027, frequency="monthly", aggregation="sum", prior=prior
    )
    assert shape.kind == "linear"
    assert shape.shares[dt.date(2027, 3, 1)] == 3 / 12


def test_mean_and_last_goals_keep_their_level_attainment_and_a_linear_pace():
    shape = pacing.shape(
        periods=MONTHS_2027,
        frequency="monthly",
        aggregation="mean",
        prior={dt.date(2026, m, 1): 1.0 for m in range(1, 13)},
    )
    pace = pacing.pace(
        direction="lower_is_better",
        aggregation="mean",
        baseline=10.0,
        actual=8.0,
        latest=dt.date(2027, 4, 1),
        goal_shape=shape,
        frequency="monthly",
        target=6.0,
    )
    # (10 - 8) / (10 - 6) = 0.5 against 4/12 expected: ahead of pace.
    assert (shape.kind, pace.attainment, pace.expected, pace.status) == (
        "linear",
        0.5,
        4 / 12,
        "on_track",
    )


def test_a_band_is_expected_to_hold_all_along():
    shape = pacing.shape(periods=MONTHS_2027, frequency="monthly", aggregation="last")
    inside, below = (
        pacing.pace(
            direction="target_band",
            aggregation="last",
            baseline=70.0,
            actual=actual,
            latest=dt.date(2027, 2, 1),
            goal_shape=shape,
            frequency="monthly",
            target_low=80.0,
            target_high=90.0,
        )
        for actual in (85.0, 75.0)
    )
    assert (inside.expected, inside.status) == (1.0, "met")
    assert (below.attainment, below.expected, below.status) == (0.5, 1.0, "at_risk")


def test_figures_that_stop_coming_in_fall_behind_the_pace():
    # January's 100 deals were on pace; on 10 July, June is the last complete month:
    # 6/12 of the year is due, and the missing months count as nothing done.
    pace = deals_pace(100.0, dt.date(2027, 1, 1), today=dt.date(2027, 7, 10))

    assert (pace.as_of, pace.latest) == (dt.date(2027, 6, 1), dt.date(2027, 1, 1))
    assert (pace.expected, pace.status) == (0.5, "off_track")
    # The current month is not over: on 10 July its figures are not due yet.
    early = deals_pace(100.0, dt.date(2027, 1, 1), today=dt.date(2027, 2, 10))
    assert (early.as_of, early.status) == (dt.date(2027, 1, 1), "on_track")
    # After the due period, the goal is read at its end.
    late = deals_pace(1250.0, dt.date(2027, 12, 1), today=dt.date(2028, 3, 1))
    assert (late.as_of, late.status) == (dt.date(2027, 12, 1), "met")


def test_no_value_yet_is_no_data_not_a_failure():
    pace = deals_pace(None, None, today=dt.date(2027, 5, 2))

    assert (pace.attainment, pace.expected, pace.status) == (None, None, "no_data")
    assert pace.as_of == dt.date(2027, 4, 1)


def test_a_weekly_kpi_compares_with_the_same_monday_a_year_earlier():
    monday = dt.date(2027, 3, 1)
    assert pacing.year_before(monday, "weekly") == dt.date(2026, 3, 2)
    assert pacing.year_before(monday, "weekly").weekday() == 0
    assert pacing.year_before(dt.date(2027, 4, 1), "quarterly") == dt.date(2026, 4, 1)


# --- through the database ----------------------------------------------------------


@pytest.fixture
def seasonal_goal(silo_a):
    cycle = factories.CycleFactory(name="FY2027")
    deals = factories.KPIFactory(silo=silo_a, slug="deals", aggregation="sum")
    goal = factories.GoalFactory(
        cycle=cycle,
        kpi=deals,
        baseline=1000,
        target=1200,
        period_start=dt.date(2027, 1, 1),
        period_end=dt.date(2027, 12, 1),
    )
    Measurement.objects.bulk_create(
        [
            Measurement(kpi=deals, period=dt.date(2026, m, 1), value=value)
            for m, value in enumerate(SEASON, start=1)
        ]
        + [
            Measurement(kpi=deals, period=dt.date(2027, m, 1), value=72.0)
            for m in range(1, 12)
        ]
    )
    return goal


@pytest.mark.django_db
def test_with_pace_reads_last_years_shape_in_one_query(
    seasonal_goal, django_assert_num_queries
):
    goals = list(goal_list_with_actuals())

    with django_assert_num_queries(1):
        (goal,) = with_pace(goals, today=dt.date(2027, 12, 3))

    pace = goal_pace(goal)
    assert (pace.shape, pace.as_of, pace.status) == (
        "seasonal",
        dt.date(2027, 11, 1),
        "on_track",
    )
    assert pace.attainment == pytest.approx(0.66, abs=1e-12)


@pytest.mark.django_db
def test_the_goal_api_carries_actual_pace_and_status(seasonal_goal, api, reader):
    api.force_authenticate(reader)

    with time_machine.travel(dt.datetime(2027, 12, 3, 9, tzinfo=dt.UTC), tick=False):
        row = api.get("/api/v1/goals/").json()["results"][0]
        detail = api.get(f"/api/v1/goals/{seasonal_goal.pk}/").json()

    progress = {
        key: row[key]
        for key in (
            "actual",
            "latest",
            "as_of",
            "attainment",
            "expected",
            "status",
            "pace",
        )
    }
    assert progress == {
        "actual": 792.0,
        "latest": "2027-11-01",
        "as_of": "2027-11-01",
        "attainment": pytest.approx(0.66, abs=1e-12),
        "expected": pytest.approx(0.66, abs=1e-12),
        "status": "on_track",
        "pace": "seasonal",
    }
    assert {key: detail[key] for key in progress} == progress
