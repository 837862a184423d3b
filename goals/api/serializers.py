"""Serializers of silo goals and shared goals (KPIs by key, silos by slug, cycles by name)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api.fields import (
    SafeSlugRelatedField,
    ScopedSlugRelatedField,
    StrictFloatField,
    StrictModelSerializer,
)
from cycles.models import Cycle
from goals import pace as pacing
from goals.models import (
    Contribution,
    Goal,
    Guardrail,
    RollupRun,
    SharedGoal,
    SharedGoalSnapshot,
)
from goals.selectors import goal_pace
from metrics.models import KPI, Silo
from metrics.selectors import kpis_writable_by, users_assignable_by


class GoalSerializer(StrictModelSerializer):
    cycle = SafeSlugRelatedField(slug_field="name", queryset=Cycle.objects.all())
    kpi = ScopedSlugRelatedField(
        slug_field="key",
        queryset=KPI.objects.all(),
        writable=kpis_writable_by,
        denied_message="The KPI {value!r} belongs to a silo you do not manage.",
    )
    silo: serializers.SlugRelatedField[Silo] = serializers.SlugRelatedField(
        source="kpi.silo", slug_field="slug", read_only=True
    )
    owner = ScopedSlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.filter(is_active=True),
        writable=users_assignable_by,
        denied_message="{value!r} is not a manager of your silos.",
        required=False,
        allow_null=True,
    )
    actual = serializers.FloatField(
        read_only=True,
        allow_null=True,
        help_text="The KPI aggregated (sum, mean or last) over the goal's periods so "
        "far; null before the first value.",
    )
    latest = serializers.DateField(
        read_only=True,
        allow_null=True,
        help_text="The last of the goal's periods with a value.",
    )
    as_of = serializers.SerializerMethodField(
        help_text="The period the pace is read at: the later of `latest` and the last "
        "complete period before today, within the goal's periods (a silo whose "
        "figures stop coming in falls behind its pace)."
    )
    attainment = serializers.SerializerMethodField(
        help_text="Attainment to date in [0, 1]. A sum goal's baseline and target are "
        "taken pro rata to the pace's share, so on pace it equals `expected`; at the "
        "due period it is the final attainment."
    )
    expected = serializers.SerializerMethodField(
        help_text="The attainment expected by `as_of`: linear over the goal's periods, "
        "or last year's seasonal shape for a sum KPI with a full year of history "
        "(`pace`); 1 for a target band."
    )
    status = serializers.SerializerMethodField(
        help_text="`met`; `on_track`; `at_risk`: more than 25% behind `expected`; "
        "`off_track`: more than 50% behind, or due and not met; `no_data`."
    )
    pace = serializers.SerializerMethodField(
        help_text="The shape `expected` follows: `linear` or `seasonal`."
    )

    class Meta:
        model = Goal
        fields = [
            "id",
            "cycle",
            "silo",
            "kpi",
            "name",
            "baseline",
            "target",
            "target_low",
            "target_high",
            "period_start",
            "period_end",
            "owner",
            "notes",
            "actual",
            "latest",
            "as_of",
            "attainment",
            "expected",
            "status",
            "pace",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        validators: list = []

    @extend_schema_field(serializers.DateField(allow_null=True))
    def get_as_of(self, goal: Goal) -> str | None:
        as_of = goal_pace(goal).as_of
        return as_of.isoformat() if as_of else None

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_attainment(self, goal: Goal) -> float | None:
        return goal_pace(goal).attainment

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_expected(self, goal: Goal) -> float | None:
        return goal_pace(goal).expected

    @extend_schema_field(serializers.ChoiceField(choices=pacing.STATUSES))
    def get_status(self, goal: Goal) -> str:
        return goal_pace(goal).status

    @extend_schema_field(serializers.ChoiceField(choices=pacing.SHAPES))
    def get_pace(self, goal: Goal) -> str:
        return goal_pace(goal).shape


class ContributionSerializer(StrictModelSerializer):
    goal = serializers.PrimaryKeyRelatedField(
        queryset=Goal.objects.select_related("kpi"),
        # An integer, not any JSON number: 1e400 would overflow the lookup, 1.7 round.
        pk_field=serializers.IntegerField(min_value=1),
    )
    weight = StrictFloatField(
        default=1.0,
        help_text="Share of the shared goal's progress (positive; default 1).",
    )
    kpi: serializers.SlugRelatedField[KPI] = serializers.SlugRelatedField(
        source="goal.kpi", slug_field="key", read_only=True
    )
    silo: serializers.SlugRelatedField[Silo] = serializers.SlugRelatedField(
        source="goal.kpi.silo", slug_field="slug", read_only=True
    )

    class Meta:
        model = Contribution
        fields = ["goal", "kpi", "silo", "weight"]

    def validate_weight(self, value: float) -> float:
        if value <= 0:
            raise serializers.ValidationError("The weight must be a positive number.")
        return value


class GuardrailSerializer(StrictModelSerializer):
    kpi = SafeSlugRelatedField(
        slug_field="key", queryset=KPI.objects.all(), help_text="Any silo's KPI."
    )
    tolerance = StrictFloatField(
        help_text="How much the KPI may worsen from its baseline, in its unit (>= 0)."
    )

    class Meta:
        model = Guardrail
        fields = ["id", "kpi", "baseline", "tolerance", "note"]
        read_only_fields = ["id"]

    def validate_tolerance(self, value: float) -> float:
        if value < 0:
            raise serializers.ValidationError("The tolerance must be >= 0.")
        return value


class SharedGoalSnapshotSerializer(serializers.ModelSerializer):
    """One day's roll-up of a shared goal."""

    class Meta:
        model = SharedGoalSnapshot
        fields = [
            "day",
            "progress",
            "uncapped_progress",
            "contributions_with_data",
            "contributions_total",
            "guardrail_breached",
            "per_silo",
            "contributions",
            "guardrails",
            "computed_at",
        ]
        read_only_fields = fields


class SharedGoalSerializer(StrictModelSerializer):
    cycle = SafeSlugRelatedField(slug_field="name", queryset=Cycle.objects.all())
    owner = SafeSlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.filter(is_active=True),
        required=False,
        allow_null=True,
    )
    contributions = ContributionSerializer(many=True)
    guardrails = GuardrailSerializer(many=True, required=False)
    # From the latest roll-up snapshot (None until the first roll-up).
    progress = serializers.FloatField(read_only=True, allow_null=True)
    progress_day = serializers.DateField(read_only=True, allow_null=True)
    contributions_with_data = serializers.IntegerField(read_only=True, allow_null=True)
    guardrail_breached = serializers.BooleanField(read_only=True, allow_null=True)

    class Meta:
        model = SharedGoal
        fields = [
            "id",
            "cycle",
            "name",
            "description",
            "owner",
            "contributions",
            "guardrails",
            "progress",
            "progress_day",
            "contributions_with_data",
            "guardrail_breached",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "progress",
            "progress_day",
            "contributions_with_data",
            "guardrail_breached",
            "created_at",
            "updated_at",
        ]
        validators: list = []


class RollupRunSerializer(serializers.ModelSerializer):
    """One run of the shared-goal roll-up; ``error`` says why a failed run failed."""

    class Meta:
        model = RollupRun
        fields = [
            "id",
            "reason",
            "status",
            "day",
            "shared_goals",
            "breached",
            "started_at",
            "finished_at",
            "duration_seconds",
            "error",
        ]
        read_only_fields = fields
