"""Reads of the conflict register, with what every list shows loaded up front."""

from django.db.models import Case, IntegerField, QuerySet, Value, When

from conflicts.models import Conflict, Severity

RELATIONS = (
    "leader_kpi",
    "affected_kpi",
    "leader_silo",
    "affected_silo",
    "status_changed_by",
)


def conflict_list() -> QuerySet[Conflict]:
    """Return the register with both KPIs and silos joined (one query per page)."""
    return Conflict.objects.select_related(*RELATIONS)


def severity_rank() -> Case:
    """An expression ordering high (0) before medium (1) before low (2)."""
    return Case(
        When(severity=Severity.HIGH, then=Value(0)),
        When(severity=Severity.MEDIUM, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
