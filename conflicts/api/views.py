"""API of the conflict register and of detection runs.

The CCO team and BI readers read the whole register; a silo manager reads the conflicts
their silos lead or suffer (another's is "not found", as on the pages:
conflicts.selectors.conflicts_visible_to). Only the CCO team moves a conflict through
the workflow and starts detection runs; the CCO team and the managers of a conflict's
two silos comment on it (BI readers read the thread).
"""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from conflicts import services
from conflicts.api.serializers import (
    CommentCreateSerializer,
    ConflictCommentSerializer,
    ConflictDetailSerializer,
    ConflictSerializer,
    DetectionRunSerializer,
    TransitionSerializer,
)
from conflicts.filtersets import ConflictFilterSet
from conflicts.models import Conflict, DetectionRun, RunTrigger
from conflicts.selectors import (
    conflict_comments,
    conflict_list,
    conflicts_visible_to,
)
from core.api.permissions import CCO, SILO_MANAGER
from core.roles import signed_in


class ConflictViewSet(viewsets.ReadOnlyModelViewSet):
    """The conflict register: one row per (leader KPI, affected KPI), with evidence."""

    serializer_class = ConflictSerializer
    filterset_class = ConflictFilterSet
    write_roles = (CCO,)

    def get_queryset(self) -> QuerySet[Conflict]:
        queryset = conflicts_visible_to(self.request.user).order_by("id")
        if self.action == "retrieve":
            queryset = queryset.prefetch_related(
                "transitions__user", "comments__author"
            )
        return queryset

    def get_serializer_class(self) -> type[BaseSerializer]:
        if self.action == "retrieve":
            return ConflictDetailSerializer
        if self.action == "transition":
            return TransitionSerializer
        if self.action == "comments":
            return ConflictCommentSerializer
        return ConflictSerializer

    @extend_schema(
        request=TransitionSerializer,
        responses={200: ConflictDetailSerializer},
        summary="Move a conflict along the review workflow (CCO team).",
    )
    @action(detail=True, methods=["post"])
    def transition(self, request: Request, pk: str | None = None) -> Response:
        """open -> acknowledged -> accepted_tradeoff | resolved | dismissed, with a note."""
        conflict = self.get_object()
        body = TransitionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            services.conflict_transition(
                conflict=conflict,
                user=signed_in(request.user),
                status=body.validated_data["status"],
                note=body.validated_data["note"],
                owner=body.validated_data.get("owner"),
                due_date=body.validated_data.get("due_date"),
            )
        except ValidationError as error:
            return Response(error.message_dict, status=status.HTTP_400_BAD_REQUEST)
        fresh = (
            conflict_list()
            .prefetch_related("transitions__user", "comments__author")
            .get(pk=conflict.pk)
        )
        return Response(ConflictDetailSerializer(fresh).data)

    @extend_schema(
        methods=["GET"],
        responses={200: ConflictCommentSerializer(many=True)},
        summary="The conflict's comment thread, oldest first.",
    )
    @extend_schema(
        methods=["POST"],
        request=CommentCreateSerializer,
        responses={201: ConflictCommentSerializer},
        summary="Comment on a conflict (the CCO team and its two silos' managers).",
    )
    @action(
        detail=True,
        methods=["get", "post"],
        # Managers write here too: which conflicts, the queryset and the service say.
        write_roles=(CCO, SILO_MANAGER),
        filterset_class=None,
    )
    def comments(self, request: Request, pk: str | None = None) -> Response:
        """GET the thread (paginated); POST ``{"body": ...}`` to add to it."""
        conflict = self.get_object()
        if request.method == "GET":
            page = self.paginate_queryset(conflict_comments(conflict))
            return self.get_paginated_response(
                ConflictCommentSerializer(page, many=True).data
            )
        body = CommentCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            comment = services.conflict_comment_create(
                conflict=conflict,
                user=signed_in(request.user),
                body=body.validated_data["body"],
            )
        except PermissionDenied as refusal:
            raise exceptions.PermissionDenied(str(refusal)) from refusal
        except ValidationError as error:
            return Response(error.message_dict, status=status.HTTP_400_BAD_REQUEST)
        comment = conflict_comments(conflict).get(pk=comment.pk)
        return Response(
            ConflictCommentSerializer(comment).data, status=status.HTTP_201_CREATED
        )


class DetectionRunViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Detection runs. POST starts one on the workers (202); poll it by id."""

    queryset = DetectionRun.objects.select_related("requested_by").order_by("-id")
    serializer_class = DetectionRunSerializer
    write_roles = (CCO,)

    @extend_schema(responses={202: DetectionRunSerializer})
    def create(self, request: Request, *args: object, **kwargs: object) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            run = services.detection_run_create(
                trigger=RunTrigger.API, user=request.user, **serializer.validated_data
            )
            services.detection_run_enqueue(run)
        run.refresh_from_db()
        return Response(self.get_serializer(run).data, status=status.HTTP_202_ACCEPTED)
