"""The cycle's consistency: every goal's projected knock-on on the other silos' goals.

Reads the cycle's goals, the registered conflicts with an observed effect (not
dismissed, not stale) and the declared links with an expected effect between their
KPIs, and projects each through planning.consistency. Three queries whatever the size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from conflicts.models import Conflict, Status
from cycles.models import Cycle
from goals.models import Goal
from metrics.models import ImpactLink
from planning import consistency


@dataclass(frozen=True)
class Source:
    """Where an effect comes from: an observed conflict, or a declared link's expected
    effect (used only when no observed conflict covers the pair)."""

    kind: str
    id: int
    effect: float
    effect_low: float | None
    effect_high: float | None
    lag: int


@dataclass(frozen=True)
class KnockOn:
    """One goal's projected knock-on on another goal of the cycle."""

    leader: Goal
    affected: Goal
    source: Source
    projection: consistency.Projection
    contradiction: bool


def goal_plan(goal: Goal) -> consistency.GoalPlan:
    """The planning arithmetic's view of a goal (its KPI joined)."""
    return consistency.GoalPlan(
        direction=goal.kpi.direction,
        aggregation=goal.kpi.aggregation,
        frequency=goal.kpi.frequency,
        baseline=goal.baseline,
        target=goal.target,
        target_low=goal.target_low,
        target_high=goal.target_high,
        period_start=goal.period_start,
        period_end=goal.period_end,
    )


def cycle_knock_ons(cycle: Cycle, margin: float | None = None) -> list[KnockOn]:
    """Return every projected knock-on between two goals of ``cycle``, in value-chain
    order (leading silo, then affected silo), each marked a contradiction when it takes
    the affected goal's attainment down by ``margin`` or more (default: the setting
    PLANNING_CONTRADICTION_MARGIN)."""
    margin = settings.PLANNING_CONTRADICTION_MARGIN if margin is None else margin
    goals = {
        goal.kpi_id: goal
        for goal in Goal.objects.filter(cycle=cycle).select_related("kpi", "kpi__silo")
    }
    kpis = list(goals)
    sources: dict[tuple[int, int], Source] = {}
    conflicts = (
        Conflict.objects.filter(
            is_observed=True,
            effect__isnull=False,
            stale=False,
            leader_kpi_id__in=kpis,
            affected_kpi_id__in=kpis,
        )
        .exclude(status=Status.DISMISSED)
        .order_by("pk")
    )
    for conflict in conflicts:
        assert conflict.effect is not None  # filtered above
        sources[(conflict.leader_kpi_id, conflict.affected_kpi_id)] = Source(
            "conflict",
            conflict.pk,
            conflict.effect,
            conflict.effect_low,
            conflict.effect_high,
            conflict.lag or 0,
        )
    links = ImpactLink.objects.filter(
        expected_effect__isnull=False, leader_kpi_id__in=kpis, affected_kpi_id__in=kpis
    ).order_by("pk")
    for link in links:
        assert link.expected_effect is not None  # filtered above
        sources.setdefault(
            (link.leader_kpi_id, link.affected_kpi_id),
            Source("link", link.pk, link.expected_effect, None, None, link.lag),
        )
    knock_ons = []
    for (leader_kpi, affected_kpi), source in sources.items():
        leader, affected = goals[leader_kpi], goals[affected_kpi]
        projection = consistency.project(
            goal_plan(leader),
            goal_plan(affected),
            effect=source.effect,
            effect_low=source.effect_low,
            effect_high=source.effect_high,
            lag=source.lag,
        )
        if projection is None:
            continue
        knock_ons.append(
            KnockOn(
                leader, affected, source, projection, projection.contradicts(margin)
            )
        )
    knock_ons.sort(
        key=lambda k: (
            k.leader.kpi.silo.position,
            k.leader.kpi.key,
            k.affected.kpi.silo.position,
            k.affected.kpi.key,
        )
    )
    return knock_ons


def _goal(goal: Goal) -> dict[str, Any]:
    return {
        "goal": goal.pk,
        "kpi": goal.kpi.key,
        "silo": goal.kpi.silo.slug,
        "unit": goal.kpi.unit,
        "baseline": goal.baseline,
        "target": goal.target,
        "target_low": goal.target_low,
        "target_high": goal.target_high,
    }


def knock_on_message(knock_on: KnockOn) -> str:
    """The knock-on in words a planner can act on."""
    leader, affected, p = knock_on.leader, knock_on.affected, knock_on.projection
    unit = affected.kpi.unit
    words = (
        f"If {leader.kpi.silo.name} reaches its {leader.kpi.name} goal, "
        f"{affected.kpi.silo.name}'s {affected.kpi.name} is expected to move by "
        f"{p.knock_on:+.4g} {unit} (between {p.knock_on_low:+.4g} and "
        f"{p.knock_on_high:+.4g}), which takes its goal from {p.attainment_without:.0%} "
        f"to {p.attainment_with:.0%} attained."
    )
    if knock_on.contradiction:
        words += (
            " Adjust a target, cover the pair with a shared goal's guardrail, or accept "
            "it as a trade-off with a note."
        )
    return words


def cycle_consistency(cycle: Cycle, margin: float | None = None) -> dict[str, Any]:
    """Return the cycle's consistency check as the API gives it: every projection with
    its inputs, and the contradictions among them."""
    margin = settings.PLANNING_CONTRADICTION_MARGIN if margin is None else margin
    knock_ons = cycle_knock_ons(cycle, margin)
    projections = [
        {
            "leader": _goal(k.leader),
            "affected": _goal(k.affected),
            "source": {
                "kind": k.source.kind,
                "id": k.source.id,
                "effect": k.source.effect,
                "effect_low": k.source.effect_low,
                "effect_high": k.source.effect_high,
                "lag": k.source.lag,
            },
            "leader_change_per_period": k.projection.leader_change,
            "periods_reached": k.projection.periods_reached,
            "knock_on": k.projection.knock_on,
            "knock_on_low": k.projection.knock_on_low,
            "knock_on_high": k.projection.knock_on_high,
            "attainment_without": k.projection.attainment_without,
            "attainment_with": k.projection.attainment_with,
            "attainment_with_low": k.projection.attainment_with_low,
            "attainment_with_high": k.projection.attainment_with_high,
            "contradiction": k.contradiction,
            "message": knock_on_message(k),
        }
        for k in knock_ons
    ]
    return {
        "cycle": cycle.name,
        "margin": margin,
        "projections": projections,
        "contradictions": [row for row in projections if row["contradiction"]],
    }
