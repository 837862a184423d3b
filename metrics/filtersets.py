"""Filters of the API lists of KPIs, links and measurements."""

import django_filters

from metrics.models import (
    KPI,
    Aggregation,
    Direction,
    Frequency,
    ImpactLink,
    Measurement,
)


class KPIFilterSet(django_filters.FilterSet):
    silo = django_filters.CharFilter(field_name="silo__slug", help_text="Silo slug.")
    direction = django_filters.ChoiceFilter(choices=Direction.choices)
    frequency = django_filters.ChoiceFilter(choices=Frequency.choices)
    aggregation = django_filters.ChoiceFilter(choices=Aggregation.choices)

    class Meta:
        model = KPI
        fields = ["silo", "direction", "frequency", "aggregation", "is_active"]


class ImpactLinkFilterSet(django_filters.FilterSet):
    leader_kpi = django_filters.CharFilter(field_name="leader_kpi__key")
    affected_kpi = django_filters.CharFilter(field_name="affected_kpi__key")
    silo = django_filters.CharFilter(
        method="filter_silo", help_text="Slug of the leader's or the affected silo."
    )

    class Meta:
        model = ImpactLink
        fields = ["effect", "leader_kpi", "affected_kpi", "silo"]

    def filter_silo(self, queryset, name, value):  # type: ignore[no-untyped-def]
        return queryset.filter(leader_silo__slug=value) | queryset.filter(
            affected_silo__slug=value
        )


class MeasurementFilterSet(django_filters.FilterSet):
    kpi = django_filters.CharFilter(field_name="kpi__key", help_text="KPI key.")
    silo = django_filters.CharFilter(
        field_name="kpi__silo__slug", help_text="Silo slug."
    )
    period_after = django_filters.DateFilter(
        field_name="period", lookup_expr="gte", help_text="First period (inclusive)."
    )
    period_before = django_filters.DateFilter(
        field_name="period", lookup_expr="lte", help_text="Last period (inclusive)."
    )
    updated_since = django_filters.IsoDateTimeFilter(
        field_name="updated_at",
        lookup_expr="gte",
        help_text="ISO 8601 timestamp with any offset; rows changed at or after it.",
    )

    class Meta:
        model = Measurement
        fields = ["kpi", "silo", "period_after", "period_before", "updated_since"]
