"""The cycle page: the CCO team's whole view, each manager's part, and its actions."""

import pytest

from goals import rollups
from planning.models import ReadinessAnswer, SignOff
from tests import factories
from tests.goals.rollup_world import build

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(silo_a, silo_b, manager_a, manager_b):
    data = build(silo_a, silo_b)
    cycle = data["cycle"]
    cycle.silos.set([silo_a, silo_b])
    marketing = factories.SiloFactory(slug="marketing", name="Marketing", position=10)
    factories.GoalFactory(
        cycle=cycle, kpi=factories.KPIFactory(silo=marketing, slug="leads")
    )
    return data


def url(cycle):
    return f"/report/cycles/{cycle.pk}/"


def test_anonymous_goes_to_login_and_a_reader_is_refused(client, world, reader):
    assert client.get(url(world["cycle"]))["Location"].startswith("/admin/login/")
    client.force_login(reader)
    assert client.get(url(world["cycle"])).status_code == 403
    assert client.get("/report/cycles/").status_code == 403


def test_the_cco_team_sees_every_part(client, world, cco):
    rollups.shared_goals_rollup()
    client.force_login(cco)

    response = client.get(url(world["cycle"]))

    assert response.status_code == 200
    context = response.context
    assert [row["silo"].slug for row in context["sign_off_rows"]] == [
        "sales",
        "support",
    ]
    assert [goal.kpi.key for goal, _ in context["goal_rows"]] == [
        "marketing.leads",
        "sales.deals",
        "finance.margin",
    ]
    assert [b.message for b in context["blockers"]] == [
        "Sales has not signed off.",
        "Support has not signed off.",
    ]
    assert context["shared_rows"][0]["shared_goal"].progress == pytest.approx(1.6 / 3)
    page = response.content.decode()
    assert 'id="blockers"' in page
    assert "Move to committed" in page


def test_a_manager_sees_their_part_and_signs_off_from_the_page(
    client, world, manager_a
):
    client.force_login(manager_a)

    response = client.get(url(world["cycle"]))

    context = response.context
    assert [row["silo"].slug for row in context["sign_off_rows"]] == ["sales"]
    assert [goal.kpi.key for goal, _ in context["goal_rows"]] == ["sales.deals"]
    assert context["blockers"] == []  # the commit gate is the CCO team's business
    assert "Move to committed" not in response.content.decode()

    response = client.post(
        url(world["cycle"]), {"action": "sign_off", "silo": "sales", "note": "Agreed."}
    )

    assert response.status_code == 302
    assert SignOff.objects.values_list(
        "silo__slug", "user__username", "note"
    ).get() == (
        "sales",
        "manager_a",
        "Agreed.",
    )


@pytest.mark.parametrize(
    ("data", "status"),
    [
        ({"action": "sign_off", "silo": "support"}, 403),  # not their silo
        ({"action": "phase", "phase": "committed"}, 403),  # only the CCO team
        ({"action": "readiness", "answer_1": "yes"}, 403),
        ({"action": "explode"}, 400),
    ],
)
def test_a_manager_cannot_act_beyond_their_part(client, world, manager_a, data, status):
    client.force_login(manager_a)

    assert client.post(url(world["cycle"]), data).status_code == status
    assert SignOff.objects.count() == 0


def test_the_cco_team_commits_from_the_page_once_nothing_blocks(
    client, world, cco, manager_a, manager_b
):
    client.force_login(cco)
    confirm = f"{url(world['cycle'])}phase/committed/"
    # The page's own phase form sends a commit to its confirmation page first.
    asked = client.post(url(world["cycle"]), {"action": "phase", "phase": "committed"})
    assert (asked.status_code, asked["Location"]) == (302, confirm)
    refused = client.post(confirm)
    assert refused.status_code == 400
    assert "cannot commit yet" in refused.content.decode()

    for manager, silo in ((manager_a, "sales"), (manager_b, "support")):
        client.force_login(manager)
        client.post(url(world["cycle"]), {"action": "sign_off", "silo": silo})
    client.force_login(cco)
    response = client.post(confirm)

    assert response.status_code == 302
    world["cycle"].refresh_from_db()
    assert world["cycle"].phase == "committed"
    page = client.get(url(world["cycle"])).content.decode()
    assert "Reopen (back to aligning)" in page


def test_the_cco_team_answers_the_readiness_check_on_the_page(client, world, cco):
    client.force_login(cco)

    response = client.post(
        url(world["cycle"]),
        {
            "action": "readiness",
            "answer_1": "yes",
            "note_1": "Our CCO.",
            "answer_2": "partly",
        },
    )

    assert response.status_code == 302
    assert dict(ReadinessAnswer.objects.values_list("number", "answer")) == {
        1: "yes",
        2: "partly",
    }
    page = client.get(url(world["cycle"]))
    assert page.context["readiness"]["score"] == 1.5


@pytest.mark.parametrize(
    "data",
    [
        {"action": "sign_off", "silo": "sa\x00les"},
        {"action": "withdraw", "silo": "\x00"},
        {"action": "sign_off", "silo": "sales", "note": "a\x00b"},
        {"action": "sign_off", "silo": "sales", "note": "x" * 2001},
        {"action": "readiness", "answer_1": "yes", "note_1": "a\x00b"},
        {"action": "readiness", "answer_1": "yes", "note_1": "x" * 2001},
        {"action": "readiness", "answer_1": "certainly"},
        {"action": "phase", "phase": "commit\x00ted"},
    ],
)
def test_bad_text_on_the_page_is_a_400_and_saves_nothing(
    client, world, cco, manager_a, data
):
    client.force_login(cco if data["action"] in ("readiness", "phase") else manager_a)

    response = client.post(url(world["cycle"]), data)

    assert response.status_code == 400
    assert SignOff.objects.count() == 0
    assert ReadinessAnswer.objects.count() == 0
