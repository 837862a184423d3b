"""Read-only API views of planning cycles."""

from typing import Any

from django.db.models import Prefetch

from metrics.api.permissions import CCO
from metrics.api.views import ServiceModelViewSet
from planning import services
from planning.api.serializers import PlanningCycleSerializer
from planning.models import PlanningCycle, Priority, SignOff


class PlanningCycleViewSet(ServiceModelViewSet):
    """Planning cycles with priorities, RACI responsibilities, funding and sign-offs.

    The CCO team writes a cycle's name, dates, budget and participating silos.
    """

    queryset = PlanningCycle.objects.prefetch_related(
        "silos",
        Prefetch(
            "priorities",
            queryset=Priority.objects.select_related(
                "accountable_silo"
            ).prefetch_related("responsibilities__silo", "allocations__silo"),
        ),
        Prefetch("sign_offs", queryset=SignOff.objects.select_related("silo", "user")),
    ).order_by("-start_date")
    serializer_class = PlanningCycleSerializer
    filterset_fields = ["phase"]
    write_roles = (CCO,)

    def save_service(self, *, user: Any, instance: Any, **fields: Any) -> PlanningCycle:
        return services.cycle_save(user=user, cycle=instance, **fields)
