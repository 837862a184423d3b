"""``GET /api/v1/``: the API's collections, by name, with their addresses."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

PREFIX = "api/v1/"


def _list_routes(
    patterns: Sequence[Any], prefix: str = ""
) -> Iterator[tuple[str, str]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _list_routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif (
            isinstance(pattern, URLPattern)
            and pattern.name
            and pattern.name.endswith("-list")
            and prefix.startswith(PREFIX)
            and "(?P<" not in str(pattern.pattern)  # the router's format-suffix twins
        ):
            route = str(pattern.pattern).strip("^$").rstrip("/")
            yield route, pattern.name


class ApiRootView(APIView):
    """List every collection of the API (each app's router adds its own), with the
    schema and the documentation."""

    @extend_schema(
        summary="The API's collections and their addresses.",
        responses={200: OpenApiResponse(description="Collection name to URL.")},
    )
    def get(self, request: Request) -> Response:
        found = dict(_list_routes(get_resolver().url_patterns))
        body = {
            route: reverse(name, request=request)
            for route, name in sorted(found.items())
        }
        body["schema"] = reverse("schema", request=request)
        body["docs"] = reverse("api-docs", request=request)
        return Response(body)
