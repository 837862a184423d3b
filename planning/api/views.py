"""API of planning cycles: the cycle, its phase workflow, sign-offs and readiness."""

from dataclasses import asdict
from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.permissions import CCO, SILO_MANAGER
from core.api.viewsets import ServiceModelViewSet
from cycles.models import Cycle
from metrics.models import Silo
from planning import selectors, services
from planning.api.serializers import (
    CommitCheckSerializer,
    ConsistencySerializer,
    PhaseMoveSerializer,
    PlanningCycleSerializer,
    ReadinessSerializer,
    SignOffRequestSerializer,
    SignOffSerializer,
)
from planning.projections import cycle_consistency

#: Actions a silo manager may call (for their own silos; the services check which).
MANAGER_ACTIONS = ("sign_off", "withdraw_sign_off")


class PlanningCycleViewSet(ServiceModelViewSet):
    """Planning cycles with priorities, RACI responsibilities, funding and sign-offs.

    The CCO team writes a cycle's name, dates, budget and participating silos, moves
    its phase and answers its readiness check; silo managers sign off for their silos.
    """

    serializer_class = PlanningCycleSerializer
    filterset_fields = ["phase"]

    @property
    def write_roles(self) -> tuple[str, ...]:  # type: ignore[override]  # read-only here (the roles follow the action); nothing assigns write_roles
        return (SILO_MANAGER,) if self.action in MANAGER_ACTIONS else (CCO,)

    def get_read_queryset(self) -> QuerySet[Cycle]:
        return selectors.cycle_list().order_by("-start_date")

    def save_service(self, *, user: Any, instance: Any, **fields: Any) -> Cycle:
        return services.cycle_save(user=user, cycle=instance, **fields)

    def _answer(self, cycle: Cycle, code: int = 200) -> Response:
        return Response(PlanningCycleSerializer(self.reloaded(cycle)).data, status=code)

    @extend_schema(
        request=PhaseMoveSerializer,
        responses={200: PlanningCycleSerializer},
        summary="Move the cycle to its next phase, or reopen a committed one (CCO team).",
    )
    @action(detail=True, methods=["post"])
    def phase(self, request: Request, pk: str | None = None) -> Response:
        """draft -> proposing -> aligning -> committed -> closed; committed -> aligning
        with a reason. A refused commit answers 400 with every blocker."""
        cycle = self.get_object()
        body = PhaseMoveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            services.cycle_phase_move(
                cycle=cycle, user=request.user, **body.validated_data
            )
        except services.CommitBlocked as refused:
            return Response(
                {
                    **refused.message_dict,
                    "blockers": [asdict(blocker) for blocker in refused.blockers],
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        return self._answer(cycle)

    @extend_schema(
        responses={200: CommitCheckSerializer},
        summary="What stops the cycle from committing now (every role may read).",
    )
    @action(detail=True, methods=["get"], url_path="commit-check")
    def commit_check(self, request: Request, pk: str | None = None) -> Response:
        cycle = self.get_object()
        blockers = selectors.commit_blockers(cycle)
        count = selectors.signoff_counts([cycle])[cycle.pk]
        return Response(
            {
                "can_commit": not blockers,
                "signed_off": count.signed,
                "participants": count.participants,
                "blockers": [asdict(b) for b in blockers],
            }
        )

    @extend_schema(
        responses={200: ConsistencySerializer},
        summary="Every goal's projected knock-on on the other silos' goals of the cycle, "
        "and the contradictions (every role may read).",
    )
    @action(detail=True, methods=["get"], url_path="consistency")
    def consistency(self, request: Request, pk: str | None = None) -> Response:
        return Response(cycle_consistency(self.get_object()))

    @extend_schema(
        request=SignOffRequestSerializer,
        responses={201: SignOffSerializer},
        summary="Sign off the cycle's plan for one of your silos (its managers only).",
    )
    @action(detail=True, methods=["post"], url_path="sign-offs")
    def sign_off(self, request: Request, pk: str | None = None) -> Response:
        cycle = self.get_object()
        body = SignOffRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        signed = services.signoff_create(
            cycle=cycle,
            user=request.user,
            silo=body.validated_data["silo"],
            note=body.validated_data["note"],
        )
        return Response(SignOffSerializer(signed).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        responses={204: None},
        parameters=[OpenApiParameter("silo", str, OpenApiParameter.PATH)],
        summary="Withdraw your silo's sign-off while the cycle is aligning.",
    )
    @action(
        detail=True,
        methods=["delete"],
        url_path=r"sign-offs/(?P<silo>[-a-z0-9_]+)",
    )
    def withdraw_sign_off(
        self, request: Request, pk: str | None = None, silo: str = ""
    ) -> Response:
        cycle = self.get_object()
        services.signoff_withdraw(
            cycle=cycle, user=request.user, silo=get_object_or_404(Silo, slug=silo)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        methods=["GET"],
        responses={200: ReadinessSerializer},
        summary="The 11 readiness statements with the cycle's answers and score.",
    )
    @extend_schema(
        methods=["PATCH"],
        request=ReadinessSerializer,
        responses={200: ReadinessSerializer},
        summary="Answer readiness statements (CCO team); all or none are saved.",
    )
    @action(detail=True, methods=["get", "patch"])
    def readiness(self, request: Request, pk: str | None = None) -> Response:
        cycle = self.get_object()
        if request.method == "PATCH":
            body = ReadinessSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            services.readiness_answers_save(
                cycle=cycle, user=request.user, answers=body.validated_data["answers"]
            )
        return Response(selectors.readiness_summary(cycle))
