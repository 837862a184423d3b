"""Admin for silos, KPIs, measurements and declared links, scoped to each silo manager."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from core.roles import signed_in
from metrics import measurement_admin  # noqa: F401 - registers MeasurementAdmin
from metrics.admin_mixins import (
    SILO_FILTER,
    HistoryAdmin,
    SiloScopedAdminMixin,
    human_number,
)
from metrics.models import KPI, ImpactLink, Silo
from metrics.selectors import (
    LatestMeasurement,
    admin_silo_scope,
    kpi_list_with_latest,
    links_touching,
)

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class KPICount(TypedDict):
    """What SiloAdmin's queryset annotates."""

    kpi_count: int


@admin.register(Silo)
class SiloAdmin(HistoryAdmin):
    list_display = ["name", "slug", "position", "kpi_count", "manager_list"]
    list_editable = ["position"]
    search_fields = ["name", "slug", "description"]
    filter_horizontal = ["managers"]
    ordering = ["position", "name"]
    # Not the class attribute prepopulated_fields: simple-history's history form reads
    # that one directly, and the slug is not on the form once the silo has KPIs.
    SLUG_FROM_NAME = {"slug": ["name"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Silo]:
        return (
            super()
            .get_queryset(request)
            .annotate(kpi_count=Count("kpis", distinct=True))
            .prefetch_related("managers")
        )

    def get_readonly_fields(
        self, request: HttpRequest, obj: Silo | None = None
    ) -> list[str]:
        # KPI keys start with the silo's slug and never change, so neither may the slug.
        if obj is not None and obj.kpis.exists():
            return ["slug"]
        return []

    def get_prepopulated_fields(
        self, request: HttpRequest, obj: Silo | None = None
    ) -> dict:
        return {} if obj is not None and obj.kpis.exists() else self.SLUG_FROM_NAME

    @admin.display(description="KPIs", ordering="kpi_count")
    def kpi_count(self, silo: WithAnnotations[Silo, KPICount]) -> int:
        return silo.kpi_count

    @admin.display(description="Managers")
    def manager_list(self, silo: Silo) -> str:
        return ", ".join(user.get_username() for user in silo.managers.all()) or "-"


@admin.register(KPI)
class KPIAdmin(SiloScopedAdminMixin, HistoryAdmin):
    silo_lookup = "silo_id"
    list_display = [
        "key",
        "name",
        "silo",
        "unit",
        "direction",
        "frequency",
        "latest",
        "is_active",
    ]
    list_filter = [
        ("silo", SILO_FILTER),
        "direction",
        "frequency",
        "aggregation",
        "is_active",
    ]
    search_fields = ["key", "name", "description"]
    list_select_related = ["silo"]
    readonly_fields = ["key", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["silo", "slug", "key", "name", "unit", "description"]}),
        (
            "Behaviour",
            {
                "fields": [
                    "direction",
                    "band_low",
                    "band_high",
                    "frequency",
                    "aggregation",
                ]
            },
        ),
        (None, {"fields": ["is_active", "created_at", "updated_at"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[KPI]:
        return kpi_list_with_latest(super().get_queryset(request))

    def get_readonly_fields(
        self, request: HttpRequest, obj: KPI | None = None
    ) -> list[str]:
        # The key is public (API, imports, BI reports): silo and slug freeze once created.
        if obj is not None:
            return [*self.readonly_fields, "silo", "slug"]
        return list(self.readonly_fields)

    @admin.display(description="Latest value", ordering="latest_period")
    def latest(self, kpi: WithAnnotations[KPI, LatestMeasurement]) -> str:
        # Both come from the latest measurement: None together (no measurement yet).
        if kpi.latest_period is None or kpi.latest_value is None:
            return "-"
        value = human_number(kpi.latest_value)
        return f"{value} {kpi.unit} ({kpi.latest_period:%Y-%m-%d})"


@admin.register(ImpactLink)
class ImpactLinkAdmin(HistoryAdmin):
    list_display = ["leader_kpi", "effect", "affected_kpi", "lag", "declared_by"]
    list_filter = ["effect", "leader_silo", "affected_silo"]
    search_fields = ["leader_kpi__key", "affected_kpi__key", "rationale"]
    autocomplete_fields = ["leader_kpi", "affected_kpi"]
    readonly_fields = ["leader_silo", "affected_silo", "declared_by", "created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ImpactLink]:
        # Managers see the links that touch their own silos; the CCO team sees all.
        return links_touching(admin_silo_scope(request.user))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The history view falls back to a link's last copy: scope it like the list.
        allowed = super().has_view_permission(request, obj)
        if obj is None or not allowed:
            return allowed
        scope = admin_silo_scope(request.user)
        return scope is None or bool({obj.leader_silo_id, obj.affected_silo_id} & scope)

    def save_model(
        self, request: HttpRequest, obj: ImpactLink, form: Any, change: bool
    ) -> None:
        if not change:
            obj.declared_by = signed_in(request.user)
        super().save_model(request, obj, form, change)
