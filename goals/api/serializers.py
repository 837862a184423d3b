"""Serializers of silo goals and shared goals (KPIs by key, silos by slug)."""

from rest_framework import serializers

from goals.models import Contribution, Goal, SharedGoal


class GoalSerializer(serializers.ModelSerializer):
    cycle = serializers.SlugRelatedField(slug_field="name", read_only=True)
    kpi = serializers.SlugRelatedField(slug_field="key", read_only=True)
    silo = serializers.SlugRelatedField(
        source="kpi.silo", slug_field="slug", read_only=True
    )
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)

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
            "created_at",
            "updated_at",
        ]


class ContributionSerializer(serializers.ModelSerializer):
    goal = serializers.PrimaryKeyRelatedField(read_only=True)
    kpi = serializers.SlugRelatedField(
        source="goal.kpi", slug_field="key", read_only=True
    )
    silo = serializers.SlugRelatedField(
        source="goal.kpi.silo", slug_field="slug", read_only=True
    )

    class Meta:
        model = Contribution
        fields = ["goal", "kpi", "silo", "weight"]


class SharedGoalSerializer(serializers.ModelSerializer):
    cycle = serializers.SlugRelatedField(slug_field="name", read_only=True)
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    contributions = ContributionSerializer(many=True, read_only=True)

    class Meta:
        model = SharedGoal
        fields = [
            "id",
            "cycle",
            "name",
            "description",
            "owner",
            "contributions",
            "created_at",
            "updated_at",
        ]
