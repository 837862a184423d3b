"""Serializers of planning cycles with their priorities, RACI, funding and sign-offs."""

from __future__ import annotations

from rest_framework import serializers

from core.api.fields import SafeSlugRelatedField, StrictModelSerializer
from core.roles import Account
from cycles.models import Cycle, Phase
from metrics.models import Silo
from planning.models import Answer, FundingAllocation, Priority, Responsibility, SignOff


class ResponsibilitySerializer(StrictModelSerializer):
    silo: serializers.SlugRelatedField[Silo] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )

    class Meta:
        model = Responsibility
        fields = ["silo", "role"]


class FundingAllocationSerializer(StrictModelSerializer):
    silo: serializers.SlugRelatedField[Silo] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )

    class Meta:
        model = FundingAllocation
        fields = ["silo", "amount"]


class PrioritySerializer(StrictModelSerializer):
    accountable_silo: serializers.SlugRelatedField[Silo] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    responsibilities = ResponsibilitySerializer(many=True, read_only=True)
    funding = FundingAllocationSerializer(
        source="allocations", many=True, read_only=True
    )

    class Meta:
        model = Priority
        fields = [
            "id",
            "rank",
            "title",
            "description",
            "accountable_silo",
            "responsibilities",
            "funding",
        ]


class SignOffSerializer(StrictModelSerializer):
    silo: serializers.SlugRelatedField[Silo] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    user: serializers.SlugRelatedField[Account] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = SignOff
        fields = ["silo", "user", "signed_at", "note"]


class PlanningCycleSerializer(StrictModelSerializer):
    silos = SafeSlugRelatedField(
        slug_field="slug", many=True, queryset=Silo.objects.all(), required=False
    )
    priorities = PrioritySerializer(many=True, read_only=True)
    sign_offs = SignOffSerializer(many=True, read_only=True)
    allocated = serializers.DecimalField(
        max_digits=16,
        decimal_places=2,
        read_only=True,
        help_text="Sum of the funding allocations (never above the budget).",
    )
    readiness_score = serializers.FloatField(
        read_only=True, help_text="Readiness points out of 11 (yes 1, partly 0.5)."
    )

    class Meta:
        model = Cycle
        fields = [
            "id",
            "name",
            "start_date",
            "end_date",
            "phase",
            "budget",
            "currency",
            "silos",
            "priorities",
            "sign_offs",
            "allocated",
            "readiness_score",
            "created_at",
            "updated_at",
        ]
        # Phases move through the planning workflow, not by a plain write.
        read_only_fields = [
            "id",
            "phase",
            "allocated",
            "readiness_score",
            "created_at",
            "updated_at",
        ]
        validators: list = []


class PhaseMoveSerializer(serializers.Serializer):
    """The body of a phase move."""

    phase = serializers.ChoiceField(choices=Phase.choices)
    reason = serializers.CharField(
        max_length=2000,
        required=False,
        allow_blank=True,
        default="",
        help_text="Required to reopen a committed cycle (committed -> aligning).",
    )


BLOCKER_KINDS = [
    ("sign_off", "A silo has not signed off"),
    ("conflict", "An open high-severity conflict"),
    ("budget", "The funding is over the budget"),
    ("participants", "No participating silos"),
]


class BlockerSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=BLOCKER_KINDS)
    message = serializers.CharField()
    silo = serializers.CharField(allow_null=True)
    conflict = serializers.IntegerField(allow_null=True)
    action = serializers.CharField(help_text="Who can act on it, and how.")
    url = serializers.CharField(help_text="Where to act: a path of this site.")


class CommitCheckSerializer(serializers.Serializer):
    can_commit = serializers.BooleanField()
    signed_off = serializers.IntegerField(
        help_text="Participating silos that signed off the current plan (a later "
        "change of the plan voids a sign-off)."
    )
    participants = serializers.IntegerField(help_text="Participating silos.")
    blockers = BlockerSerializer(many=True)


class KnockOnGoalSerializer(serializers.Serializer):
    goal = serializers.IntegerField(help_text="The goal's id.")
    kpi = serializers.CharField(help_text="KPI key.")
    silo = serializers.CharField(help_text="Silo slug.")
    unit = serializers.CharField()
    baseline = serializers.FloatField()
    target = serializers.FloatField(allow_null=True)
    target_low = serializers.FloatField(allow_null=True)
    target_high = serializers.FloatField(allow_null=True)


class KnockOnSourceSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=["conflict", "link"],
        help_text="An observed conflict's effect, or a declared link's expected effect "
        "(used only where no observed conflict covers the pair).",
    )
    id = serializers.IntegerField(help_text="The conflict's or the link's id.")
    effect = serializers.FloatField(
        help_text="Units of the affected KPI per unit of the leader, per period."
    )
    effect_low = serializers.FloatField(allow_null=True, help_text="95% CI, low end.")
    effect_high = serializers.FloatField(allow_null=True, help_text="95% CI, high end.")
    lag = serializers.IntegerField(help_text="Periods from the leader to the effect.")


class ProjectionSerializer(serializers.Serializer):
    leader = KnockOnGoalSerializer()
    affected = KnockOnGoalSerializer()
    source = KnockOnSourceSerializer()  # type: ignore[assignment]  # a field named "source" shadows Field.source in the stubs only
    leader_change_per_period = serializers.FloatField(
        help_text="The leader goal's planned change per period (a sum goal's gain / its "
        "periods; a level goal's target - baseline)."
    )
    periods_reached = serializers.IntegerField(
        help_text="The affected goal's periods the knock-on reaches (after the lag)."
    )
    knock_on = serializers.FloatField(
        help_text="On the affected goal's aggregate, in its KPI's units."
    )
    knock_on_low = serializers.FloatField()
    knock_on_high = serializers.FloatField()
    attainment_without = serializers.FloatField()
    attainment_with = serializers.FloatField()
    attainment_with_low = serializers.FloatField()
    attainment_with_high = serializers.FloatField()
    contradiction = serializers.BooleanField(
        help_text="The knock-on takes the affected goal's attainment down by `margin` "
        "or more."
    )
    message = serializers.CharField()


class ConsistencySerializer(serializers.Serializer):
    cycle = serializers.CharField()
    margin = serializers.FloatField(
        help_text="The drop in attainment that makes a contradiction "
        "(PLANNING_CONTRADICTION_MARGIN)."
    )
    projections = ProjectionSerializer(many=True)
    contradictions = ProjectionSerializer(many=True)


class SignOffRequestSerializer(serializers.Serializer):
    silo = SafeSlugRelatedField(slug_field="slug", queryset=Silo.objects.all())
    note = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, default=""
    )


class ReadinessAnswerSerializer(serializers.Serializer):
    number = serializers.IntegerField(min_value=1, max_value=11)
    statement = serializers.CharField(read_only=True)
    answer = serializers.ChoiceField(choices=Answer.choices, allow_null=True)
    note = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, default=""
    )
    answered_by = serializers.CharField(read_only=True, allow_null=True)


class ReadinessSerializer(serializers.Serializer):
    """All 11 statements with the cycle's answers and its score."""

    score = serializers.FloatField(read_only=True)
    out_of = serializers.IntegerField(read_only=True)
    answers = ReadinessAnswerSerializer(many=True)

    def validate_answers(self, value: list) -> list:
        if not value:
            raise serializers.ValidationError("Send at least one answer.")
        if any(row["answer"] is None for row in value):
            raise serializers.ValidationError("Each answer must be yes, partly or no.")
        return value
