"""Writes through the REST API: roles, silo scoping, validation and history."""

import datetime as dt

import pytest
from rest_framework.authtoken.models import Token

from cycles.models import Cycle
from goals.models import Contribution, Goal, SharedGoal
from metrics.models import KPI, ImpactLink, Silo
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(silo_a, silo_b):
    cycle = factories.CycleFactory(name="FY2027")
    deals = factories.KPIFactory(silo=silo_a, slug="deals_closed")
    csat = factories.KPIFactory(silo=silo_b, slug="csat", aggregation="mean")
    return {
        "cycle": cycle,
        "deals": deals,
        "csat": csat,
        "goal_a": factories.GoalFactory(cycle=cycle, kpi=deals),
        "goal_b": factories.GoalFactory(cycle=cycle, kpi=csat),
    }


def as_token(api, user):
    token, _ = Token.objects.get_or_create(user=user)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")


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


GOAL_BODY = {
    "cycle": "FY2027",
    "baseline": 100,
    "target": 150,
    "period_start": "2027-01-01",
    "period_end": "2027-12-01",
}


def test_manager_writes_goals_of_their_own_silo_only(api, world, manager_a):
    as_token(api, manager_a)
    world["goal_a"].delete()

    created = api.post(
        "/api/v1/goals/", {**GOAL_BODY, "kpi": "sales.deals_closed"}, format="json"
    )
    foreign = api.post(
        "/api/v1/goals/", {**GOAL_BODY, "kpi": "support.csat"}, format="json"
    )

    assert created.status_code == 201
    assert created.json()["silo"] == "sales"
    assert foreign.status_code == 403
    assert foreign.json() == {
        "detail": "The KPI 'support.csat' belongs to a silo you do not manage."
    }
    assert Goal.objects.count() == 2


def test_a_goal_cannot_be_moved_to_another_silos_kpi(api, world, manager_a):
    as_token(api, manager_a)
    goal = world["goal_a"]

    response = api.patch(
        f"/api/v1/goals/{goal.pk}/", {"kpi": "support.csat"}, format="json"
    )

    assert response.status_code == 403
    goal.refresh_from_db()
    assert goal.kpi == world["deals"]


def test_goal_rules_name_the_field(api, world, manager_a):
    as_token(api, manager_a)
    goal = world["goal_a"]

    response = api.patch(f"/api/v1/goals/{goal.pk}/", {"target": 50}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "target": [
            "Higher is better for this KPI: the target must not be below the baseline (100)."
        ]
    }
    goal.refresh_from_db()
    assert goal.target == 150


def test_cco_creates_a_shared_goal_from_two_silos(api, world, cco):
    as_token(api, cco)
    body = {
        "cycle": "FY2027",
        "name": "Customers who stay",
        "contributions": [
            {"goal": world["goal_a"].pk, "weight": 2},
            {"goal": world["goal_b"].pk, "weight": 1},
        ],
    }

    response = api.post("/api/v1/shared-goals/", body, format="json")

    assert response.status_code == 201
    assert [
        (c["kpi"], c["silo"], c["weight"]) for c in response.json()["contributions"]
    ] == [
        ("sales.deals_closed", "sales", 2.0),
        ("support.csat", "support", 1.0),
    ]


def test_a_shared_goal_of_one_silo_is_refused_whole(api, world, cco):
    as_token(api, cco)
    body = {
        "cycle": "FY2027",
        "name": "Lonely",
        "contributions": [{"goal": world["goal_a"].pk, "weight": 1}],
    }

    response = api.post("/api/v1/shared-goals/", body, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "contributions": [
            "A shared goal needs contributions from goals of at least two different silos."
        ]
    }
    assert SharedGoal.objects.count() == 0
    assert Contribution.objects.count() == 0


def test_shared_goal_contributions_are_replaced_on_patch(api, world, silo_a, cco):
    shared = factories.SharedGoalFactory(cycle=world["cycle"], name="Growth")
    for goal in (world["goal_a"], world["goal_b"]):
        factories.ContributionFactory(shared_goal=shared, goal=goal)
    extra = factories.GoalFactory(
        cycle=world["cycle"], kpi=factories.KPIFactory(silo=silo_a)
    )
    as_token(api, cco)

    response = api.patch(
        f"/api/v1/shared-goals/{shared.pk}/",
        {
            "contributions": [
                {"goal": extra.pk, "weight": 3},
                {"goal": world["goal_b"].pk, "weight": 1},
            ]
        },
        format="json",
    )

    assert response.status_code == 200
    assert sorted(
        (c["goal"], c["weight"]) for c in response.json()["contributions"]
    ) == sorted([(extra.pk, 3.0), (world["goal_b"].pk, 1.0)])


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


def test_cco_creates_a_cycle_whose_phase_starts_at_draft(api, world, cco):
    as_token(api, cco)

    response = api.post(
        "/api/v1/cycles/",
        {
            "name": "FY2028",
            "start_date": "2028-01-01",
            "end_date": "2028-12-31",
            "budget": "2500000.00",
            "currency": "EUR",
            "silos": ["sales", "support"],
            "phase": "committed",
        },
        format="json",
    )

    assert response.status_code == 201
    cycle = Cycle.objects.get(name="FY2028")
    assert (cycle.phase, sorted(cycle.silos.values_list("slug", flat=True))) == (
        "draft",
        ["sales", "support"],
    )
    assert cycle.start_date == dt.date(2028, 1, 1)


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
