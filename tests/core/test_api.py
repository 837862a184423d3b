"""The API's plumbing, whatever the resource (core.api): authentication, roles,
throttling, content negotiation, request parsing and the OpenAPI schema."""

import io

import pytest
from django.core.management import call_command

from metrics.models import Silo
from tests import factories
from tests.tokens import as_token, token_for

pytestmark = pytest.mark.django_db


LISTS = [
    "/api/v1/silos/",
    "/api/v1/kpis/",
    "/api/v1/links/",
    "/api/v1/measurements/",
    "/api/v1/goals/",
    "/api/v1/shared-goals/",
    "/api/v1/cycles/",
]


@pytest.mark.parametrize("url", LISTS)
def test_anonymous_requests_get_401(api, url):
    response = api.get(url)

    assert response.status_code == 401
    assert response.json() == {
        "detail": "Authentication credentials were not provided."
    }
    assert response["WWW-Authenticate"] == "Token"


def test_schema_and_docs_are_public(api):
    schema = api.get("/api/schema/")
    docs = api.get("/api/docs/")

    assert schema.status_code == 200
    assert b"/api/v1/kpis/{key}/" in schema.content
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    # Served from the sidecar package: the docs work with no internet.
    assert b"cdn.jsdelivr" not in docs.content


def test_schema_is_valid_openapi_without_warnings():
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=io.StringIO())


def test_token_from_the_management_command_authenticates(api, company, reader):
    api.credentials(HTTP_AUTHORIZATION=f"Token {token_for(reader)}")

    response = api.get("/api/v1/kpis/")

    assert response.status_code == 200
    assert [row["key"] for row in response.json()["results"]] == [
        "sales.deals_closed",
        "support.tickets",
    ]


def test_a_user_without_a_role_is_refused(api, company):
    api.force_authenticate(factories.UserFactory(username="nobody"))

    response = api.get("/api/v1/kpis/")

    assert response.status_code == 403
    assert "no ducttape role" in response.json()["detail"]


def test_throttled_clients_get_429_with_retry_after(api, company, reader, monkeypatch):
    from django.core.cache import cache
    from rest_framework.throttling import UserRateThrottle

    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "2/min"})
    # User ids restart with each test database; an earlier run's counter may linger.
    cache.delete(f"throttle_user_{reader.pk}")
    api.credentials(HTTP_AUTHORIZATION=f"Token {token_for(reader)}")

    statuses = [api.get("/api/v1/silos/").status_code for _ in range(3)]
    refused = api.get("/api/v1/silos/")

    assert statuses == [200, 200, 429]
    assert 55 <= int(refused["Retry-After"]) <= 60
    assert refused.json()["detail"].startswith("Request was throttled.")
    # The counters live in the shared cache (Redis under the test command), not per process.
    assert cache.get(f"throttle_user_{reader.pk}") is not None


def test_every_status_the_api_can_answer_is_documented():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    kpi_detail = schema["paths"]["/api/v1/kpis/{key}/"]
    figures = schema["paths"]["/api/v1/figures/"]["get"]

    assert set(kpi_detail["get"]["responses"]) == {
        "200",
        "401",
        "403",
        "404",
        "406",
        "429",
        "503",
    }
    assert set(kpi_detail["patch"]["responses"]) == {
        "200",
        "400",
        "401",
        "403",
        "404",
        "409",
        "413",
        "415",
        "429",
        "503",
    }
    assert set(kpi_detail["delete"]["responses"]) == {
        "204",
        "401",
        "403",
        "404",
        "409",
        "429",
        "503",
    }
    assert {"200", "400", "401", "403", "406", "429", "503"} <= set(
        figures["responses"]
    )
    assert kpi_detail["get"]["responses"]["503"]["headers"]["Retry-After"]
    assert "text/csv" in figures["responses"]["200"]["content"]


def test_unmatched_accept_header_is_a_json_406(api, company, reader):
    api.force_authenticate(reader)

    response = api.get("/api/v1/kpis/", HTTP_ACCEPT="application/xml")

    assert response.status_code == 406
    assert response.json()["detail"].startswith(
        "Could not satisfy the request Accept header"
    )


def test_malformed_json_is_a_json_400(api, world, cco):
    as_token(api, cco)

    response = api.post("/api/v1/silos/", '{"slug": ', content_type="application/json")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error")


@pytest.mark.parametrize("escaped", ["nul\\u0000byte", "lone\\ud800surrogate"])
def test_text_with_nul_or_lone_surrogates_is_a_400(api, world, cco, escaped):
    as_token(api, cco)
    body = '{"slug": "legal", "name": "' + escaped + '"}'

    response = api.post("/api/v1/silos/", body, content_type="application/json")

    assert response.status_code == 400
    assert list(response.json()) == ["name"]
    assert not Silo.objects.filter(slug="legal").exists()
