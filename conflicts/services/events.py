"""The notifications the register dispatches: conflict.new, conflict.high and
conflict.status_changed, written in the register's transaction (see
notifications.services.event_dispatch)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from conflicts import evidence
from conflicts.models import Conflict
from notifications.events import EventName
from notifications.services import event_dispatch


def conflict_data(conflict: Conflict) -> dict[str, Any]:
    """What a webhook receiver learns of a conflict: both KPIs and silos, severity,
    kind, lag and the evidence (the page's URL is added by the dispatch)."""
    return {
        "conflict_id": conflict.pk,
        "leader_kpi": conflict.leader_kpi.key,
        "affected_kpi": conflict.affected_kpi.key,
        "leader_silo": conflict.leader_silo.slug,
        "affected_silo": conflict.affected_silo.slug,
        "severity": conflict.severity,
        "kind": conflict.kind,
        "lag": conflict.lag,
        "grid": conflict.grid or conflict.leader_kpi.frequency,
        "status": conflict.status,
        "correlation": conflict.correlation,
        "q_value": conflict.q_value,
        "effect": conflict.effect,
        "effect_low": conflict.effect_low,
        "effect_high": conflict.effect_high,
        "summary": evidence.describe(conflict),
    }


def _dispatch(
    conflict: Conflict, name: str, title: str, key: str, **extra: Any
) -> None:
    event_dispatch(
        name=name,
        key=key,
        title=title,
        text=evidence.describe(conflict),
        url=reverse("conflicts:detail", args=[conflict.pk]),
        data={**conflict_data(conflict), **extra},
        silo_ids=[conflict.leader_silo_id, conflict.affected_silo_id],
    )


def _loaded(ids: list[int]) -> list[Conflict]:
    return list(
        Conflict.objects.filter(pk__in=ids)
        .select_related(
            "leader_kpi",
            "affected_kpi",
            "leader_silo",
            "affected_silo",
            "last_run",
            "owner",
        )
        .order_by("pk")
    )


def _pair(conflict: Conflict) -> str:
    return f"{conflict.leader_kpi.key} → {conflict.affected_kpi.key}"


def run_events_dispatch(
    *, run_id: int, new_ids: list[int], reopened_ids: list[int], high_ids: list[int]
) -> None:
    """Dispatch conflict.new for each conflict a run registered or reopened, and
    conflict.high for each that became high-severity (once: ``alerted_high``)."""
    reopened = set(reopened_ids)
    for conflict in _loaded(sorted({*new_ids, *reopened_ids})):
        again = conflict.pk in reopened
        _dispatch(
            conflict,
            EventName.CONFLICT_NEW,
            f"{'Reopened' if again else 'New'} conflict ({conflict.severity}): {_pair(conflict)}",
            f"conflict.new:{conflict.pk}:run-{run_id}",
            reopened=again,
        )
    for conflict in _loaded(high_ids):
        _dispatch(
            conflict,
            EventName.CONFLICT_HIGH,
            f"High-severity conflict to review: {_pair(conflict)}",
            f"conflict.high:{conflict.pk}:run-{run_id}",
        )


def status_event_dispatch(
    *, conflict: Conflict, from_status: str, user: Any, note: str, transition_id: int
) -> None:
    """Dispatch conflict.status_changed for one step of the review workflow, with
    who owns the conflict and by when (set on acknowledging)."""
    conflict = _loaded([conflict.pk])[0]
    _dispatch(
        conflict,
        EventName.CONFLICT_STATUS_CHANGED,
        f"Conflict {_pair(conflict)}: {from_status} → {conflict.status}",
        f"conflict.status_changed:{transition_id}",
        from_status=from_status,
        to_status=conflict.status,
        changed_by=str(user),
        note=note,
        owner=conflict.owner.get_username() if conflict.owner else None,
        due_date=conflict.due_date.isoformat() if conflict.due_date else None,
    )


__all__ = ["conflict_data", "run_events_dispatch", "status_event_dispatch"]
