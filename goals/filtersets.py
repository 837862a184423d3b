"""Filters of the API lists of goals and shared goals."""

import django_filters

from core.filters import FilterSet
from goals.models import Goal, RollupRun, SharedGoal


class GoalFilterSet(FilterSet):
    cycle = django_filters.CharFilter(field_name="cycle__name", help_text="Cycle name.")
    silo = django_filters.CharFilter(
        field_name="kpi__silo__slug", help_text="Silo slug."
    )
    kpi = django_filters.CharFilter(field_name="kpi__key", help_text="KPI key.")

    class Meta:
        model = Goal
        fields = ["cycle", "silo", "kpi"]


class SharedGoalFilterSet(FilterSet):
    cycle = django_filters.CharFilter(field_name="cycle__name", help_text="Cycle name.")

    class Meta:
        model = SharedGoal
        fields = ["cycle"]


class RollupRunFilterSet(FilterSet):
    status = django_filters.ChoiceFilter(choices=RollupRun.Status.choices)
    reason = django_filters.ChoiceFilter(choices=RollupRun.Reason.choices)

    class Meta:
        model = RollupRun
        fields = ["status", "reason"]
