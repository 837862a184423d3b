"""The notification the roll-up dispatches: guardrail.breached, when a shared goal's
guardrail goes from held to breached (see notifications.services.event_dispatch)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import OuterRef, Q, Subquery
from django.urls import reverse

from goals.models import SharedGoal, SharedGoalSnapshot
from metrics.models import Silo
from notifications.events import EventName
from notifications.services import event_dispatch


def breached_before(shared_goal_ids: list[int], day: dt.date) -> dict[int, bool]:
    """Each shared goal's breached flag in its latest snapshot up to ``day`` (one
    query; a shared goal never snapshotted is left out)."""
    latest = (
        SharedGoalSnapshot.objects.filter(shared_goal=OuterRef("pk"), day__lte=day)
        .order_by("-day")
        .values("guardrail_breached")[:1]
    )
    rows = (
        SharedGoal.objects.filter(pk__in=shared_goal_ids)
        .annotate(breached=Subquery(latest))
        .values_list("pk", "breached")
    )
    return {pk: breached for pk, breached in rows if breached is not None}


def guardrail_events_dispatch(
    *, items: list[Any], before: dict[int, bool], day: dt.date
) -> int:
    """Dispatch guardrail.breached for each rolled-up shared goal whose guardrail was
    held (or never snapshotted) and is breached now; return how many."""
    newly = [
        i
        for i in items
        if i.result.breached and not before.get(i.shared_goal.pk, False)
    ]
    for item in newly:
        goal = item.shared_goal
        breached = [g for g in item.guardrails if g["breached"]]
        kpis = [g["kpi"] for g in breached]
        silo_ids = list(
            Silo.objects.filter(
                Q(kpis__key__in=kpis) | Q(kpis__goals__contributions__shared_goal=goal)
            )
            .distinct()
            .values_list("pk", flat=True)
        )
        lines = [
            f"{g['kpi']} worsened by {g['worsened_by']:.3g} against a tolerance of "
            f"{g['tolerance']:.3g} (baseline {g['baseline']:.3g}, now {g['current']:.3g})"
            for g in breached
            if g["worsened_by"] is not None and g["current"] is not None
        ]
        event_dispatch(
            name=EventName.GUARDRAIL_BREACHED,
            key=f"guardrail.breached:{goal.pk}:{day.isoformat()}",
            title=f"Guardrail breached: {goal.name}",
            text="; ".join(lines) + ".",
            url=reverse("admin:goals_sharedgoal_change", args=[goal.pk]),
            data={
                "shared_goal_id": goal.pk,
                "shared_goal": goal.name,
                "cycle_id": goal.cycle_id,
                "day": day.isoformat(),
                "guardrails": breached,
            },
            silo_ids=silo_ids,
        )
    return len(newly)
