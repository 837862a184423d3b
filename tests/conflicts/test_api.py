"""The register and detection runs over the REST API."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conflicts.models import Conflict, ConflictTransition, DetectionRun
from tests import factories
from tests.conflicts.company import standard_company

pytestmark = pytest.mark.django_db


@pytest.fixture
def conflict(silo_a, silo_b):
    deals = factories.KPIFactory(silo=silo_a, slug="deals_closed")
    backlog = factories.KPIFactory(silo=silo_b, slug="ticket_backlog")
    return factories.ConflictFactory(leader_kpi=deals, affected_kpi=backlog)


def test_list_answers_the_documented_fields(api, reader, conflict):
    api.force_authenticate(reader)

    body = api.get("/api/v1/conflicts/").json()

    assert body["count"] == 1
    row = body["results"][0]
    assert {
        key: row[key]
        for key in [
            "id",
            "kind",
            "leader_kpi",
            "affected_kpi",
            "leader_silo",
            "affected_silo",
            "lag",
            "correlation",
            "p_value",
            "q_value",
            "periods",
            "severity",
            "status",
            "note",
            "stale",
        ]
    } == {
        "id": conflict.pk,
        "kind": "observed",
        "leader_kpi": "sales.deals_closed",
        "affected_kpi": "support.ticket_backlog",
        "leader_silo": "sales",
        "affected_silo": "support",
        "lag": 1,
        "correlation": -0.71,
        "p_value": 0.0001,
        "q_value": 0.001,
        "periods": 40,
        "severity": "high",
        "status": "open",
        "note": "",
        "stale": False,
    }
    assert row["first_detected_at"].endswith("Z")
    assert row["last_detected_at"].endswith("Z")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=open", ["a", "b"]),
        ("status=dismissed", ["c"]),
        ("status=open&status=dismissed", ["a", "b", "c"]),
        ("kind=declared", ["b"]),
        ("severity=low", ["c"]),
        ("silo=finance", ["b", "c"]),
        ("silo=support", ["a"]),
        ("kpi=finance.margin", ["b"]),
        ("kpi=sales.deals_closed", ["a", "b", "c"]),
        ("kpi=support.backlog", ["a"]),
        ("stale=true", ["c"]),
        ("silo=nowhere", []),
    ],
)
def test_filters(api, reader, silo_a, silo_b, query, expected):
    finance = factories.SiloFactory(slug="finance")
    deals = factories.KPIFactory(silo=silo_a, slug="deals_closed")
    backlog = factories.KPIFactory(silo=silo_b, slug="backlog")
    margin = factories.KPIFactory(silo=finance, slug="margin")
    cash = factories.KPIFactory(silo=finance, slug="cash")
    names = {
        factories.ConflictFactory(leader_kpi=deals, affected_kpi=backlog).pk: "a",
        factories.ConflictFactory(
            leader_kpi=deals, affected_kpi=margin, kind="declared", severity="medium"
        ).pk: "b",
        factories.ConflictFactory(
            leader_kpi=cash,
            affected_kpi=deals,
            severity="low",
            status="dismissed",
            stale=True,
        ).pk: "c",
    }
    api.force_authenticate(reader)

    body = api.get(f"/api/v1/conflicts/?{query}").json()

    assert sorted(names[row["id"]] for row in body["results"]) == expected


@pytest.mark.parametrize(
    "query",
    ["status=closed", "kind=suspected", "severity=urgent", "stale=maybe"],
)
def test_bad_filter_values_are_400_naming_the_filter(api, reader, query):
    api.force_authenticate(reader)

    response = api.get(f"/api/v1/conflicts/?{query}")

    assert response.status_code == 400
    assert list(response.json()) == [query.split("=")[0]]


def test_transition_by_the_cco_team_records_the_step(api, cco, manager_b, conflict):
    api.force_authenticate(cco)

    response = api.post(
        f"/api/v1/conflicts/{conflict.pk}/transition/",
        {
            "status": "acknowledged",
            "note": "Raised in the planning meeting.",
            "owner": "manager_b",
            "due_date": "2099-12-31",
        },
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert (
        body["status"],
        body["note"],
        body["status_changed_by"],
        body["owner"],
        body["due_date"],
        body["overdue"],
    ) == (
        "acknowledged",
        "Raised in the planning meeting.",
        "cco",
        "manager_b",
        "2099-12-31",
        False,
    )
    assert [
        (t["from_status"], t["to_status"], t["user"]) for t in body["transitions"]
    ] == [("open", "acknowledged", "cco")]


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (
            {"status": "resolved", "note": "Done."},
            {
                "status": [
                    "A conflict that is open cannot move to resolved: it can only "
                    "move to acknowledged."
                ]
            },
        ),
        ({"status": "acknowledged"}, {"note": ["This field is required."]}),
        (
            {"status": "acknowledged", "note": "  "},
            {"note": ["This field may not be blank."]},
        ),
        (
            {"status": "reviewed", "note": "x"},
            {"status": ['"reviewed" is not a valid choice.']},
        ),
        ({"note": "x"}, {"status": ["This field is required."]}),
    ],
)
def test_invalid_transition_is_400_saying_why(api, cco, conflict, body, errors):
    api.force_authenticate(cco)

    response = api.post(
        f"/api/v1/conflicts/{conflict.pk}/transition/", body, format="json"
    )

    assert response.status_code == 400
    assert response.json() == errors
    conflict.refresh_from_db()
    assert conflict.status == "open"
    assert ConflictTransition.objects.count() == 0


@pytest.mark.parametrize("role", ["manager_a", "manager_b", "reader"])
def test_only_the_cco_team_transitions(api, conflict, role, request):
    api.force_authenticate(request.getfixturevalue(role))

    response = api.post(
        f"/api/v1/conflicts/{conflict.pk}/transition/",
        {"status": "acknowledged", "note": "Mine."},
        format="json",
    )

    assert response.status_code == 403
    assert response.json() == {"detail": "Only the CCO team may change this."}
    conflict.refresh_from_db()
    assert conflict.status == "open"


def test_register_is_read_only_for_everyone(api, cco, conflict):
    api.force_authenticate(cco)
    for method in ("put", "patch", "delete"):
        response = getattr(api, method)(
            f"/api/v1/conflicts/{conflict.pk}/", {"status": "resolved"}, format="json"
        )
        assert response.status_code == 405
    assert api.post("/api/v1/conflicts/", {}, format="json").status_code == 405


def test_list_query_count_does_not_grow_with_rows(api, reader, silo_a, silo_b):
    api.force_authenticate(reader)
    api.get("/api/v1/conflicts/")  # the reader's roles are cached after one request

    def count_queries(rows):
        Conflict.objects.all().delete()
        for _ in range(rows):
            factories.ConflictFactory(
                leader_kpi=factories.KPIFactory(silo=silo_a),
                affected_kpi=factories.KPIFactory(silo=silo_b),
            )
        with CaptureQueriesContext(connection) as queries:
            assert api.get("/api/v1/conflicts/").json()["count"] == rows
        return len(queries)

    assert count_queries(2) == count_queries(25)


def test_cco_starts_a_run_that_runs_after_commit(
    api, cco, django_capture_on_commit_callbacks
):
    standard_company().save()
    api.force_authenticate(cco)

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/v1/detection-runs/", {"max_lag": 3, "min_pairs": 12}, format="json"
        )

    assert response.status_code == 202
    assert response.json()["status"] == "pending"
    assert response.json()["requested_by"] == "cco"
    run = DetectionRun.objects.get()
    # CELERY_TASK_ALWAYS_EAGER in the test settings: the task ran on commit.
    assert (run.status, run.trigger, run.conflicts_found) == ("succeeded", "api", 1)
    detail = api.get(f"/api/v1/detection-runs/{run.pk}/").json()
    assert detail["conflicts_found"] == 1
    assert detail["tests"] == run.tests


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"max_lag": 13}, "max_lag"),
        ({"max_lag": -1}, "max_lag"),
        ({"min_pairs": 2}, "min_pairs"),
        ({"q_threshold": 0}, "q_threshold"),
        ({"q_threshold": True}, "q_threshold"),
        ({"q_threshold": "NaN"}, "q_threshold"),
        ({"block_size": 10}, "block_size"),
        ({"status": "succeeded", "kpis": 5}, None),
    ],
)
def test_run_parameters_are_validated(api, cco, body, field):
    api.force_authenticate(cco)

    response = api.post("/api/v1/detection-runs/", body, format="json")

    if field is None:
        # Server-controlled fields are ignored, never set.
        assert response.status_code == 202
        run = DetectionRun.objects.get()
        assert (run.status, run.kpis) == ("pending", 0)
    else:
        assert response.status_code == 400
        assert list(response.json()) == [field]
        assert DetectionRun.objects.count() == 0
