"""Filters of the API lists of KPIs, links and measurements."""

import datetime as dt
from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet

from core.filters import FilterSet
from metrics.models import (
    KPI,
    Aggregation,
    Direction,
    Frequency,
    ImpactLink,
    Measurement,
)


class UTCIsoDateTimeField(forms.DateTimeField):
    """An ISO 8601 timestamp with any offset, normalised to UTC.

    Python accepts offsets up to ±23:59 but PostgreSQL only to ±15:59; converting first
    means every offset a client may send works.
    """

    def to_python(self, value: Any) -> dt.datetime | None:
        parsed = django_filters.fields.IsoDateTimeField().to_python(value)
        if parsed is None:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        try:
            return parsed.astimezone(dt.UTC)
        except OverflowError:
            raise forms.ValidationError(
                "The timestamp falls outside the supported range.", code="invalid"
            ) from None


class UpdatedSinceFilter(django_filters.IsoDateTimeFilter):
    """``updated_at >= value`` for an ISO 8601 timestamp with any offset."""

    field_class = UTCIsoDateTimeField

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("field_name", "updated_at")
        kwargs.setdefault("lookup_expr", "gte")
        kwargs.setdefault(
            "help_text",
            "ISO 8601 timestamp with any offset; rows changed at or after it.",
        )
        super().__init__(**kwargs)


class KPIFilterSet(FilterSet):
    silo = django_filters.CharFilter(field_name="silo__slug", help_text="Silo slug.")
    direction = django_filters.ChoiceFilter(choices=Direction.choices)
    frequency = django_filters.ChoiceFilter(choices=Frequency.choices)
    aggregation = django_filters.ChoiceFilter(choices=Aggregation.choices)

    class Meta:
        model = KPI
        fields = ["silo", "direction", "frequency", "aggregation", "is_active"]


class ImpactLinkFilterSet(FilterSet):
    leader_kpi = django_filters.CharFilter(field_name="leader_kpi__key")
    affected_kpi = django_filters.CharFilter(field_name="affected_kpi__key")
    silo = django_filters.CharFilter(
        method="filter_silo", help_text="Slug of the leader's or the affected silo."
    )

    class Meta:
        model = ImpactLink
        fields = ["effect", "leader_kpi", "affected_kpi", "silo"]

    def filter_silo(
        self, queryset: QuerySet[ImpactLink], name: str, value: str
    ) -> QuerySet[ImpactLink]:
        return queryset.filter(leader_silo__slug=value) | queryset.filter(
            affected_silo__slug=value
        )


class MeasurementFilterSet(FilterSet):
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
    updated_since = UpdatedSinceFilter()

    class Meta:
        model = Measurement
        fields = ["kpi", "silo", "period_after", "period_before", "updated_since"]
