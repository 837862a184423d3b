"""Read-only API views of silo goals and shared goals."""

from django.db.models import Prefetch

from goals.api.serializers import GoalSerializer, SharedGoalSerializer
from goals.filtersets import GoalFilterSet, SharedGoalFilterSet
from goals.models import Contribution, Goal, SharedGoal
from metrics.api.views import ReadOnlyViewSet


class GoalViewSet(ReadOnlyViewSet):
    """Every silo's goals (transparency across silos is the point of alignment)."""

    queryset = Goal.objects.select_related(
        "cycle", "kpi", "kpi__silo", "owner"
    ).order_by("id")
    serializer_class = GoalSerializer
    filterset_class = GoalFilterSet


class SharedGoalViewSet(ReadOnlyViewSet):
    """Cross-silo shared goals with their weighted contributions."""

    queryset = (
        SharedGoal.objects.select_related("cycle", "owner")
        .prefetch_related(
            Prefetch(
                "contributions",
                queryset=Contribution.objects.select_related("goal__kpi__silo"),
            )
        )
        .order_by("id")
    )
    serializer_class = SharedGoalSerializer
    filterset_class = SharedGoalFilterSet
