"""Every change to KPIs, goals, links and cycles is recorded with who, when and what."""

import pytest

from goals.models import Goal
from metrics.models import ImpactLink
from tests import factories
from tests.test_admin_scoping import goal_post_data

pytestmark = pytest.mark.django_db


def test_goal_target_change_records_user_and_diff(client, silo_a, manager_a):
    cycle = factories.CycleFactory()
    goal = factories.GoalFactory(cycle=cycle, kpi=factories.KPIFactory(silo=silo_a))
    client.force_login(manager_a)

    response = client.post(
        f"/admin/goals/goal/{goal.pk}/change/",
        goal_post_data(cycle, goal.kpi, target="175"),
    )

    assert response.status_code == 302
    latest, previous = goal.history.all()[:2]
    assert latest.history_user == manager_a
    assert latest.history_type == "~"
    changes = {c.field: (c.old, c.new) for c in latest.diff_against(previous).changes}
    assert changes["target"] == (150.0, 175.0)
    page = client.get(f"/admin/goals/goal/{goal.pk}/history/").content.decode()
    assert "manager_a" in page
    assert "Target" in page


def test_link_created_in_admin_records_the_cco(client, silo_a, silo_b, cco):
    leader = factories.KPIFactory(silo=silo_a)
    affected = factories.KPIFactory(silo=silo_b)
    client.force_login(cco)

    response = client.post(
        "/admin/metrics/impactlink/add/",
        {
            "leader_kpi": leader.pk,
            "affected_kpi": affected.pk,
            "effect": "hurts",
            "lag": "1",
            "rationale": "More deals, more tickets.",
        },
    )

    assert response.status_code == 302
    link = ImpactLink.objects.get()
    assert link.declared_by == cco
    assert link.history.get().history_user == cco


def test_cycle_phase_change_is_recorded_with_user_and_reason(api, cco):
    cycle = factories.CycleFactory(name="FY2027", phase="draft")
    api.force_authenticate(cco)

    response = api.post(
        f"/api/v1/cycles/{cycle.pk}/phase/", {"phase": "proposing"}, format="json"
    )

    assert response.status_code == 200
    assert [
        (h.phase, h.history_user, h.history_change_reason) for h in cycle.history.all()
    ] == [
        ("proposing", cco, "Phase draft -> proposing"),
        ("draft", None, None),
    ]


def test_the_admin_cannot_move_a_phase(client, cco):
    cycle = factories.CycleFactory(name="FY2027", phase="draft")
    client.force_login(cco)

    response = client.post(
        f"/admin/cycles/cycle/{cycle.pk}/change/",
        {
            "name": "FY2027",
            "start_date": "2027-01-01",
            "end_date": "2027-12-31",
            "phase": "committed",
            "budget": "1000000",
            "currency": "EUR",
            "priorities-TOTAL_FORMS": "0",
            "priorities-INITIAL_FORMS": "0",
            "sign_offs-TOTAL_FORMS": "0",
            "sign_offs-INITIAL_FORMS": "0",
            "readiness_answers-TOTAL_FORMS": "0",
            "readiness_answers-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302
    cycle.refresh_from_db()
    assert cycle.phase == "draft"


def test_history_survives_deletion(client, silo_a, manager_a):
    goal = factories.GoalFactory(kpi=factories.KPIFactory(silo=silo_a))
    goal_id = goal.pk
    client.force_login(manager_a)

    response = client.post(f"/admin/goals/goal/{goal_id}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not Goal.objects.filter(pk=goal_id).exists()
    records = Goal.history.filter(id=goal_id)
    assert [(r.history_type, r.history_user) for r in records] == [
        ("-", manager_a),
        ("+", None),
    ]
    page = client.get(f"/admin/goals/goal/{goal_id}/history/")
    assert page.status_code == 200
    assert "Deleted" in page.content.decode()
