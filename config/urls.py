"""Root URL configuration."""

from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import include, path, reverse
from django.views.defaults import page_not_found, server_error
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core.api.root import ApiRootView
from core.database import DATABASE_UNAVAILABLE, RETRY_AFTER_SECONDS
from core.roles import holds_role_group
from core.views import TokenView


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
    """Answer the load balancer's liveness probe without touching the database.

    It stays "ok" while PostgreSQL is down: restarting this process would not bring the
    database back, and it recovers by itself when the database does (see /readyz).
    """
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    """Answer the readiness probe: 503 with Retry-After while the database is out of
    reach, so that a load balancer or orchestrator holds traffic back from an instance
    that cannot serve it (and /healthz keeps it from being restarted for nothing)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DATABASE_UNAVAILABLE:
        return JsonResponse(
            {"status": "unavailable", "database": "unavailable"},
            status=503,
            headers={
                "Retry-After": str(RETRY_AFTER_SECONDS),
                "Cache-Control": "no-store",
            },
        )
    return JsonResponse({"status": "ok", "database": "ok"})


def start_path(user) -> str:
    """Return the page ``user`` starts at.

    Anyone in a role group (the CCO team, silo managers, BI readers): their home, which
    shows each of their roles' sections. Superusers in no role group and staff without
    a role: the admin index (superusers manage users, tokens and lockouts there).
    """
    if holds_role_group(user):
        return reverse("home:home")
    return reverse("admin:index")


@login_required
def start(request: HttpRequest) -> HttpResponse:
    """Send the signed-in user to their start page (start_path): where a login goes when its
    ``next`` is missing or unsafe (LOGIN_REDIRECT_URL), instead of Django's default
    /accounts/profile/, which does not exist here."""
    return redirect(start_path(request.user))


admin.site.site_header = "ducttape"
admin.site.site_url = "/start/"
admin.site.site_title = "ducttape admin"
admin.site.index_title = "Silos, KPIs, goals and the planning cycle"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("api/v1/", ApiRootView.as_view(), name="api-root"),
    path("api/v1/", include("metrics.api.urls")),
    path("api/v1/", include("goals.api.urls")),
    path("api/v1/", include("planning.api.urls")),
    path("api/v1/", include("conflicts.api.urls")),
    path("api/v1/", include("notifications.api.urls")),
    # Each role's home at the root; the admin's "View site" (/start/) leads there.
    path("", include("home.urls")),
    path("report/", include("conflicts.urls")),
    path("report/", include("planning.urls")),
    path("start/", start, name="start"),
    path("account/token/", TokenView.as_view(), name="api-token"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's init script from ?script= instead of inline,
    # so the Content-Security-Policy needs no 'unsafe-inline' for scripts.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema"),
        name="api-docs",
    ),
]
