"""The notifications planning dispatches: cycle.phase_changed from the phase move,
and signoff.voided when a change to the plan voids a silo's sign-off (a receiver on
the plan models' history, which every plan change writes, whichever path made it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Model
from django.urls import reverse
from simple_history.signals import post_create_historical_record
from simple_history.utils import get_history_model_for_model

from cycles.models import Cycle
from goals.models import Contribution, Goal, Guardrail, SharedGoal
from notifications.events import EventName
from notifications.models import Event
from notifications.services import event_dispatch
from planning.models import FundingAllocation, Priority, Responsibility, SignOff

#: The plan's models, and how each reaches its cycle.
PLAN_CYCLE_PATHS: dict[type[Model], str] = {
    Goal: "cycle_id",
    SharedGoal: "cycle_id",
    Priority: "cycle_id",
    Contribution: "shared_goal__cycle_id",
    Guardrail: "shared_goal__cycle_id",
    Responsibility: "priority__cycle_id",
    FundingAllocation: "priority__cycle_id",
}


def cycle_phase_event_dispatch(
    *, cycle: Cycle, from_phase: str, user: Any, reason: str
) -> None:
    """Dispatch cycle.phase_changed for one move of ``cycle``."""
    event_dispatch(
        name=EventName.CYCLE_PHASE_CHANGED,
        title=f"{cycle.name}: {from_phase} → {cycle.phase}",
        text=f"{user} moved {cycle.name} from {from_phase} to {cycle.phase}"
        + (f": {reason}" if reason else "."),
        url=reverse("planning:cycle", args=[cycle.pk]),
        data={
            "cycle_id": cycle.pk,
            "cycle": cycle.name,
            "from_phase": from_phase,
            "to_phase": cycle.phase,
            "moved_by": str(user),
            "reason": reason,
        },
        silo_ids=list(cycle.silos.values_list("pk", flat=True)),
    )


def _cycle_id(instance: Model) -> int | None:
    # Through the instance, not a query: a deleted row changes the plan too.
    value: Any = instance
    try:
        for name in PLAN_CYCLE_PATHS[type(instance)].split("__"):
            value = getattr(value, name)
    except ObjectDoesNotExist:  # deleted along with its parent
        return None
    return value


def signoffs_voided_dispatch(*, cycle_id: int, changed_at: datetime, what: str) -> int:
    """Dispatch signoff.voided for each sign-off of the cycle given before
    ``changed_at`` and not voided yet (once per sign-off); return how many."""
    sign_offs = list(
        SignOff.objects.filter(
            cycle_id=cycle_id, signed_at__lt=changed_at
        ).select_related("silo", "cycle", "user")
    )
    keys = {f"signoff.voided:{s.pk}": s for s in sign_offs}
    done = set(Event.objects.filter(key__in=keys).values_list("key", flat=True))
    for key, sign_off in keys.items():
        if key in done:
            continue
        event_dispatch(
            name=EventName.SIGNOFF_VOIDED,
            key=key,
            title=f"The sign-off of {sign_off.silo.name} for {sign_off.cycle.name} no longer counts",
            text=f"The plan changed ({what}) after {sign_off.user} signed for "
            f"{sign_off.silo.name}: the silo signs again to agree to the new plan.",
            url=reverse("planning:cycle", args=[cycle_id]),
            data={
                "cycle_id": cycle_id,
                "cycle": sign_off.cycle.name,
                "silo": sign_off.silo.slug,
                "signed_by": str(sign_off.user),
                "signed_at": sign_off.signed_at.isoformat(),
                "changed": what,
                "changed_at": changed_at.isoformat(),
            },
            silo_ids=[sign_off.silo_id],
        )
    return len(keys) - len(done)


def _on_plan_history(
    sender: Any, instance: Model, history_instance: Any, **kwargs: Any
) -> None:
    cycle_id = _cycle_id(instance)
    if cycle_id is None:
        return
    what = f"{type(instance)._meta.verbose_name} {instance}"
    signoffs_voided_dispatch(
        cycle_id=cycle_id, changed_at=history_instance.history_date, what=what
    )


def connect() -> None:
    """Listen to the history of the plan's models (from PlanningConfig.ready)."""
    for model in PLAN_CYCLE_PATHS:
        post_create_historical_record.connect(
            _on_plan_history,
            sender=get_history_model_for_model(model),
            dispatch_uid=f"planning-signoff-voided-{model.__name__}",
        )
