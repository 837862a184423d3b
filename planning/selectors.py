"""Reads of planning cycles with their totals computed in the same query."""

from django.db.models import (
    Case,
    DecimalField,
    FloatField,
    OuterRef,
    Prefetch,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from planning.models import (
    FundingAllocation,
    PlanningCycle,
    Priority,
    ReadinessAnswer,
    SignOff,
)


def cycle_list() -> QuerySet[PlanningCycle]:
    """Return cycles with ``allocated`` (funding total) and ``readiness_score``
    annotated, and their priorities, RACI, funding and sign-offs prefetched."""
    allocated = (
        FundingAllocation.objects.filter(priority__cycle=OuterRef("pk"))
        .order_by()
        .values("priority__cycle")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    points = (
        ReadinessAnswer.objects.filter(cycle=OuterRef("pk"))
        .order_by()
        .values("cycle")
        .annotate(
            total=Sum(
                Case(
                    When(answer="yes", then=Value(1.0)),
                    When(answer="partly", then=Value(0.5)),
                    default=Value(0.0),
                    output_field=FloatField(),
                )
            )
        )
        .values("total")
    )
    return PlanningCycle.objects.annotate(
        allocated=Coalesce(
            Subquery(
                allocated, output_field=DecimalField(max_digits=16, decimal_places=2)
            ),
            Value(0, output_field=DecimalField(max_digits=16, decimal_places=2)),
        ),
        readiness_score=Coalesce(
            Subquery(points, output_field=FloatField()), Value(0.0)
        ),
    ).prefetch_related(
        "silos",
        Prefetch(
            "priorities",
            queryset=Priority.objects.select_related(
                "accountable_silo"
            ).prefetch_related("responsibilities__silo", "allocations__silo"),
        ),
        Prefetch("sign_offs", queryset=SignOff.objects.select_related("silo", "user")),
    )
