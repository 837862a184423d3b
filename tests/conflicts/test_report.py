"""The CCO team's report pages and CSV export (server-rendered; the browser test is in
tests/test_browser.py)."""

import csv
import datetime as dt
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conflicts.models import Conflict, ConflictTransition
from tests import factories

pytestmark = pytest.mark.django_db

PAGES = ["/report/conflicts/", "/report/conflicts.csv", "/report/conflicts/{id}/"]


@pytest.fixture
def world(silo_a, silo_b):
    """Sales hurts Support twice (high, low) and Finance once (medium)."""
    finance = factories.SiloFactory(slug="finance", name="Finance", position=30)
    deals = factories.KPIFactory(silo=silo_a, slug="deals_closed", name="Deals closed")
    discount = factories.KPIFactory(silo=silo_a, slug="discount", name="Discount")
    backlog = factories.KPIFactory(
        silo=silo_b, slug="backlog", name="Ticket backlog", direction="lower_is_better"
    )
    margin = factories.KPIFactory(silo=finance, slug="margin", name="Gross margin")
    link = factories.ImpactLinkFactory(
        leader_kpi=discount,
        affected_kpi=margin,
        rationale="Discounts come straight out of margin.",
    )
    cycle = factories.CycleFactory(name="FY2027", phase="aligning")
    factories.GoalFactory(cycle=cycle, kpi=margin, baseline=30, target=35)
    return {
        "high": factories.ConflictFactory(leader_kpi=deals, affected_kpi=backlog),
        "low": factories.ConflictFactory(
            leader_kpi=discount,
            affected_kpi=backlog,
            severity="low",
            correlation=-0.28,
            lag=0,
            q_value=0.04,
            periods=30,
        ),
        "medium": factories.ConflictFactory(
            leader_kpi=discount,
            affected_kpi=margin,
            kind="confirmed",
            is_declared=True,
            link=link,
            severity="medium",
            correlation=-0.42,
            lag=3,
            q_value=0.0123,
            periods=36,
        ),
        "closed": factories.ConflictFactory(
            leader_kpi=margin, affected_kpi=deals, status="dismissed"
        ),
    }


@pytest.mark.parametrize("page", PAGES)
def test_anonymous_visitors_are_sent_to_the_login(client, world, page):
    url = page.format(id=world["high"].pk)

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={url}"


@pytest.mark.parametrize("page", PAGES[:2])
@pytest.mark.parametrize("role", ["manager_a", "manager_b", "reader"])
def test_only_the_cco_team_sees_the_report(client, world, page, role, request):
    client.force_login(request.getfixturevalue(role))

    response = client.get(page)

    assert response.status_code == 403


# One rule for the page and the API (conflicts.selectors.conflicts_visible_to): the CCO
# team and BI readers read every conflict; a silo manager reads those their silo leads
# or suffers, and another silo's conflict is not found. "high" is Sales -> Support,
# "medium" Sales -> Finance; manager_a manages Sales, manager_b Support.
VISIBILITY = [
    ("manager_a", "high", 200),
    ("manager_b", "high", 200),
    ("manager_a", "medium", 200),
    ("manager_b", "medium", 404),
    ("reader", "medium", 200),
    ("cco", "medium", 200),
]


@pytest.mark.parametrize(("role", "name", "status"), VISIBILITY)
def test_the_conflict_page_and_the_api_show_a_conflict_to_the_same_people(
    client, api, world, role, name, status, request
):
    user = request.getfixturevalue(role)
    conflict = world[name]
    client.force_login(user)
    api.force_authenticate(user)

    page = client.get(f"/report/conflicts/{conflict.pk}/")
    detail = api.get(f"/api/v1/conflicts/{conflict.pk}/")
    listed = {
        c["id"] for c in api.get("/api/v1/conflicts/?limit=100").json()["results"]
    }

    assert (page.status_code, detail.status_code) == (status, status)
    assert (conflict.pk in listed) == (status == 200)
    if status == 200:
        # Only the CCO team gets the workflow's buttons.
        text = page.content.decode()
        assert ('id="workflow"' in text) == (role == "cco")
        assert ("The CCO team moves conflicts through the review." in text) == (
            role != "cco"
        )


