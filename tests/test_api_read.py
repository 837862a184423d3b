"""The read side of the REST API: authentication, roles, resources, filters, schema."""

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token

from metrics.models import Measurement
from tests import factories

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


@pytest.fixture
def company(silo_a, silo_b):
    deals = factories.KPIFactory(silo=silo_a, slug="deals_closed", unit="deals")
    tickets = factories.KPIFactory(
        silo=silo_b, slug="tickets", direction="lower_is_better", aggregation="sum"
    )
    for month, (d, t) in enumerate([(10, 100), (12, 104), (15, 111)], start=1):
        factories.MeasurementFactory(kpi=deals, period=dt.date(2024, month, 1), value=d)
        factories.MeasurementFactory(
            kpi=tickets, period=dt.date(2024, month, 1), value=t
        )
    factories.ImpactLinkFactory(leader_kpi=deals, affected_kpi=tickets, lag=1)
    return {"deals": deals, "tickets": tickets}


def token_for(user):
    out = io.StringIO()
    call_command("drf_create_token", user.username, stdout=out)
    return Token.objects.get(user=user).key


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


@pytest.mark.parametrize("role", ["reader", "manager_a", "cco"])
def test_every_role_reads_every_silo(api, company, request, role):
    api.force_authenticate(request.getfixturevalue(role))

    keys = [row["kpi"] for row in api.get("/api/v1/measurements/").json()["results"]]

    assert keys == ["sales.deals_closed"] * 3 + ["support.tickets"] * 3


def test_bi_readers_write_nothing(api, company, reader):
    api.force_authenticate(reader)

    response = api.post("/api/v1/silos/", {"slug": "x", "name": "X"}, format="json")

    assert response.status_code == 403
    assert api.delete("/api/v1/kpis/sales.deals_closed/").status_code == 403
    assert api.post("/api/v1/measurements/", {}, format="json").status_code == 403


def test_kpi_by_key(api, company, reader):
    api.force_authenticate(reader)

    response = api.get("/api/v1/kpis/sales.deals_closed/")

    assert response.status_code == 200
    body = response.json()
    assert {k: v for k, v in body.items() if k not in ("created_at", "updated_at")} == {
        "key": "sales.deals_closed",
        "silo": "sales",
        "slug": "deals_closed",
        "name": "Deals Closed",
        "unit": "deals",
        "direction": "higher_is_better",
        "band_low": None,
        "band_high": None,
        "frequency": "monthly",
        "aggregation": "sum",
        "description": "",
        "is_active": True,
    }
    assert body["updated_at"].endswith("Z")
    assert api.get("/api/v1/kpis/sales.nothing/").status_code == 404


def test_link_names_kpis_by_key_and_silos_by_slug(api, company, reader):
    api.force_authenticate(reader)

    (link,) = api.get("/api/v1/links/").json()["results"]

    assert (link["leader_kpi"], link["affected_kpi"]) == (
        "sales.deals_closed",
        "support.tickets",
    )
    assert (link["leader_silo"], link["affected_silo"], link["lag"]) == (
        "sales",
        "support",
        1,
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("kpi=sales.deals_closed", [("sales.deals_closed", m) for m in (1, 2, 3)]),
        (
            "silo=support&period_after=2024-02-01",
            [("support.tickets", 2), ("support.tickets", 3)],
        ),
        (
            "period_before=2024-01-01",
            [("sales.deals_closed", 1), ("support.tickets", 1)],
        ),
        ("kpi=unknown.kpi", []),
    ],
)
def test_measurement_filters(api, company, reader, query, expected):
    api.force_authenticate(reader)

    rows = api.get(f"/api/v1/measurements/?{query}").json()["results"]

    assert [(row["kpi"], int(row["period"][5:7])) for row in rows] == expected


def test_updated_since_accepts_any_offset(api, company, reader):
    moment = timezone.now()
    Measurement.objects.filter(kpi=company["deals"], period=dt.date(2024, 3, 1)).update(
        value=99, updated_at=moment + dt.timedelta(hours=1)
    )
    api.force_authenticate(reader)
    # The same instant, written at UTC+02:00.
    local = (moment + dt.timedelta(minutes=30)).astimezone(
        dt.timezone(dt.timedelta(hours=2))
    )

    response = api.get("/api/v1/measurements/", {"updated_since": local.isoformat()})

    assert [(r["kpi"], r["value"]) for r in response.json()["results"]] == [
        ("sales.deals_closed", 99.0)
    ]
    bad = api.get("/api/v1/measurements/", {"updated_since": "yesterday"})
    assert bad.status_code == 400
    assert "updated_since" in bad.json()


def test_page_size_is_capped(api, company, reader):
    api.force_authenticate(reader)

    response = api.get("/api/v1/measurements/", {"limit": 2, "offset": 1})

    body = response.json()
    assert body["count"] == 6
    assert len(body["results"]) == 2
    assert "limit=2" in body["next"]
    assert "offset=3" in body["next"]


def test_cycle_nests_priorities_raci_funding_and_sign_offs(api, silo_a, silo_b, reader):
    from planning.models import FundingAllocation, Responsibility, SignOff

    priority = factories.PriorityFactory(accountable_silo=silo_a, title="Grow", rank=1)
    priority.cycle.silos.add(silo_a, silo_b)
    Responsibility.objects.create(priority=priority, silo=silo_b, role="consulted")
    FundingAllocation.objects.create(priority=priority, silo=silo_a, amount="1500.00")
    SignOff.objects.create(cycle=priority.cycle, silo=silo_a, user=reader, note="ok")
    api.force_authenticate(reader)

    (cycle,) = api.get("/api/v1/cycles/").json()["results"]

    assert cycle["silos"] == ["sales", "support"]
    assert cycle["priorities"] == [
        {
            "id": priority.pk,
            "rank": 1,
            "title": "Grow",
            "description": "",
            "accountable_silo": "sales",
            "responsibilities": [{"silo": "support", "role": "consulted"}],
            "funding": [{"silo": "sales", "amount": "1500.00"}],
        }
    ]
    assert [(s["silo"], s["user"], s["note"]) for s in cycle["sign_offs"]] == [
        ("sales", "reader", "ok")
    ]


def grow(silo_a, silo_b, count):
    cycle = factories.CycleFactory()
    for _ in range(count):
        kpi_a = factories.KPIFactory(silo=silo_a)
        kpi_b = factories.KPIFactory(silo=silo_b)
        factories.MeasurementFactory(kpi=kpi_a)
        factories.ImpactLinkFactory(leader_kpi=kpi_a, affected_kpi=kpi_b)
        shared = factories.SharedGoalFactory(cycle=cycle)
        for kpi in (kpi_a, kpi_b):
            factories.ContributionFactory(
                shared_goal=shared, goal=factories.GoalFactory(cycle=cycle, kpi=kpi)
            )
        priority = factories.PriorityFactory(
            cycle=factories.CycleFactory(), accountable_silo=silo_a
        )
        priority.cycle.silos.add(silo_a)


@pytest.mark.parametrize("url", LISTS)
def test_list_query_count_does_not_grow_with_rows(api, silo_a, silo_b, reader, url):
    # A token loads the user afresh on each request, as in production.
    api.credentials(HTTP_AUTHORIZATION=f"Token {token_for(reader)}")
    grow(silo_a, silo_b, 2)
    with CaptureQueriesContext(connection) as few:
        assert api.get(url).status_code == 200
    grow(silo_a, silo_b, 10)
    with CaptureQueriesContext(connection) as many:
        assert api.get(url).status_code == 200

    assert len(many.captured_queries) == len(few.captured_queries)


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
