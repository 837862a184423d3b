"""Serializers of the conflict register and of detection runs."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from conflicts.models import (
    Conflict,
    ConflictComment,
    ConflictTransition,
    DetectionRun,
    Method,
    Status,
)
from conflicts.services import runs
from core.api.fields import (
    SafeSlugRelatedField,
    StrictFloatField,
    StrictModelSerializer,
)
from core.roles import Account
from metrics import detection
from metrics.models import KPI, ImpactLink, Silo

#: The register's columns, in the order the API and the CSV export give them.
REGISTER_COLUMNS = [
    "id",
    "kind",
    "leader_kpi",
    "affected_kpi",
    "leader_silo",
    "affected_silo",
    "lag",
    "correlation",
    "p_value",
    "q_value",
    "periods",
    "grid",
    "effect",
    "effect_low",
    "effect_high",
    "severity",
    "status",
    "first_detected_at",
    "last_detected_at",
    "note",
    "stale",
    "contradicted",
    "goal_at_risk",
    "owner",
    "due_date",
    "overdue",
]


class ConflictTransitionSerializer(serializers.ModelSerializer):
    user: serializers.SlugRelatedField[Account] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = ConflictTransition
        fields = ["from_status", "to_status", "note", "user", "run", "created_at"]


class ConflictSerializer(serializers.ModelSerializer):
    """A conflict with its evidence. Every field is computed by detection or the
    workflow, so the resource is read-only."""

    leader_kpi: serializers.SlugRelatedField[KPI] = serializers.SlugRelatedField(
        slug_field="key", read_only=True
    )
    affected_kpi: serializers.SlugRelatedField[KPI] = serializers.SlugRelatedField(
        slug_field="key", read_only=True
    )
    leader_silo: serializers.SlugRelatedField[Silo] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    affected_silo: serializers.SlugRelatedField[Silo] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    status_changed_by: serializers.SlugRelatedField[Account] = (
        serializers.SlugRelatedField(slug_field="username", read_only=True)
    )
    declared_link: serializers.PrimaryKeyRelatedField[ImpactLink] = (
        serializers.PrimaryKeyRelatedField(source="link", read_only=True)
    )
    owner: serializers.SlugRelatedField[Account] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    overdue = serializers.SerializerMethodField(
        help_text="Still acknowledged after its due date."
    )

    class Meta:
        model = Conflict
        fields = [
            *REGISTER_COLUMNS,
            "declared_link",
            "last_run",
            "status_changed_at",
            "status_changed_by",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_overdue(self, conflict: Conflict) -> bool:
        return conflict.is_overdue(timezone.localdate())


class ConflictCommentSerializer(serializers.ModelSerializer):
    author: serializers.SlugRelatedField[Account] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = ConflictComment
        fields = ["id", "author", "body", "created_at"]
        read_only_fields = fields


class CommentCreateSerializer(serializers.Serializer):
    """The body of a new comment; conflicts.services.conflict_comment_create says
    what is wrong with its text (empty, too long, a NUL), as on the page."""

    body = serializers.CharField(
        allow_blank=True,
        trim_whitespace=False,
        help_text="The comment: 1 to 4000 characters, no NUL.",
    )


class ConflictDetailSerializer(ConflictSerializer):
    transitions = ConflictTransitionSerializer(many=True, read_only=True)
    comments = ConflictCommentSerializer(many=True, read_only=True)

    class Meta(ConflictSerializer.Meta):
        fields = [*ConflictSerializer.Meta.fields, "transitions", "comments"]
        read_only_fields = fields


class TransitionSerializer(serializers.Serializer):
    """The body of a workflow step: the new status and the reason for it; when
    acknowledging, who follows it up and by when (both required then)."""

    status = serializers.ChoiceField(choices=Status.choices)
    note = serializers.CharField(max_length=5000, trim_whitespace=True)
    owner: serializers.SlugRelatedField[Account] = SafeSlugRelatedField(
        slug_field="username",
        queryset=Account.objects.all(),
        required=False,
        allow_null=True,
        help_text="Username of who follows the conflict up: a member of the CCO team "
        "or a manager of one of its two silos. Required when acknowledging.",
    )
    due_date = serializers.DateField(
        required=False,
        allow_null=True,
        help_text="When the owner reports back (YYYY-MM-DD, today or later). "
        "Required when acknowledging.",
    )


class DetectionRunSerializer(StrictModelSerializer):
    """A detection run: parameters (writable on create), counts and timing."""

    requested_by: serializers.SlugRelatedField[Account] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    method = serializers.ChoiceField(choices=Method.choices, default=Method.DRIVERS)
    max_lag = serializers.IntegerField(
        min_value=runs.MAX_LAG_RANGE[0],
        max_value=runs.MAX_LAG_RANGE[1],
        default=detection.DEFAULT_MAX_LAG,
    )
    min_pairs = serializers.IntegerField(
        min_value=runs.MIN_PAIRS_RANGE[0],
        max_value=runs.MIN_PAIRS_RANGE[1],
        default=detection.DEFAULT_MIN_PAIRS,
    )
    q_threshold = StrictFloatField(
        min_value=runs.Q_THRESHOLD_RANGE[0],
        max_value=runs.Q_THRESHOLD_RANGE[1],
        default=detection.DEFAULT_Q_THRESHOLD,
    )
    block_size = serializers.IntegerField(
        min_value=runs.BLOCK_SIZE_RANGE[0],
        max_value=runs.BLOCK_SIZE_RANGE[1],
        default=runs.DEFAULT_BLOCK_SIZE,
    )

    class Meta:
        model = DetectionRun
        fields = [
            "id",
            "status",
            "trigger",
            "requested_by",
            "method",
            "max_lag",
            "min_pairs",
            "q_threshold",
            "block_size",
            "parameters",
            "kpis",
            "measurements",
            "blocks",
            "tests",
            "conflicts_found",
            "synergies_found",
            "contradicted_links",
            "new_conflicts",
            "reopened",
            "marked_stale",
            "high_alerts",
            "drivers",
            "synergies",
            "untested_kpis",
            "untested",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "duration_seconds",
        ]
        read_only_fields = [
            name
            for name in fields
            if name
            not in ("method", "max_lag", "min_pairs", "q_threshold", "block_size")
        ]
