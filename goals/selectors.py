"""Reads of goals and shared goals, scoped to the user and annotated with progress."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, TypedDict, TypeVar

from django.db.models import (
    Avg,
    Case,
    FloatField,
    Max,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
    When,
)
from django.utils import timezone

from core.roles import User
from cycles.models import Phase
from goals import pace as pacing
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
    latest: dt.date | None


def goal_list_with_actuals(
    queryset: QuerySet[Goal] | None = None,
    through: dt.date | None = None,
) -> QuerySet[WithAnnotations[Goal, Actual]]:
    """Annotate goals with ``actual``: the KPI aggregated over the goal's periods, and
    ``latest``: the last of those periods with a value.

    The aggregation (sum, mean or last) is the KPI's own; the whole list costs one SQL
    query whatever its length. ``actual`` is None when no period has a value. Pass the
    goals through :func:`with_pace` for their attainment, pace and status. ``through``
    leaves out the periods after it (the figures as they stood then, for a past
    snapshot).
    Stored values lie below 1e15 in magnitude (core.bounds), so neither PostgreSQL's
    SUM nor its AVG (which also sums squares) can overflow.
    """
    queryset = Goal.objects.all() if queryset is None else queryset
    in_range = Measurement.objects.filter(
        kpi=OuterRef("kpi"),
        period__gte=OuterRef("period_start"),
        period__lte=OuterRef("period_end"),
    )
    if through is not None:
        in_range = in_range.filter(period__lte=through)
    per_kpi = in_range.order_by().values("kpi")
    total = Subquery(per_kpi.annotate(total=Sum("value")).values("total")[:1])
    mean = Subquery(per_kpi.annotate(mean=Avg("value")).values("mean")[:1])
    last = Subquery(in_range.order_by("-period").values("value")[:1])
    latest = Subquery(per_kpi.annotate(last=Max("period")).values("last")[:1])
    return queryset.select_related("kpi", "kpi__silo", "cycle", "owner").annotate(
        actual=Case(
            When(kpi__aggregation="sum", then=total),
            When(kpi__aggregation="mean", then=mean),
            default=last,
            output_field=FloatField(),
        ),
        latest=latest,
    )


def goal_shapes(goals: Iterable[Goal]) -> dict[int, pacing.Shape]:
    """Return each goal's pace shape (linear, or last year's seasonal shape for a sum
    KPI with a full year before it), by goal id, in one query whatever the number of
    goals (none when no goal is on a sum KPI)."""
    goals = list(goals)
    spans = {
        goal.pk: pacing.goal_periods(
            goal.period_start, goal.period_end, goal.kpi.frequency
        )
        for goal in goals
    }
    prior: dict[int, dict[dt.date, float]] = {}
    seasonal = [g for g in goals if g.kpi.aggregation == "sum" and spans[g.pk]]
    if seasonal:
        firsts = [pacing.year_before(spans[g.pk][0], g.kpi.frequency) for g in seasonal]
        lasts = [pacing.year_before(spans[g.pk][-1], g.kpi.frequency) for g in seasonal]
        rows = Measurement.objects.filter(
            kpi_id__in={g.kpi_id for g in seasonal},
            period__gte=min(firsts),
            period__lte=max(lasts),
        ).values_list("kpi_id", "period", "value")
        for kpi_id, period, value in rows:
            prior.setdefault(kpi_id, {})[period] = value
    return {
        goal.pk: pacing.shape(
            periods=spans[goal.pk],
            frequency=goal.kpi.frequency,
            aggregation=goal.kpi.aggregation,
            prior=prior.get(goal.kpi_id),
        )
        for goal in goals
        if spans[goal.pk]
    }


G = TypeVar("G", bound=Goal)


def with_pace(
    goals: Iterable[G],
    today: dt.date | None = None,
    shapes: dict[int, pacing.Shape] | None = None,
) -> list[G]:
    """Return the goals (annotated by :func:`goal_list_with_actuals`) each with a
    ``pace`` (:class:`goals.pace.Pace`) read on ``today`` (default: the local date):
    attainment to date, expected attainment and status. One query more for the whole
    list (last year's values of sum KPIs), none when ``shapes`` (from
    :func:`goal_shapes`) are given."""
    goals = list(goals)
    today = timezone.localdate() if today is None else today
    shapes = goal_shapes(goals) if shapes is None else shapes
    for goal in goals:
        # An attribute, as annotations are, for templates; code reads goal_pace().
        setattr(goal, "pace", _pace(goal, shapes.get(goal.pk), today))  # noqa: B010
    return goals


def _pace(goal: Goal, shape: pacing.Shape | None, today: dt.date) -> pacing.Pace:
    if shape is None:
        return pacing.Pace(None, None, pacing.NO_DATA, pacing.LINEAR, None)
    return pacing.pace(
        direction=goal.kpi.direction,
        aggregation=goal.kpi.aggregation,
        baseline=goal.baseline,
        actual=getattr(goal, "actual", None),
        latest=getattr(goal, "latest", None),
        goal_shape=shape,
        frequency=goal.kpi.frequency,
        today=today,
        target=goal.target,
        target_low=goal.target_low,
        target_high=goal.target_high,
    )


def goal_pace(goal: Goal) -> pacing.Pace:
    """Return the goal's pace: the one :func:`with_pace` attached, or else read now
    (three queries; lists go through :func:`with_pace`)."""
    attached = getattr(goal, "pace", None)
    if isinstance(attached, pacing.Pace):
        return attached
    if not hasattr(goal, "actual"):
        goal = goal_list_with_actuals(Goal.objects.filter(pk=goal.pk)).get()
    return goal_pace(with_pace([goal])[0])


def goal_attainment(goal: Goal) -> float | None:
    """Return the goal's attainment to date in [0, 1] (None: no data); see goals.pace."""
    return goal_pace(goal).attainment


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


def digest_goals_off_pace(now: dt.datetime) -> Section:
    """The weekly digest's section: goals of open cycles at risk or off track, more than
    a quarter behind their pace (see goals.pace; two queries)."""
    day = timezone.localdate(now)
    goals = with_pace(
        goal_list_with_actuals(
            Goal.objects.exclude(cycle__phase=Phase.CLOSED)
            .filter(period_start__lte=day)
            .select_related("kpi", "kpi__silo", "cycle")
            .order_by("cycle__start_date", "kpi__key", "pk")
        ),
        today=day,
    )
    paces = [(goal, goal_pace(goal)) for goal in goals]
    behind = [
        (goal, pace)
        for goal, pace in paces
        if pace.status in (pacing.AT_RISK, pacing.OFF_TRACK)
    ]
    return Section(
        heading="Goals off pace",
        count=len(behind),
        lines=[
            f"{goal.kpi.key} ({goal.cycle.name}): {pace.attainment:.0%} attained, "
            f"{pace.expected:.0%} expected by {pace.as_of:%b %Y} ({pace.status_label})"
            for goal, pace in behind[:DIGEST_LINES]
        ],
    )
