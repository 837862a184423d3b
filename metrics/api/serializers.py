"""Serializers of silos, KPIs, links and measurements: silos by slug, KPIs by key."""

from rest_framework import serializers

from metrics.models import KPI, ImpactLink, Measurement, Silo


class SiloSerializer(serializers.ModelSerializer):
    class Meta:
        model = Silo
        fields = ["slug", "name", "description", "position", "created_at", "updated_at"]


class KPISerializer(serializers.ModelSerializer):
    silo = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = KPI
        fields = [
            "key",
            "silo",
            "slug",
            "name",
            "unit",
            "direction",
            "band_low",
            "band_high",
            "frequency",
            "aggregation",
            "description",
            "is_active",
            "created_at",
            "updated_at",
        ]


class ImpactLinkSerializer(serializers.ModelSerializer):
    leader_kpi = serializers.SlugRelatedField(slug_field="key", read_only=True)
    affected_kpi = serializers.SlugRelatedField(slug_field="key", read_only=True)
    leader_silo = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    affected_silo = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    declared_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ImpactLink
        fields = [
            "id",
            "leader_kpi",
            "affected_kpi",
            "leader_silo",
            "affected_silo",
            "effect",
            "lag",
            "rationale",
            "declared_by",
            "created_at",
            "updated_at",
        ]


class MeasurementSerializer(serializers.ModelSerializer):
    kpi = serializers.SlugRelatedField(slug_field="key", read_only=True)

    class Meta:
        model = Measurement
        fields = ["kpi", "period", "value", "source", "created_at", "updated_at"]
