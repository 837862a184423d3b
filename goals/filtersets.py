"""Filters of the API lists of goals and shared goals."""

import django_filters

from goals.models import Goal, SharedGoal


class GoalFilterSet(django_filters.FilterSet):
    cycle = django_filters.CharFilter(field_name="cycle__name", help_text="Cycle name.")
    silo = django_filters.CharFilter(
        field_name="kpi__silo__slug", help_text="Silo slug."
    )
    kpi = django_filters.CharFilter(field_name="kpi__key", help_text="KPI key.")

    class Meta:
        model = Goal
        fields = ["cycle", "silo", "kpi"]


class SharedGoalFilterSet(django_filters.FilterSet):
    cycle = django_filters.CharFilter(field_name="cycle__name", help_text="Cycle name.")

    class Meta:
        model = SharedGoal
        fields = ["cycle"]
