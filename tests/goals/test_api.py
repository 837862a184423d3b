"""Goals and shared goals over the REST API: silo scoping and validation."""

import pytest

from goals.models import Contribution, Goal, SharedGoal
from tests import factories
from tests.tokens import as_token

pytestmark = pytest.mark.django_db


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