def test_a_manager_lists_only_the_conflicts_of_their_silos(api, world, manager_b):
    api.force_authenticate(manager_b)

    listed = api.get("/api/v1/conflicts/?limit=100").json()["results"]

    assert sorted(c["id"] for c in listed) == sorted(
        [world["high"].pk, world["low"].pk]
    )


def test_a_manager_cannot_post_a_transition_through_the_report(
    client, world, manager_a
):
    client.force_login(manager_a)
    conflict = world["high"]

    response = client.post(
        f"/report/conflicts/{conflict.pk}/", {"status": "acknowledged", "note": "x"}
    )

    assert response.status_code == 403
    conflict.refresh_from_db()
    assert conflict.status == "open"


def test_report_groups_open_conflicts_by_silo_pair_most_severe_first(
    client, world, cco
):
    client.force_login(cco)

    response = client.get("/report/conflicts/")

    assert response.status_code == 200
    groups = response.context["groups"]
    assert [(g["leader"].slug, g["affected"].slug) for g in groups] == [
        ("sales", "support"),
        ("sales", "finance"),
    ]
    assert [[c.severity for c in g["conflicts"]] for g in groups] == [
        ["high", "low"],
        ["medium"],
    ]
    # Value-chain order: sales (20), finance (30), support (40); the closed conflict
    # (finance -> sales) is not counted.
    heat = {
        (leader.slug, silo.slug): (cell.count, cell.high) if cell else None
        for leader, cells in response.context["heatmap"]
        for silo, cell in zip(response.context["silos"], cells, strict=True)
    }
    assert [s.slug for s in response.context["silos"]] == [
        "sales",
        "finance",
        "support",
    ]
    assert heat[("sales", "support")] == (2, 1)
    assert heat[("sales", "finance")] == (1, 0)
    assert heat[("finance", "sales")] == (0, 0)
    assert heat[("sales", "sales")] is None
    assert response.context["open_total"] == 3
    assert response.context["closed_total"] == 1


def test_report_query_count_does_not_grow_with_conflicts(
    client, world, cco, silo_a, silo_b
):
    client.force_login(cco)
    client.get("/report/conflicts/")

    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/report/conflicts/").status_code == 200
        return len(captured)

    few = queries()
    for _ in range(15):
        factories.ConflictFactory(
            leader_kpi=factories.KPIFactory(silo=silo_a),
            affected_kpi=factories.KPIFactory(silo=silo_b),
        )
    assert queries() == few


def test_conflict_page_shows_evidence_link_goals_and_buttons(client, world, cco):
    client.force_login(cco)
    conflict = world["medium"]

    response = client.get(f"/report/conflicts/{conflict.pk}/")

    assert response.status_code == 200
    # The headline says what happens in words; r and q are explained aside.
    assert response.context["headline"] == (
        "When Sales' discount improves, Finance's gross margin worsens 3 months later."
    )
    page = response.content.decode()
    assert "Discounts come straight out of margin." in page
    assert [g.kpi.key for g in response.context["goals"]] == ["finance.margin"]
    assert response.context["next_statuses"] == [("acknowledged", "Acknowledge")]
    # No measurements: no chart, and the page says why.
    assert response.context["values_chart"] is None
    assert "No chart: each KPI needs at least two stored values." in page


def test_transition_through_the_page_redirects_and_records(client, world, cco):
    client.force_login(cco)
    conflict = world["high"]

    response = client.post(
        f"/report/conflicts/{conflict.pk}/",
        {
            "status": "acknowledged",
            "note": "On the agenda.",
            "owner": "cco",
            "due_date": "2099-12-31",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == f"/report/conflicts/{conflict.pk}/"
    step = ConflictTransition.objects.get()
    assert (
        step.conflict,
        step.to_status,
        step.note,
        step.user,
        step.owner,
        step.due_date,
    ) == (conflict, "acknowledged", "On the agenda.", cco, cco, dt.date(2099, 12, 31))
    conflict.refresh_from_db()
    assert (conflict.owner, conflict.due_date) == (cco, dt.date(2099, 12, 31))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"status": "acknowledged", "note": ""}, "A note is required"),
        ({"status": "resolved", "note": "Fixed."}, "cannot move to resolved"),
        ({"note": "Fixed."}, "Unknown status"),
        (
            {"status": "acknowledged", "note": "a\x00b"},
            "Null characters are not allowed.",
        ),
        (
            {"status": "acknowledged", "note": "x" * 5001},
            "Keep the note to 5000 characters",
        ),
    ],
)
def test_invalid_transition_through_the_page_is_400_with_the_reason(
    client, world, cco, data, message
):
    client.force_login(cco)
    conflict = world["high"]

    response = client.post(f"/report/conflicts/{conflict.pk}/", data)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert ConflictTransition.objects.count() == 0


