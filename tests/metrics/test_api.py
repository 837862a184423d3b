"""Silos, KPIs, declared links and measurements over the REST API: roles, silo
scoping, filters, validation and history."""

import datetime as dt

import pytest
from django.utils import timezone

from metrics.models import KPI, ImpactLink, Measurement, Silo
from tests import factories
from tests.tokens import as_token

pytestmark = pytest.mark.django_db


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


KPI_BODY = {
    "slug": "win_rate",
    "name": "Win rate",
    "unit": "%",
    "direction": "higher_is_better",
    "frequency": "monthly",
    "aggregation": "mean",
}


def test_manager_creates_a_kpi_in_their_own_silo(api, world, manager_a):
    as_token(api, manager_a)

    response = api.post("/api/v1/kpis/", {**KPI_BODY, "silo": "sales"}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert (body["key"], body["silo"], body["aggregation"]) == (
        "sales.win_rate",
        "sales",
        "mean",
    )
    kpi = KPI.objects.get(key="sales.win_rate")
    assert kpi.history.get().history_user == manager_a


def test_manager_cannot_create_a_kpi_in_another_silo(api, world, manager_a):
    as_token(api, manager_a)

    response = api.post("/api/v1/kpis/", {**KPI_BODY, "silo": "support"}, format="json")

    assert response.status_code == 403
    assert response.json() == {"detail": "You do not manage the silo 'support'."}
    assert not KPI.objects.filter(slug="win_rate").exists()


def test_unknown_silo_is_a_400_naming_it(api, world, cco):
    as_token(api, cco)

    response = api.post("/api/v1/kpis/", {**KPI_BODY, "silo": "nowhere"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"silo": ["Object with slug=nowhere does not exist."]}


def test_kpi_model_rules_come_back_as_field_errors(api, world, manager_a):
    as_token(api, manager_a)

    response = api.post(
        "/api/v1/kpis/",
        {
            **KPI_BODY,
            "silo": "sales",
            "direction": "target_band",
            "band_low": 5,
            "band_high": 1,
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {
        "non_field_errors": [
            "A target-band KPI needs band low <= band high; other directions have no band."
        ]
    }
    assert not KPI.objects.filter(slug="win_rate").exists()


def test_manager_patches_own_kpi_but_not_another_silos(api, world, manager_a):
    as_token(api, manager_a)

    own = api.patch(
        "/api/v1/kpis/sales.deals_closed/", {"name": "Deals won"}, format="json"
    )
    other = api.patch("/api/v1/kpis/support.csat/", {"name": "Hijacked"}, format="json")

    assert own.status_code == 200
    assert own.json()["name"] == "Deals won"
    assert other.status_code == 404
    world["csat"].refresh_from_db()
    assert world["csat"].name != "Hijacked"


def test_kpi_key_silo_and_slug_cannot_be_rewritten(api, world, cco):
    as_token(api, cco)

    response = api.patch(
        "/api/v1/kpis/sales.deals_closed/",
        {"key": "x.y", "silo": "support", "slug": "renamed"},
        format="json",
    )

    assert response.status_code == 200
    assert (response.json()["key"], response.json()["silo"]) == (
        "sales.deals_closed",
        "sales",
    )
    assert KPI.objects.filter(key="sales.deals_closed", silo__slug="sales").exists()


def test_deleting_a_kpi_with_measurements_is_a_409(api, world, manager_a):
    factories.MeasurementFactory(
        kpi=factories.KPIFactory(silo=world["deals"].silo, slug="leads")
    )
    as_token(api, manager_a)

    response = api.delete("/api/v1/kpis/sales.leads/")

    assert response.status_code == 409
    assert response.json() == {
        "detail": "Cannot delete: other records depend on it (measurements). Remove those first."
    }
    assert KPI.objects.filter(key="sales.leads").exists()


def test_only_the_cco_team_writes_silos(api, world, manager_a, cco):
    as_token(api, manager_a)
    refused = api.post(
        "/api/v1/silos/", {"slug": "legal", "name": "Legal"}, format="json"
    )
    as_token(api, cco)
    created = api.post(
        "/api/v1/silos/",
        {"slug": "legal", "name": "Legal", "position": 70},
        format="json",
    )
    renamed = api.patch("/api/v1/silos/sales/", {"slug": "revenue"}, format="json")

    assert refused.status_code == 403
    assert refused.json() == {"detail": "Only the CCO team may change this."}
    assert created.status_code == 201
    assert Silo.objects.get(slug="legal").history.get().history_user == cco
    # Sales has KPIs, so its slug (the first half of their keys) is frozen.
    assert renamed.status_code == 200
    assert renamed.json()["slug"] == "sales"


def test_cco_declares_links_across_silos_only(api, world, cco):
    as_token(api, cco)
    body = {
        "leader_kpi": "sales.deals_closed",
        "effect": "hurts",
        "lag": 1,
        "rationale": "More deals, more tickets.",
    }

    created = api.post(
        "/api/v1/links/", {**body, "affected_kpi": "support.csat"}, format="json"
    )
    inside = api.post(
        "/api/v1/links/",
        {
            **body,
            "leader_kpi": "support.csat",
            "affected_kpi": "sales.deals_closed",
            "lag": 13,
        },
        format="json",
    )

    assert created.status_code == 201
    assert (created.json()["declared_by"], created.json()["leader_silo"]) == (
        "cco",
        "sales",
    )
    assert inside.status_code == 400
    assert set(inside.json()) == {"lag"}
    assert ImpactLink.objects.count() == 1
