"""Writes of planning cycles. (Phase moves, sign-offs and funding rules come with the
planning workflow.)"""

from typing import Any

from django.core.exceptions import ValidationError
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
        outside = cycle.goals.exclude(  # type: ignore[attr-defined]
            period_start__gte=cycle.start_date, period_end__lte=cycle.end_date
        )
        if outside.exists():
            names = ", ".join(
                str(goal) for goal in outside.select_related("kpi", "cycle")[:5]
            )
            raise ValidationError(
                {
                    "start_date": "The new dates leave goals outside the cycle "
                    f"({names}); move those goals first."
                }
            )
        if silos is not None:
            cycle.silos.set(silos)
    return cycle
