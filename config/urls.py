"""Root URL configuration."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.views.defaults import page_not_found, server_error
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView


def api_aware_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Answer an unknown URL under /api/ in JSON, as the API answers everything else."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)


def api_aware_server_error(request: HttpRequest) -> HttpResponse:
    """Answer an unexpected error under /api/ in JSON (the detail stays in the logs)."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Server error."}, status=500)
    return server_error(request)


handler404 = api_aware_not_found
handler500 = api_aware_server_error


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
    path("api/v1/", include("conflicts.api.urls")),
    path("report/", include("conflicts.urls")),
    path("report/", include("planning.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"
    ),
]
