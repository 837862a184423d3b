"""API views of silos, KPIs, declared links and measurements.

Reads are open to every role; writes go through services, and the querysets that
updates and deletes look objects up in are the caller's writable ones, so another
silo's KPI is simply not found (404).
"""

from typing import Any

from django.db.models import QuerySet
from rest_framework import mixins, viewsets

from core.api.permissions import CCO, SILO_MANAGER
from core.api.viewsets import ServiceModelViewSet
from metrics import services
from metrics.api.serializers import (
    ImpactLinkSerializer,
    KPISerializer,
    MeasurementSerializer,
    SiloSerializer,
)
from metrics.filtersets import ImpactLinkFilterSet, KPIFilterSet, MeasurementFilterSet
from metrics.models import KPI, Measurement, Silo
from metrics.selectors import kpis_writable_by, links_touching


class SiloViewSet(ServiceModelViewSet):
    """Silos in value-chain order, by slug. The CCO team writes."""

    queryset = Silo.objects.all()
    serializer_class = SiloSerializer
    lookup_field = "slug"
    # The slug rule itself: anything else (a NUL byte, say) is not a silo's URL (404)
    # and never reaches the database.
    lookup_value_regex = r"[a-z][a-z0-9_]*"
    write_roles = (CCO,)

    def save_service(self, *, user: Any, instance: Any, **fields: Any) -> Silo:
        return services.silo_save(user=user, silo=instance, **fields)


class KPIViewSet(ServiceModelViewSet):
    """KPIs of every silo, by key (``sales.deals_closed``).

    Silo managers write their own silos' KPIs; the CCO team writes all.
    """

    queryset = KPI.objects.select_related("silo")
    serializer_class = KPISerializer
    filterset_class = KPIFilterSet
    lookup_field = "key"
    # Keys hold a dot, which DRF's default lookup pattern would stop at.
    lookup_value_regex = r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*"
    write_roles = (SILO_MANAGER,)

    def get_write_queryset(self) -> QuerySet[KPI]:
        return kpis_writable_by(self.request.user).select_related("silo")

    def save_service(self, *, user: Any, instance: Any, **fields: Any) -> KPI:
        return services.kpi_save(user=user, kpi=instance, **fields)


class ImpactLinkViewSet(ServiceModelViewSet):
    """Declared effects of one silo's KPI on another silo's KPI. The CCO team writes."""

    serializer_class = ImpactLinkSerializer
    filterset_class = ImpactLinkFilterSet
    write_roles = (CCO,)

    def get_read_queryset(self) -> QuerySet:
        return links_touching(None).order_by("id")

    def save_service(self, *, user: Any, instance: Any, **fields: Any) -> Any:
        return services.link_save(user=user, link=instance, **fields)


class MeasurementViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Measurements of every silo's KPIs, filtered by KPI, silo, periods and change time.

    Pipelines write through ``measurements/bulk/``.
    """

    queryset = Measurement.objects.select_related("kpi").order_by("kpi__key", "period")
    serializer_class = MeasurementSerializer
    filterset_class = MeasurementFilterSet