def test_unknown_conflict_is_404(client, world, cco):
    client.force_login(cco)

    assert client.get("/report/conflicts/999999/").status_code == 404


def test_csv_export_holds_the_whole_register(client, world, cco):
    client.force_login(cco)
    world["low"].note = "=HYPERLINK(evil)"
    world["low"].save()

    response = client.get("/report/conflicts.csv")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    assert response["Content-Disposition"].startswith(
        'attachment; filename="ducttape-conflicts-'
    )
    rows = list(
        csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))
    )
    assert len(rows) == Conflict.objects.count() == 4
    by_id = {int(row["id"]): row for row in rows}
    medium = by_id[world["medium"].pk]
    assert {
        k: medium[k]
        for k in (
            "kind",
            "leader_kpi",
            "affected_kpi",
            "lag",
            "correlation",
            "q_value",
            "severity",
            "status",
        )
    } == {
        "kind": "confirmed",
        "leader_kpi": "sales.discount",
        "affected_kpi": "finance.margin",
        "lag": "3",
        "correlation": "-0.42",
        "q_value": "0.0123",
        "severity": "medium",
        "status": "open",
    }
    # A note that a spreadsheet would run as a formula is quoted.
    assert by_id[world["low"].pk]["note"] == "'=HYPERLINK(evil)"


def test_a_refused_page_is_logged_as_one_line_without_a_traceback(
    client, manager_a, caplog
):
    client.force_login(manager_a)

    with caplog.at_level("WARNING", logger="django.request"):
        response = client.get("/report/conflicts/")

    assert response.status_code == 403
    [record] = [r for r in caplog.records if r.name == "django.request"]
    assert record.getMessage() == "Forbidden (Permission denied): /report/conflicts/"
    assert record.exc_info is None


@pytest.mark.parametrize(
    ("role", "name", "status"),
    [
        ("manager_a", "high", 302),  # Sales leads
        ("manager_b", "high", 302),  # Support suffers
        ("cco", "medium", 302),
        ("manager_b", "medium", 404),  # neither of Support's
        ("reader", "high", 403),  # BI readers read, they do not comment
    ],
)
def test_the_silos_involved_and_the_cco_team_comment_on_a_conflict(
    client, api, world, role, name, status, request
):
    user = request.getfixturevalue(role)
    conflict = world[name]
    client.force_login(user)
    path = f"/report/conflicts/{conflict.pk}/"

    response = client.post(path, {"comment": "We see the backlog rise too."})

    assert response.status_code == status
    comments = list(conflict.comments.values_list("author__username", "body"))
    if status == 302:
        assert response["Location"] == f"{path}#comments"
        assert comments == [(user.username, "We see the backlog rise too.")]
        page = client.get(path).content.decode()
        assert "We see the backlog rise too." in page
        api.force_authenticate(user)
        detail = api.get(f"/api/v1/conflicts/{conflict.pk}/").json()
        assert [(c["author"], c["body"]) for c in detail["comments"]] == comments
        # A comment is not a workflow step.
        conflict.refresh_from_db()
        assert conflict.status == "open"
    else:
        assert comments == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("   ", "Write the comment first."),
        ("a\x00b", "Null characters are not allowed."),
        ("x" * 4001, "Keep the comment to 4000 characters (it has 4001)."),
    ],
)
def test_a_bad_comment_is_refused_with_the_reason(
    client, world, manager_a, body, message
):
    client.force_login(manager_a)
    conflict = world["high"]

    response = client.post(f"/report/conflicts/{conflict.pk}/", {"comment": body})

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not conflict.comments.exists()
