"""API views of silos, KPIs, declared links and measurements.

Reads are open to every role; writes go through services, and the querysets that
updates and deletes look objects up in are the caller's writable ones, so another
silo's KPI is simply not found (404).
"""

from typing import Any

from django.db.models import QuerySet
from rest_framework import mixins, viewsets
from rest_framework.serializers import BaseSerializer

from metrics import services
from metrics.api.permissions import CCO, SILO_MANAGER
from metrics.api.serializers import (
    ImpactLinkSerializer,
    KPISerializer,
    MeasurementSerializer,
    SiloSerializer,
)
from metrics.filtersets import ImpactLinkFilterSet, KPIFilterSet, MeasurementFilterSet
from metrics.models import KPI, Measurement, Silo
from metrics.selectors import kpis_writable_by, links_touching


class ReadOnlyViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    pass


class ServiceModelViewSet(viewsets.ModelViewSet):
    """A model resource whose writes call a service and look up writable rows only.

    Subclasses set ``write_roles`` and ``save_service`` (called with ``user``, the
    instance to update or None, and the validated fields) and may narrow
    ``get_write_queryset``.
    """

    write_roles: tuple[str, ...] = ()
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    instance_argument: str = "instance"

    def save_service(self, *, user: Any, instance: Any, **fields: Any) -> Any:
        raise NotImplementedError

    def get_read_queryset(self) -> QuerySet:
        return super().get_queryset()

    def get_write_queryset(self) -> QuerySet:
        return self.get_read_queryset()

    def get_queryset(self) -> QuerySet:
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return self.get_read_queryset()
        return self.get_write_queryset()

    def perform_create(self, serializer: BaseSerializer) -> None:
        saved = self.save_service(
            user=self.request.user, instance=None, **serializer.validated_data
        )
        serializer.instance = self.reloaded(saved)

    def perform_update(self, serializer: BaseSerializer) -> None:
        saved = self.save_service(
            user=self.request.user,
            instance=serializer.instance,
            **serializer.validated_data,
        )
        serializer.instance = self.reloaded(saved)

    def reloaded(self, instance: Any) -> Any:
        # Answer with what is stored, related rows included, not the pre-write cache.
        return self.get_read_queryset().get(pk=instance.pk)

    def perform_destroy(self, instance: Any) -> None:
        services.recorded_delete(instance=instance, user=self.request.user)


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
