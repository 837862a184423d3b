"""Reads behind the KPI page: values against target and pace, goals, links, conflicts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Case, IntegerField, Q, Value, When

from conflicts.models import Severity
from conflicts.selectors import conflicts_visible_to
from core import charts
from core.roles import User
from cycles.models import Phase
from goals import pace as pacing
from goals.models import Goal
from goals.selectors import goal_list_with_actuals, goal_pace, goal_shapes, with_pace
from metrics.models import KPI, ImpactLink, Measurement

#: The most recent periods the KPI page charts (ten years of a monthly KPI).
CHART_PERIODS = 120

SEVERITY_ORDER = Case(
    When(severity=Severity.HIGH, then=Value(0)),
    When(severity=Severity.MEDIUM, then=Value(1)),
    default=Value(2),
    output_field=IntegerField(),
)


def featured_goal(goals: Sequence[Goal]) -> Goal | None:
    """The goal the KPI page charts: the latest-starting cycle's goal that is not
    closed, else the latest goal (``goals`` ordered latest cycle first)."""
    open_goals = [goal for goal in goals if goal.cycle.phase != Phase.CLOSED]
    chosen = open_goals or list(goals)
    return chosen[0] if chosen else None


def kpi_page(kpi: KPI, user: User, today: dt.date | None = None) -> dict[str, Any]:
    """Return the KPI page: its values over time against its goal's target and pace,
    its goals with pace and status, declared links, the conflicts ``user`` may read
    that involve it, and who manages it. Seven queries whatever the data's size."""
    values = list(
        Measurement.objects.filter(kpi=kpi)
        .order_by("-period")
        .values_list("period", "value")[:CHART_PERIODS]
    )[::-1]
    goals = list(
        goal_list_with_actuals(
            Goal.objects.filter(kpi=kpi).order_by("-cycle__start_date", "-pk")
        )
    )
    shapes = goal_shapes(goals)
    goals = with_pace(goals, today=today, shapes=shapes)
    goal = featured_goal(goals)
    shape = shapes.get(goal.pk) if goal is not None else None
    links = ImpactLink.objects.filter(Q(leader_kpi=kpi) | Q(affected_kpi=kpi))
    conflicts = (
        conflicts_visible_to(user)
        .filter(Q(leader_kpi=kpi) | Q(affected_kpi=kpi), stale=False)
        .order_by(SEVERITY_ORDER, "-id")
    )
    managers = (
        get_user_model()
        .objects.filter(managed_silos=kpi.silo, is_active=True)
        .order_by("username")
    )
    return {
        "kpi": kpi,
        "goals": goals,
        "goal": goal,
        "values_chart": values_chart(kpi, values, goal, shape),
        "running_chart": running_total_chart(kpi, values, goal, shape),
        "links": links.select_related(
            "leader_kpi", "affected_kpi", "leader_silo", "affected_silo"
        ).order_by("leader_kpi__key", "affected_kpi__key"),
        "conflicts": list(conflicts),
        "managers": list(managers),
        "latest": values[-1] if values else None,
    }


def values_chart(
    kpi: KPI,
    values: list[tuple[dt.date, float]],
    goal: Goal | None,
    shape: pacing.Shape | None,
) -> charts.Chart | None:
    """The KPI's values over time; over the featured goal's periods, its target (or
    band) and the pace line from baseline to target. A sum goal's target is a total
    over its periods: the running-total chart shows it, not this one."""
    periods = [period for period, _ in values]
    if shape is not None:
        periods = sorted(set(periods) | set(shape.shares))
    if not periods:
        return None
    by_period = dict(values)
    series = [
        charts.Series(
            kpi.name, [by_period.get(p) for p in periods], charts.BLUE, unit=kpi.unit
        )
    ]
    if goal is not None and shape is not None and kpi.aggregation != "sum":

        def over_goal(value_at: Callable[[float], float]) -> list[float | None]:
            return [
                value_at(share) if (share := shape.shares.get(p)) is not None else None
                for p in periods
            ]

        target, low, high = goal.target, goal.target_low, goal.target_high
        if target is not None:
            baseline = goal.baseline
            series += [
                charts.Series(
                    "Target",
                    over_goal(lambda _: target),
                    charts.GREEN,
                    True,
                    unit=kpi.unit,
                ),
                charts.Series(
                    "On pace",
                    over_goal(lambda share: baseline + (target - baseline) * share),
                    charts.GREY,
                    True,
                    unit=kpi.unit,
                ),
            ]
        elif low is not None and high is not None:
            series += [
                charts.Series(
                    "Band low",
                    over_goal(lambda _: low),
                    charts.GREEN,
                    True,
                    unit=kpi.unit,
                ),
                charts.Series(
                    "Band high",
                    over_goal(lambda _: high),
                    charts.GREEN,
                    True,
                    unit=kpi.unit,
                ),
            ]
    summary = f"{kpi.name} per period"
    if values:
        (first_period, first), (last_period, last) = values[0], values[-1]
        summary += (
            f", from {charts.format_value(first)} {kpi.unit} in {first_period:%b %Y}"
            f" to {charts.format_value(last)} {kpi.unit} in {last_period:%b %Y}"
        )
    return charts.Chart(
        id="kpi-values",
        title=f"{kpi.name} per period ({kpi.unit})",
        summary=summary,
        labels=[period.isoformat() for period in periods],
        series=series,
        axes=[charts.Axis("y", kpi.unit)],
    )


def running_total_chart(
    kpi: KPI,
    values: list[tuple[dt.date, float]],
    goal: Goal | None,
    shape: pacing.Shape | None,
) -> charts.Chart | None:
    """For a sum goal: the running total over its periods against the on-pace path
    (target x expected share) and last year's path (baseline x share)."""
    if goal is None or shape is None or kpi.aggregation != "sum" or goal.target is None:
        return None
    periods = sorted(shape.shares)
    by_period = dict(values)
    latest = max((p for p in periods if p in by_period), default=None)
    running, total = [], 0.0
    for period in periods:
        total += by_period.get(period, 0.0)
        running.append(total if latest is not None and period <= latest else None)
    pace = goal_pace(goal)
    summary = (
        f"Running total of {kpi.name} against the pace to {charts.format_value(goal.target)}"
        f" {kpi.unit} by {goal.period_end:%b %Y}"
    )
    if pace.expected is not None and pace.as_of is not None:
        summary += f"; {pace.status_label} as of {pace.as_of:%b %Y}"
    return charts.Chart(
        id="kpi-running",
        title=f"Running total against the goal ({shape.kind} pace)",
        summary=summary,
        labels=[p.isoformat() for p in periods],
        series=[
            charts.Series("Running total", running, charts.BLUE, unit=kpi.unit),
            charts.Series(
                "On pace to the target",
                [goal.target * shape.shares[p] for p in periods],
                charts.GREEN,
                dashed=True,
                unit=kpi.unit,
            ),
            charts.Series(
                "At last year's level (baseline)",
                [goal.baseline * shape.shares[p] for p in periods],
                charts.GREY,
                dashed=True,
                unit=kpi.unit,
            ),
        ],
        axes=[charts.Axis("y", kpi.unit)],
    )
