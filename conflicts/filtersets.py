"""Filters of the conflict register: the API's list, and the CCO team's register page
and its CSV (the same filters, with the silos offered as choices)."""

import django_filters
from django.db.models import Q, QuerySet

from conflicts.forms import SafeModelChoiceFilter
from conflicts.models import Conflict, Kind, Severity, Status
from core.filters import FilterSet, StrictBooleanFilter
from metrics.models import Silo

#: The longest free-text search the register takes (a few words, not a document).
TEXT_MAX_LENGTH = 200


class ConflictFilterSet(FilterSet):
    status = django_filters.MultipleChoiceFilter(
        choices=Status.choices, label="Status", help_text="Status (repeat for several)."
    )
    kind = django_filters.MultipleChoiceFilter(
        choices=Kind.choices, label="Kind", help_text="Kind (repeat for several)."
    )
    severity = django_filters.MultipleChoiceFilter(
        choices=Severity.choices,
        label="Severity",
        help_text="Severity (repeat for several).",
    )
    silo = django_filters.CharFilter(
        method="filter_silo", help_text="Silo slug, on either side of the conflict."
    )
    leader_silo = django_filters.CharFilter(
        field_name="leader_silo__slug", help_text="Slug of the silo that leads."
    )
    affected_silo = django_filters.CharFilter(
        field_name="affected_silo__slug", help_text="Slug of the silo that is hurt."
    )
    kpi = django_filters.CharFilter(
        method="filter_kpi", help_text="KPI key, on either side of the conflict."
    )
    q = django_filters.CharFilter(
        method="filter_text",
        max_length=TEXT_MAX_LENGTH,
        label="Text in a KPI or a note",
        help_text="Text in either KPI's key or name, or in the note (any case).",
    )
    stale = StrictBooleanFilter(
        label="Stale (no longer found)",
        help_text="true: only conflicts no longer found; false: only current ones.",
    )

    class Meta:
        model = Conflict
        fields = [
            "status",
            "kind",
            "severity",
            "silo",
            "leader_silo",
            "affected_silo",
            "kpi",
            "q",
            "stale",
        ]

    def filter_silo(self, queryset: QuerySet, name: str, value: object) -> QuerySet:
        slug = value.slug if isinstance(value, Silo) else value
        return queryset.filter(Q(leader_silo__slug=slug) | Q(affected_silo__slug=slug))

    def filter_kpi(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(Q(leader_kpi__key=value) | Q(affected_kpi__key=value))

    def filter_text(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        text = value.strip()
        if not text:
            return queryset
        return queryset.filter(
            Q(leader_kpi__key__icontains=text)
            | Q(leader_kpi__name__icontains=text)
            | Q(affected_kpi__key__icontains=text)
            | Q(affected_kpi__name__icontains=text)
            | Q(note__icontains=text)
        )


class ConflictRegisterFilterSet(ConflictFilterSet):
    """The register page's filters: the API's, with the silos as choices, so that an
    unknown silo is a message on the page rather than an empty register."""

    silo = SafeModelChoiceFilter(
        queryset=Silo.objects.order_by("position", "name"),
        to_field_name="slug",
        method="filter_silo",
        label="Silo (either side)",
        empty_label="Any silo",
    )
    leader_silo = SafeModelChoiceFilter(
        queryset=Silo.objects.order_by("position", "name"),
        to_field_name="slug",
        label="Leading silo",
        empty_label="Any silo",
    )
    affected_silo = SafeModelChoiceFilter(
        queryset=Silo.objects.order_by("position", "name"),
        to_field_name="slug",
        label="Affected silo",
        empty_label="Any silo",
    )

    class Meta(ConflictFilterSet.Meta):
        pass
