"""Root URL configuration."""

from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView


def healthz(request: HttpRequest) -> JsonResponse:
    """Answer the load balancer's liveness probe without touching the database."""
    return JsonResponse({"status": "ok"})


admin.site.site_header = "ducttape"
admin.site.site_title = "ducttape admin"
admin.site.index_title = "Silos, KPIs, goals and the planning cycle"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index"), name="home"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("api/v1/", include("metrics.api.urls")),
    path("api/v1/", include("goals.api.urls")),
    path("api/v1/", include("planning.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"
    ),
]
