"""API views of silo goals and shared goals."""

from typing import Any

from django.db.models import Prefetch, QuerySet

from goals import services
from goals.api.serializers import GoalSerializer, SharedGoalSerializer
from goals.filtersets import GoalFilterSet, SharedGoalFilterSet
from goals.models import Contribution, Goal, SharedGoal
from goals.selectors import goals_writable_by
from metrics.api.permissions import CCO, SILO_MANAGER
from metrics.api.views import ServiceModelViewSet

GOAL_RELATIONS = ("cycle", "kpi", "kpi__silo", "owner")


class GoalViewSet(ServiceModelViewSet):
    """Every silo's goals (transparency across silos is the point of alignment).

    Silo managers write their own silos' goals; the CCO team writes all.
    """

    queryset = Goal.objects.select_related(*GOAL_RELATIONS).order_by("id")
    serializer_class = GoalSerializer
    filterset_class = GoalFilterSet
    write_roles = (SILO_MANAGER,)

    def get_write_queryset(self) -> QuerySet[Goal]:
        return goals_writable_by(self.request.user).select_related(*GOAL_RELATIONS)

    def save_service(self, *, user: Any, instance: Any, **fields: Any) -> Goal:
        return services.goal_save(user=user, goal=instance, **fields)


class SharedGoalViewSet(ServiceModelViewSet):
    """Cross-silo shared goals with their weighted contributions. The CCO team writes."""

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
    write_roles = (CCO,)

    def save_service(self, *, user: Any, instance: Any, **fields: Any) -> SharedGoal:
        return services.shared_goal_save(user=user, shared_goal=instance, **fields)
