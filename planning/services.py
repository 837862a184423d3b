"""Writes of planning cycles. (Phase moves, sign-offs and funding rules come with the
planning workflow.)"""

from typing import Any

from django.db import transaction

from metrics.models import Silo
from metrics.roles import User
from metrics.services import validated_save
from planning.models import PlanningCycle


def cycle_save(
    *,
    user: User,
    cycle: PlanningCycle | None = None,
    silos: list[Silo] | None = None,
    **fields: Any,
) -> PlanningCycle:
    """Create a cycle, or update ``cycle``; ``silos`` (participants) replace the old."""
    with transaction.atomic():
        cycle = validated_save(instance=cycle or PlanningCycle(), user=user, **fields)
        if silos is not None:
            cycle.silos.set(silos)
    return cycle
