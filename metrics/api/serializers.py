"""Serializers of silos, KPIs, links and measurements: silos by slug, KPIs by key.

One serializer per resource serves reads and writes: server-controlled fields (keys,
silos copied onto links, timestamps, who declared) are read-only, and a relation to a
silo or KPI the caller may not write is refused with 403 (see ScopedSlugRelatedField).
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from core.api.fields import (
    SafeSlugRelatedField,
    ScopedSlugRelatedField,
    StrictModelSerializer,
)
from core.roles import Account
from metrics.models import KPI, ImpactLink, Measurement, Silo
from metrics.selectors import silos_writable_by


class SiloSerializer(StrictModelSerializer):
    class Meta:
        model = Silo
        fields = ["slug", "name", "description", "position", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        # KPI keys start with the silo's slug, and keys never change.
        if isinstance(self.instance, Silo) and self.instance.kpis.exists():
            fields["slug"].read_only = True
        return fields


class KPISerializer(StrictModelSerializer):
    silo = ScopedSlugRelatedField(
        slug_field="slug",
        queryset=Silo.objects.all(),
        writable=silos_writable_by,
        denied_message="You do not manage the silo {value!r}.",
    )

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
        read_only_fields = ["key", "created_at", "updated_at"]
        # The model's own UniqueConstraint check runs in the service's full_clean.
        validators: list = []

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        if self.instance is not None:
            # The key (silo.slug) is public and permanent.
            fields["silo"].read_only = True
            fields["slug"].read_only = True
        return fields


class ImpactLinkSerializer(StrictModelSerializer):
    leader_kpi = SafeSlugRelatedField(slug_field="key", queryset=KPI.objects.all())
    affected_kpi = SafeSlugRelatedField(slug_field="key", queryset=KPI.objects.all())
    leader_silo: serializers.SlugRelatedField[Silo] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    affected_silo: serializers.SlugRelatedField[Silo] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    declared_by: serializers.SlugRelatedField[Account] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

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
            "expected_effect",
            "rationale",
            "declared_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        validators: list = []


class MeasurementSerializer(StrictModelSerializer):
    kpi: serializers.SlugRelatedField[KPI] = serializers.SlugRelatedField(
        slug_field="key", read_only=True
    )

    class Meta:
        model = Measurement
        fields = ["kpi", "period", "value", "source", "created_at", "updated_at"]
