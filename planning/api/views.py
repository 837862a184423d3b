"""Read-only API views of planning cycles."""

from django.db.models import Prefetch

from metrics.api.views import ReadOnlyViewSet
from planning.api.serializers import PlanningCycleSerializer
from planning.models import PlanningCycle, Priority, SignOff


class PlanningCycleViewSet(ReadOnlyViewSet):
    """Planning cycles with priorities, RACI responsibilities, funding and sign-offs."""

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
