"""Serializers of planning cycles with their priorities, RACI, funding and sign-offs."""

from rest_framework import serializers

from metrics.api.fields import SafeSlugRelatedField, StrictModelSerializer
from metrics.models import Silo
from planning.models import (
    FundingAllocation,
    PlanningCycle,
    Priority,
    Responsibility,
    SignOff,
)


class ResponsibilitySerializer(StrictModelSerializer):
    silo = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Responsibility
        fields = ["silo", "role"]


class FundingAllocationSerializer(StrictModelSerializer):
    silo = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = FundingAllocation
        fields = ["silo", "amount"]


class PrioritySerializer(StrictModelSerializer):
    accountable_silo = serializers.SlugRelatedField(slug_field="slug", read_only=True)
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
    silo = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    user = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = SignOff
        fields = ["silo", "user", "signed_at", "note"]


class PlanningCycleSerializer(StrictModelSerializer):
    silos = SafeSlugRelatedField(
        slug_field="slug", many=True, queryset=Silo.objects.all(), required=False
    )
    priorities = PrioritySerializer(many=True, read_only=True)
    sign_offs = SignOffSerializer(many=True, read_only=True)

    class Meta:
        model = PlanningCycle
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
            "created_at",
            "updated_at",
        ]
        # Phases move through the planning workflow, not by a plain write.
        read_only_fields = ["id", "phase", "created_at", "updated_at"]
        validators: list = []
