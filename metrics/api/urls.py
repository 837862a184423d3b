from django.urls import path
from rest_framework.routers import DefaultRouter

from metrics.api import views
from metrics.api.bulk import MeasurementBulkView

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("silos", views.SiloViewSet, basename="silo")
router.register("kpis", views.KPIViewSet, basename="kpi")
router.register("links", views.ImpactLinkViewSet, basename="link")
router.register("measurements", views.MeasurementViewSet, basename="measurement")

urlpatterns = [
    # Before the router's URLs, so measurements/<pk>/ routes never shadow it.
    path(
        "measurements/bulk/",
        MeasurementBulkView.as_view(),
        name="measurement-bulk",
    ),
    *router.urls,
]
