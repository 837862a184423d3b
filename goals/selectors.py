"""Reads of goals and shared goals, scoped to the user and annotated with progress."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, TypedDict

from django.db.models import (
    Avg,
    Case,
    FloatField,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
    When,
)
from django.utils import timezone

from core.roles import User
from cycles.models import Phase
from goals import progress
from goals.models import Goal, SharedGoal, SharedGoalSnapshot
from metrics.models import Measurement
from metrics.selectors import scope_by_silo, silo_ids_writable_by
from notifications.digest import Section

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

#: Lines each digest section lists at most.
DIGEST_LINES = 10


def goals_writable_by(user: User) -> QuerySet[Goal]:
    """Return the goals ``user`` may change: those on KPIs of silos they may write."""
    return scope_by_silo(Goal.objects.all(), silo_ids_writable_by(user), "kpi__silo_id")


class Actual(TypedDict):
    """What :func:`goal_list_with_actuals` annotates."""

    actual: float | None


def goal_list_with_actuals(
    queryset: QuerySet[Goal] | None = None,
) -> QuerySet[WithAnnotations[Goal, Actual]]:
    """Annotate goals with ``actual``: the KPI aggregated over the goal's periods.

    The aggregation (sum, mean or last) is the KPI's own; the whole list costs one SQL
    query whatever its length. ``actual`` is None when no period has a value.
    Stored values lie below 1e15 in magnitude (core.bounds), so neither PostgreSQL's
    SUM nor its AVG (which also sums squares) can overflow.
    """
    queryset = Goal.objects.all() if queryset is None else queryset
    in_range = Measurement.objects.filter(
        kpi=OuterRef("kpi"),
        period__gte=OuterRef("period_start"),
        period__lte=OuterRef("period_end"),
    )
    per_kpi = in_range.order_by().values("kpi")
    total = Subquery(per_kpi.annotate(total=Sum("value")).values("total")[:1])
    mean = Subquery(per_kpi.annotate(mean=Avg("value")).values("mean")[:1])
    last = Subquery(in_range.order_by("-period").values("value")[:1])
    return queryset.select_related("kpi", "kpi__silo", "cycle", "owner").annotate(
        actual=Case(
            When(kpi__aggregation="sum", then=total),
            When(kpi__aggregation="mean", then=mean),
            default=last,
            output_field=FloatField(),
        ),
    )


def goal_attainment(goal: Goal) -> float | None:
    """Return the goal's attainment in [0, 1] from its annotated ``actual`` (None: no data)."""
    return progress.attainment(
        direction=goal.kpi.direction,
        baseline=goal.baseline,
        actual=getattr(goal, "actual", None),
        target=goal.target,
        target_low=goal.target_low,
        target_high=goal.target_high,
    )


def shared_goals_with_progress(
    queryset: QuerySet[SharedGoal] | None = None,
) -> QuerySet[SharedGoal]:
    """Annotate shared goals with their latest roll-up snapshot's figures.

    ``progress``, ``progress_day``, ``contributions_with_data``,
    ``contributions_total`` and ``guardrail_breached`` (all None before the first
    roll-up), in the same query.
    """
    queryset = SharedGoal.objects.all() if queryset is None else queryset
    latest = SharedGoalSnapshot.objects.filter(shared_goal=OuterRef("pk")).order_by(
        "-day"
    )
    return queryset.annotate(
        progress=Subquery(latest.values("progress")[:1]),
        progress_day=Subquery(latest.values("day")[:1]),
        contributions_with_data=Subquery(latest.values("contributions_with_data")[:1]),
        contributions_total=Subquery(latest.values("contributions_total")[:1]),
        guardrail_breached=Subquery(latest.values("guardrail_breached")[:1]),
    )


#: A goal is off pace when its attainment is more than this share behind the pace.
OFF_PACE_SHARE = 0.25


def expected_by(goal: Goal, day: dt.date) -> float:
    """The attainment a goal would have on ``day`` at an even pace over its periods."""
    span = (goal.period_end - goal.period_start).days
    if span <= 0:
        return 1.0 if day >= goal.period_end else 0.0
    return min(1.0, max(0.0, (day - goal.period_start).days / span))


def digest_goals_off_pace(now: dt.datetime) -> Section:
    """The weekly digest's section: goals of open cycles more than a quarter behind an
    even pace (one query)."""
    day = timezone.localdate(now)
    goals = goal_list_with_actuals(
        Goal.objects.exclude(cycle__phase=Phase.CLOSED)
        .filter(period_start__lte=day)
        .select_related("kpi", "kpi__silo", "cycle")
        .order_by("cycle__start_date", "kpi__key", "pk")
    )
    behind = []
    for goal in goals:
        attained, expected = goal_attainment(goal), expected_by(goal, day)
        if attained is not None and attained < expected * (1 - OFF_PACE_SHARE):
            behind.append((goal, attained, expected))
    return Section(
        heading="Goals off pace",
        count=len(behind),
        lines=[
            f"{goal.kpi.key} ({goal.cycle.name}): {attained:.0%} attained, "
            f"{expected:.0%} expected by now"
            for goal, attained, expected in behind[:DIGEST_LINES]
        ],
    )
