"""Inputs a review found answered with a 500 or left data inconsistent, now refused."""

import datetime as dt
import json

import pytest

from goals.models import Goal
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def shared(silo_a, silo_b):
    cycle = factories.CycleFactory(name="FY2027")
    factories.CycleFactory(
        name="FY2028", start_date=dt.date(2028, 1, 1), end_date=dt.date(2028, 12, 31)
    )
    goals = [
        factories.GoalFactory(
            cycle=cycle, kpi=factories.KPIFactory(silo=silo, slug=slug)
        )
        for silo, slug in ((silo_a, "deals"), (silo_b, "csat"))
    ]
    shared_goal = factories.SharedGoalFactory(cycle=cycle, name="Growth")
    for goal in goals:
        factories.ContributionFactory(shared_goal=shared_goal, goal=goal)
    return {"cycle": cycle, "goals": goals, "shared": shared_goal}


def test_contribution_weight_defaults_to_one(api, shared, cco):
    api.force_authenticate(cco)
    goal_ids = [goal.pk for goal in shared["goals"]]

    response = api.patch(
        f"/api/v1/shared-goals/{shared['shared'].pk}/",
        {"contributions": [{"goal": pk} for pk in goal_ids]},
        format="json",
    )

    assert response.status_code == 200
    assert [c["weight"] for c in response.json()["contributions"]] == [1.0, 1.0]


@pytest.mark.parametrize("goal_value", ["1e400", "1.7", "true"])
def test_contribution_goal_must_be_an_integer(api, shared, cco, goal_value):
    api.force_authenticate(cco)
    other = shared["goals"][1].pk
    body = (
        '{"contributions": [{"goal": ' + goal_value + ', "weight": 1}, '
        '{"goal": ' + str(other) + ', "weight": 1}]}'
    )

    response = api.patch(
        f"/api/v1/shared-goals/{shared['shared'].pk}/",
        body,
        content_type="application/json",
    )

    assert response.status_code == 400
    # DRF names a nested row's errors by its index.
    assert list(response.json()["contributions"]["0"]) == ["goal"]


def test_negative_weight_is_named_on_its_row(api, shared, cco):
    api.force_authenticate(cco)
    first, second = (goal.pk for goal in shared["goals"])

    response = api.patch(
        f"/api/v1/shared-goals/{shared['shared'].pk}/",
        {
            "contributions": [
                {"goal": first, "weight": -1},
                {"goal": second, "weight": 1},
            ]
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {
        "contributions": {"0": {"weight": ["The weight must be a positive number."]}}
    }


@pytest.mark.parametrize("path", ["/api/v1/goals/", "/api/v1/measurements/bulk/"])
def test_deeply_nested_json_is_a_400(api, shared, manager_a, path):
    api.force_authenticate(manager_a)
    body = '{"notes": ' + "[" * 100_000 + "]" * 100_000 + "}"

    response = api.post(path, body, content_type="application/json")

    assert response.status_code == 400
    assert "nested too deeply" in json.dumps(response.json())


def test_a_goal_in_a_shared_goal_keeps_its_cycle(api, shared, manager_a):
    api.force_authenticate(manager_a)
    goal = shared["goals"][0]

    response = api.patch(
        f"/api/v1/goals/{goal.pk}/",
        {"cycle": "FY2028", "period_start": "2028-01-01", "period_end": "2028-12-01"},
        format="json",
    )

    assert response.status_code == 400
    assert "contributes to a shared goal" in response.json()["cycle"][0]
    goal.refresh_from_db()
    assert goal.cycle == shared["cycle"]


def test_shared_goal_cycle_change_needs_matching_contributions(api, shared, cco):
    api.force_authenticate(cco)

    response = api.patch(
        f"/api/v1/shared-goals/{shared['shared'].pk}/",
        {"cycle": "FY2028"},
        format="json",
    )

    assert response.status_code == 400
    assert list(response.json()) == ["cycle"]
    shared["shared"].refresh_from_db()
    assert shared["shared"].cycle == shared["cycle"]


def test_cycle_dates_cannot_leave_its_goals_outside(api, shared, cco):
    api.force_authenticate(cco)

    response = api.patch(
        f"/api/v1/cycles/{shared['cycle'].pk}/",
        {"start_date": "2040-01-01", "end_date": "2040-12-31"},
        format="json",
    )

    assert response.status_code == 400
    assert "leave goals outside the cycle" in response.json()["start_date"][0]
    shared["cycle"].refresh_from_db()
    assert shared["cycle"].start_date == dt.date(2027, 1, 1)


@pytest.mark.parametrize("field", ["baseline", "target"])
def test_booleans_are_not_numbers(api, shared, manager_a, field):
    api.force_authenticate(manager_a)
    goal = shared["goals"][0]

    response = api.patch(f"/api/v1/goals/{goal.pk}/", {field: True}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert Goal.objects.get(pk=goal.pk).baseline == 100.0


def test_unknown_format_on_a_list_is_a_documented_json_404(api, shared, reader):
    from drf_spectacular.generators import SchemaGenerator

    api.force_authenticate(reader)

    response = api.get("/api/v1/kpis/?format=xml")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert "404" in schema["paths"]["/api/v1/kpis/"]["get"]["responses"]
