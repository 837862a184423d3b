"""Filters of the conflict register's API list and of the CCO report."""

import django_filters
from django.db.models import Q, QuerySet

from conflicts.models import Conflict, Kind, Severity, Status
from core.filters import FilterSet, StrictBooleanFilter


class ConflictFilterSet(FilterSet):
    status = django_filters.MultipleChoiceFilter(
        choices=Status.choices, help_text="Status (repeat for several)."
    )
    kind = django_filters.MultipleChoiceFilter(
        choices=Kind.choices, help_text="Kind (repeat for several)."
    )
    severity = django_filters.MultipleChoiceFilter(
        choices=Severity.choices, help_text="Severity (repeat for several)."
    )
    silo = django_filters.CharFilter(
        method="filter_silo", help_text="Silo slug, on either side of the conflict."
    )
    kpi = django_filters.CharFilter(
        method="filter_kpi", help_text="KPI key, on either side of the conflict."
    )
    stale = StrictBooleanFilter(
        help_text="true: only conflicts no longer found; false: only current ones.",
    )

    class Meta:
        model = Conflict
        fields = ["status", "kind", "severity", "silo", "kpi", "stale"]

    def filter_silo(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(
            Q(leader_silo__slug=value) | Q(affected_silo__slug=value)
        )

    def filter_kpi(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(Q(leader_kpi__key=value) | Q(affected_kpi__key=value))
