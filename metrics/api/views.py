"""Read-only API views of silos, KPIs, declared links and measurements."""

from rest_framework import mixins, viewsets

from metrics.api.serializers import (
    ImpactLinkSerializer,
    KPISerializer,
    MeasurementSerializer,
    SiloSerializer,
)
from metrics.filtersets import ImpactLinkFilterSet, KPIFilterSet, MeasurementFilterSet
from metrics.models import KPI, Measurement, Silo
from metrics.selectors import links_touching


class ReadOnlyViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    pass


class SiloViewSet(ReadOnlyViewSet):
    """Silos in value-chain order, by slug."""

    queryset = Silo.objects.all()
    serializer_class = SiloSerializer
    lookup_field = "slug"


class KPIViewSet(ReadOnlyViewSet):
    """KPIs of every silo, by key (``sales.deals_closed``)."""

    queryset = KPI.objects.select_related("silo")
    serializer_class = KPISerializer
    filterset_class = KPIFilterSet
    lookup_field = "key"
    # Keys hold a dot, which DRF's default lookup pattern would stop at.
    lookup_value_regex = r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*"


class ImpactLinkViewSet(ReadOnlyViewSet):
    """Declared effects of one silo's KPI on another silo's KPI."""

    serializer_class = ImpactLinkSerializer
    filterset_class = ImpactLinkFilterSet

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return links_touching(None).order_by("id")


class MeasurementViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Measurements of every silo's KPIs, filtered by KPI, silo, periods and change time."""

    queryset = Measurement.objects.select_related("kpi").order_by("kpi__key", "period")
    serializer_class = MeasurementSerializer
    filterset_class = MeasurementFilterSet
