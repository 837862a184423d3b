"""API views of silo goals and shared goals."""

from typing import Any

from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.permissions import CCO, SILO_MANAGER
from core.api.viewsets import ServiceModelViewSet
from goals import services
from goals.api.serializers import (
    GoalSerializer,
    RollupRunSerializer,
    SharedGoalSerializer,
    SharedGoalSnapshotSerializer,
)
from goals.filtersets import GoalFilterSet, RollupRunFilterSet, SharedGoalFilterSet
from goals.models import Contribution, Goal, Guardrail, RollupRun, SharedGoal
from goals.selectors import (
    goal_list_with_actuals,
    goals_writable_by,
    shared_goals_with_progress,
    with_pace,
)

GOAL_RELATIONS = ("cycle", "kpi", "kpi__silo", "owner")


class GoalViewSet(ServiceModelViewSet):
    """Every silo's goals (transparency across silos is the point of alignment).

    Silo managers write their own silos' goals; the CCO team writes all.
    """

    queryset = Goal.objects.select_related(*GOAL_RELATIONS).order_by("id")
    serializer_class = GoalSerializer
    filterset_class = GoalFilterSet
    write_roles = (SILO_MANAGER,)

    def get_read_queryset(self) -> QuerySet[Goal]:
        return goal_list_with_actuals(super().get_read_queryset())

    def get_write_queryset(self) -> QuerySet[Goal]:
        return goals_writable_by(self.request.user).select_related(*GOAL_RELATIONS)

    def paginate_queryset(self, queryset: Any) -> Any:
        # Each page's pace in one query for the page, not one per goal.
        page = super().paginate_queryset(queryset)
        return None if page is None else with_pace(page)

    def save_service(self, *, user: Any, instance: Any, **fields: Any) -> Goal:
        return services.goal_save(user=user, goal=instance, **fields)

    def perform_destroy(self, instance: Goal) -> None:
        services.goal_delete(user=self.request.user, goal=instance)


class SharedGoalViewSet(ServiceModelViewSet):
    """Cross-silo shared goals with their weighted contributions and guardrails, and
    their progress from the latest roll-up. The CCO team writes."""

    serializer_class = SharedGoalSerializer
    filterset_class = SharedGoalFilterSet
    write_roles = (CCO,)

    def get_read_queryset(self) -> QuerySet[SharedGoal]:
        return (
            shared_goals_with_progress()
            .select_related("cycle", "owner")
            .prefetch_related(
                Prefetch(
                    "contributions",
                    queryset=Contribution.objects.select_related("goal__kpi__silo"),
                ),
                Prefetch(
                    "guardrails", queryset=Guardrail.objects.select_related("kpi")
                ),
            )
            .order_by("id")
        )

    def save_service(self, *, user: Any, instance: Any, **fields: Any) -> SharedGoal:
        return services.shared_goal_save(user=user, shared_goal=instance, **fields)

    def perform_destroy(self, instance: SharedGoal) -> None:
        services.shared_goal_delete(user=self.request.user, shared_goal=instance)

    @extend_schema(
        responses={200: SharedGoalSnapshotSerializer(many=True)},
        summary="The shared goal's daily roll-up snapshots, oldest first.",
    )
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def progress(self, request: Request, pk: str | None = None) -> Response:
        """Progress over time: one snapshot per day the roll-up ran."""
        shared_goal = self.get_object()
        snapshots = shared_goal.snapshots.order_by("day")
        return Response(SharedGoalSnapshotSerializer(snapshots, many=True).data)


class RollupRunViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Runs of the shared-goal roll-up, newest first: done, skipped (another run held
    the lock) or failed, with the error. Written only by the job."""

    queryset = RollupRun.objects.order_by("-started_at", "-id")
    serializer_class = RollupRunSerializer
    filterset_class = RollupRunFilterSet
