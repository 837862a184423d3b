"""Security of the whole API (issue 6).

* Tokens can be revoked: a deleted or regenerated token, or the token of a deactivated
  user, gets a JSON 401 on every operation.
* Server-controlled fields (ids, keys, the silo of an existing object, timestamps,
  history, computed progress, a conflict's evidence, a run's counts, who declared or
  signed) cannot be set through writes: each case below says whether the field is
  ignored (stored value unchanged, the response shows the server's value) or refused
  with a 400.
* Text the database cannot store (NUL characters, lone surrogates) gets a 400, never a
  500, in every string of every write body, in list filters and in path parameters;
  a refused request changes nothing.

The write operations, bodies, fixtures and database fingerprint come from the
authorization matrix (tests/test_api_matrix.py).
"""

import datetime as dt
import hashlib
import io
import json
from typing import Any

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection, models
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from conflicts.models import Conflict, DetectionRun
from cycles.models import Cycle
from goals.models import Goal, SharedGoal, SharedGoalSnapshot
from metrics.models import KPI, ImpactLink, Silo
from planning import readiness
from planning.models import ReadinessAnswer, SignOff
from tests import test_api_matrix
from tests.test_api_matrix import MATRIX, ROLES, database_fingerprint, fill

pytestmark = pytest.mark.django_db

# The matrix's fixture: a company with every kind of object the operations name.
world = test_api_matrix.world

#: An id no sequence of the test database reaches.
FOREIGN_ID = 2_000_000_000
#: A timestamp no row of the test database has.
OLD = "2000-01-01T00:00:00Z"
#: A history a client might try to write (or rewrite) along with a change.
FAKE_HISTORY = [{"history_user": "manager_b", "history_date": OLD, "history_type": "-"}]

WRITES = sorted(op for op in MATRIX if op[0] != "GET")
WRITES_WITH_BODY = [op for op in WRITES if MATRIX[op][1] is not None]


def op_id(op: tuple[str, str]) -> str:
    return f"{op[0]} {op[1]}"


def token_client(user: Any) -> APIClient:
    token, _ = Token.objects.get_or_create(user=user)
    # A server error is an answer to assert on (500), not an exception in the test.
    api = APIClient(raise_request_exception=False)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return api


def fingerprint() -> str:
    """The matrix's fingerprint, plus the conflict register and the tokens."""
    digest = hashlib.sha256(database_fingerprint().encode())
    tables = sorted(
        {
            model._meta.db_table
            for label in ("conflicts", "authtoken")
            for model in apps.get_app_config(label).get_models()
            if not model._meta.proxy
        }
    )
    with connection.cursor() as cursor:
        for table in tables:
            quoted = connection.ops.quote_name(table)
            cursor.execute(f"SELECT * FROM {quoted} ORDER BY 1")  # noqa: S608 - table names from the ORM
            digest.update(repr(cursor.fetchall()).encode())
    return digest.hexdigest()


def succeeding_roles(op: tuple[str, str]) -> list[str]:
    """The writing roles (CCO team, silo managers of silo A, then B) the matrix lets
    succeed (B only for its own notification subscription)."""
    statuses = MATRIX[op][2]
    return [
        role
        for role in ("cco", "manager_a", "manager_b")
        if 200 <= statuses[ROLES.index(role)] < 300
    ]


# --- Revocable tokens -------------------------------------------------------------------


def test_a_valid_token_works_and_a_deleted_one_gets_a_json_401(api, reader):
    token = Token.objects.create(user=reader)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert api.get("/api/v1/silos/").status_code == 200

    Token.objects.filter(key=token.key).delete()
    response = api.get("/api/v1/silos/")

    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == {"detail": "Invalid token."}


def test_drf_create_token_regenerate_revokes_the_old_key(api, manager_a):
    out = io.StringIO()
    call_command("drf_create_token", "manager_a", stdout=out)
    old = Token.objects.get(user=manager_a).key
    assert old in out.getvalue()
    api.credentials(HTTP_AUTHORIZATION=f"Token {old}")
    assert api.get("/api/v1/kpis/").status_code == 200

    call_command("drf_create_token", "-r", "manager_a", stdout=out)
    new = Token.objects.get(user=manager_a).key
    refused = api.get("/api/v1/kpis/")
    api.credentials(HTTP_AUTHORIZATION=f"Token {new}")
    accepted = api.get("/api/v1/kpis/")

    assert new != old
    assert refused.status_code == 401
    assert refused.json() == {"detail": "Invalid token."}
    assert accepted.status_code == 200


def test_drf_create_token_without_regenerate_keeps_the_key(manager_a):
    call_command("drf_create_token", "manager_a", stdout=io.StringIO())
    first = Token.objects.get(user=manager_a).key

    call_command("drf_create_token", "manager_a", stdout=io.StringIO())

    assert Token.objects.get(user=manager_a).key == first


@pytest.mark.parametrize("role", ["reader", "manager_a", "cco", "superuser"])
def test_a_deactivated_users_token_gets_a_json_401(api, world, role):
    user = world["users"][role]
    token = Token.objects.create(user=user)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert api.get("/api/v1/silos/").status_code == 200

    user.is_active = False
    user.save(update_fields=["is_active"])
    before = fingerprint()
    read = api.get("/api/v1/silos/")
    write = api.patch(
        "/api/v1/silos/sales/", {"description": "Still here?"}, format="json"
    )

    for response in (read, write):
        assert response.status_code == 401
        assert response.json() == {"detail": "User inactive or deleted."}
    assert fingerprint() == before


@pytest.mark.parametrize("operation", sorted(MATRIX), ids=op_id)
def test_a_revoked_superuser_token_gets_a_401_on_every_operation(world, operation):
    """The strongest token, deleted, opens nothing and changes nothing."""
    path, body, _ = MATRIX[operation]
    key = Token.objects.create(user=world["users"]["superuser"]).key
    Token.objects.filter(key=key).delete()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    before = fingerprint()

    response = api.generic(
        operation[0],
        fill(path, world["ids"]),
        data=None if body is None else json.dumps(fill(body, world["ids"])),
        content_type="application/json",
    )

    assert response.status_code == 401, response.content
    assert response.json() == {"detail": "Invalid token."}
    assert fingerprint() == before


# --- Server-controlled fields -----------------------------------------------------------


def stored_timestamps_and_ids_are_the_servers() -> None:
    """No row anywhere took the client's id, timestamp or history date."""
    for label in ("metrics", "goals", "planning", "conflicts"):
        for model in apps.get_app_config(label).get_models():
            assert not model._default_manager.filter(pk=FOREIGN_ID).exists(), model
            for field in model._meta.get_fields():
                if isinstance(field, models.DateTimeField):
                    old = model._default_manager.filter(**{f"{field.name}__year": 2000})
                    assert not old.exists(), (model, field.name)


def assert_history_by(instance: models.Model, user: Any, rows_before: int) -> None:
    """The write added exactly one history row, by ``user``, dated now."""
    history = instance.history.order_by("history_date", "history_id")
    assert history.count() == rows_before + 1
    latest = history.last()
    assert latest.history_user == user
    assert latest.history_date > timezone.now() - dt.timedelta(minutes=5)


@pytest.mark.parametrize("role", ["manager_a", "cco"])
def test_kpi_patch_ignores_id_key_silo_slug_timestamps_and_history(world, role):
    kpi = KPI.objects.get(key="sales.deals_closed")
    before = (kpi.pk, kpi.silo_id, kpi.created_at, kpi.history.count())
    api = token_client(world["users"][role])

    response = api.patch(
        "/api/v1/kpis/sales.deals_closed/",
        {
            "id": FOREIGN_ID,
            "key": "support.hijacked",
            "silo": "support",
            "slug": "hijacked",
            "created_at": OLD,
            "updated_at": OLD,
            "history": FAKE_HISTORY,
            "name": "Deals won",
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    kpi.refresh_from_db()
    assert (kpi.pk, kpi.key, kpi.silo.slug, kpi.slug, kpi.name) == (
        before[0],
        "sales.deals_closed",
        "sales",
        "deals_closed",
        "Deals won",
    )
    assert kpi.created_at == before[2]
    assert not KPI.objects.filter(key="support.hijacked").exists()
    body = response.json()
    assert (body["key"], body["silo"], body["slug"]) == (
        "sales.deals_closed",
        "sales",
        "deals_closed",
    )
    assert (
        body["created_at"]
        == api.get("/api/v1/kpis/sales.deals_closed/").json()["created_at"]
    )
    assert_history_by(kpi, world["users"][role], before[3])
    stored_timestamps_and_ids_are_the_servers()


def test_kpi_create_derives_its_key_and_ignores_id_and_timestamps(world):
    api = token_client(world["users"]["manager_a"])

    response = api.post(
        "/api/v1/kpis/",
        {
            **MATRIX[("POST", "/api/v1/kpis/")][1],
            "id": FOREIGN_ID,
            "key": "support.hijacked",
            "created_at": OLD,
            "updated_at": OLD,
            "history": FAKE_HISTORY,
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    kpi = KPI.objects.get(slug="win_rate")
    assert (kpi.key, kpi.silo.slug) == ("sales.win_rate", "sales")
    assert response.json()["key"] == "sales.win_rate"
    assert not KPI.objects.filter(key="support.hijacked").exists()
    assert_history_by(kpi, world["users"]["manager_a"], 0)
    stored_timestamps_and_ids_are_the_servers()


def test_silo_writes_ignore_id_timestamps_and_history(world):
    api = token_client(world["users"]["cco"])
    silo = Silo.objects.get(slug="sales")
    created, rows = silo.created_at, silo.history.count()
    extra = {
        "id": FOREIGN_ID,
        "created_at": OLD,
        "updated_at": OLD,
        "history": FAKE_HISTORY,
    }

    patched = api.patch(
        "/api/v1/silos/sales/", {"description": "Closes deals.", **extra}, format="json"
    )
    posted = api.post(
        "/api/v1/silos/", {"slug": "legal", "name": "Legal", **extra}, format="json"
    )

    assert (patched.status_code, posted.status_code) == (200, 201)
    silo.refresh_from_db()
    assert (silo.description, silo.created_at) == ("Closes deals.", created)
    assert patched.json()["created_at"] != OLD
    assert_history_by(silo, world["users"]["cco"], rows)
    legal = Silo.objects.get(slug="legal")
    assert legal.pk != FOREIGN_ID
    assert_history_by(legal, world["users"]["cco"], 0)
    stored_timestamps_and_ids_are_the_servers()


def test_link_create_takes_silos_and_declarer_from_the_server(world):
    api = token_client(world["users"]["cco"])

    response = api.post(
        "/api/v1/links/",
        {
            **MATRIX[("POST", "/api/v1/links/")][1],
            "id": FOREIGN_ID,
            "leader_silo": "empty",
            "affected_silo": "empty",
            "declared_by": "manager_b",
            "created_at": OLD,
            "updated_at": OLD,
            "history": FAKE_HISTORY,
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    link = ImpactLink.objects.get(leader_kpi__key="sales.unused")
    assert (
        link.leader_silo.slug,
        link.affected_silo.slug,
        link.declared_by,
    ) == ("sales", "support", world["users"]["cco"])
    body = response.json()
    assert (body["id"], body["leader_silo"], body["affected_silo"]) == (
        link.pk,
        "sales",
        "support",
    )
    assert body["declared_by"] == "cco"
    assert_history_by(link, world["users"]["cco"], 0)
    stored_timestamps_and_ids_are_the_servers()


def test_link_patch_ignores_silos_declarer_and_id(world):
    link = ImpactLink.objects.get(pk=world["ids"]["link"])
    rows = link.history.count()
    api = token_client(world["users"]["cco"])

    response = api.patch(
        f"/api/v1/links/{link.pk}/",
        {
            "lag": 2,
            "id": FOREIGN_ID,
            "leader_silo": "empty",
            "affected_silo": "empty",
            "declared_by": "manager_b",
            "created_at": OLD,
            "updated_at": OLD,
            "history": FAKE_HISTORY,
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    link.refresh_from_db()
    assert (
        link.lag,
        link.leader_silo.slug,
        link.affected_silo.slug,
        link.declared_by,
    ) == (2, "sales", "support", None)
    body = response.json()
    assert (body["id"], body["leader_silo"], body["affected_silo"]) == (
        link.pk,
        "sales",
        "support",
    )
    assert body["declared_by"] is None
    assert_history_by(link, world["users"]["cco"], rows)
    stored_timestamps_and_ids_are_the_servers()


CYCLE_EXTRAS = {
    "id": FOREIGN_ID,
    "phase": "committed",
    "allocated": "5.00",
    "readiness_score": 11,
    "sign_offs": [{"silo": "sales", "user": "manager_a", "note": "n"}],
    "priorities": [{"rank": 1, "title": "Injected", "accountable_silo": "sales"}],
    "created_at": OLD,
    "updated_at": OLD,
    "history": FAKE_HISTORY,
}


def test_cycle_create_starts_in_draft_whatever_the_body_says(world):
    api = token_client(world["users"]["cco"])

    response = api.post(
        "/api/v1/cycles/",
        {**MATRIX[("POST", "/api/v1/cycles/")][1], **CYCLE_EXTRAS},
        format="json",
    )

    assert response.status_code == 201, response.content
    cycle = Cycle.objects.get(name="FY2029")
    assert cycle.phase == "draft"
    assert not cycle.sign_offs.exists()
    assert not cycle.priorities.exists()
    body = response.json()
    assert (body["id"], body["phase"], body["sign_offs"], body["priorities"]) == (
        cycle.pk,
        "draft",
        [],
        [],
    )
    assert (body["allocated"], body["readiness_score"]) == ("0.00", 0.0)
    assert_history_by(cycle, world["users"]["cco"], 0)
    stored_timestamps_and_ids_are_the_servers()


def test_cycle_patch_cannot_move_the_phase_or_add_sign_offs(world):
    cycle = Cycle.objects.get(pk=world["ids"]["cycle"])
    rows = cycle.history.count()
    api = token_client(world["users"]["cco"])

    response = api.patch(
        f"/api/v1/cycles/{cycle.pk}/",
        {"budget": "10.00", **CYCLE_EXTRAS, "phase": "closed"},
        format="json",
    )

    assert response.status_code == 200, response.content
    cycle.refresh_from_db()
    assert (cycle.phase, str(cycle.budget)) == ("proposing", "10.00")
    assert not cycle.sign_offs.exists()
    assert not cycle.priorities.exists()
    assert response.json()["phase"] == "proposing"
    assert_history_by(cycle, world["users"]["cco"], rows)
    stored_timestamps_and_ids_are_the_servers()


def test_phase_move_changes_only_the_phase(world):
    cycle = Cycle.objects.get(pk=world["ids"]["empty_cycle"])
    before = (cycle.name, cycle.budget, cycle.start_date)
    api = token_client(world["users"]["cco"])

    response = api.post(
        f"/api/v1/cycles/{cycle.pk}/phase/",
        {
            "phase": "aligning",
            "id": FOREIGN_ID,
            "name": "Hijacked",
            "budget": "1.00",
            "start_date": "2001-01-01",
            "history": FAKE_HISTORY,
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    cycle.refresh_from_db()
    assert cycle.phase == "aligning"
    assert (cycle.name, cycle.budget, cycle.start_date) == before
    assert response.json()["name"] == before[0]
    stored_timestamps_and_ids_are_the_servers()


def test_readiness_answers_record_the_caller_not_the_body(world):
    cycle = Cycle.objects.get(pk=world["ids"]["cycle"])
    api = token_client(world["users"]["cco"])

    response = api.patch(
        f"/api/v1/cycles/{cycle.pk}/readiness/",
        {
            "score": 11,
            "out_of": 99,
            "answers": [
                {
                    "number": 1,
                    "answer": "yes",
                    "note": "The CCO.",
                    "statement": "Injected statement",
                    "answered_by": "manager_b",
                }
            ],
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    answer = ReadinessAnswer.objects.get(cycle=cycle, number=1)
    assert (answer.answer, answer.answered_by) == ("yes", world["users"]["cco"])
    body = response.json()
    assert (body["score"], body["out_of"]) == (1.0, len(readiness.STATEMENTS))
    assert body["answers"][0]["statement"] == readiness.STATEMENTS[0]
    assert body["answers"][0]["answered_by"] == "cco"


def test_sign_off_records_the_caller_and_the_time(world):
    cycle = Cycle.objects.get(pk=world["ids"]["aligning"])
    api = token_client(world["users"]["manager_a"])

    response = api.post(
        f"/api/v1/cycles/{cycle.pk}/sign-offs/",
        {
            "silo": "sales",
            "note": "Sales agrees.",
            "user": "manager_b",
            "signed_at": OLD,
            "cycle": world["ids"]["signed"],
            "history": FAKE_HISTORY,
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    signed = SignOff.objects.get(cycle=cycle)
    assert (signed.silo.slug, signed.user) == ("sales", world["users"]["manager_a"])
    body = response.json()
    assert (body["user"], body["silo"]) == ("manager_a", "sales")
    assert body["signed_at"] != OLD
    assert SignOff.objects.filter(cycle_id=world["ids"]["signed"]).count() == 1
    stored_timestamps_and_ids_are_the_servers()


@pytest.mark.parametrize("role", ["manager_a", "cco"])
def test_goal_writes_ignore_id_silo_and_timestamps(world, role):
    goal = Goal.objects.get(pk=world["ids"]["goal_a"])
    other = Goal.objects.get(pk=world["ids"]["goal_b"])
    rows = goal.history.count()
    api = token_client(world["users"][role])
    extra = {
        "silo": "support",
        "created_at": OLD,
        "updated_at": OLD,
        "history": FAKE_HISTORY,
    }

    patched = api.patch(
        f"/api/v1/goals/{goal.pk}/",
        {"target": 175, "id": other.pk, **extra},
        format="json",
    )
    posted = api.post(
        "/api/v1/goals/",
        {**MATRIX[("POST", "/api/v1/goals/")][1], "id": FOREIGN_ID, **extra},
        format="json",
    )

    assert (patched.status_code, posted.status_code) == (200, 201), (
        patched.content,
        posted.content,
    )
    goal.refresh_from_db()
    assert (goal.target, goal.kpi.key) == (175, "sales.deals_closed")
    assert Goal.objects.get(pk=other.pk).target == other.target
    assert (patched.json()["id"], patched.json()["silo"]) == (goal.pk, "sales")
    assert_history_by(goal, world["users"][role], rows)
    created = Goal.objects.get(kpi__key="sales.unused")
    assert (posted.json()["id"], posted.json()["silo"]) == (created.pk, "sales")
    assert_history_by(created, world["users"][role], 0)
    stored_timestamps_and_ids_are_the_servers()


PROGRESS_EXTRAS = {
    "id": FOREIGN_ID,
    "progress": 0.99,
    "progress_day": "2001-01-01",
    "contributions_with_data": 99,
    "contributions_total": 99,
    "guardrail_breached": True,
    "created_at": OLD,
    "updated_at": OLD,
    "history": FAKE_HISTORY,
}


@pytest.fixture
def snapshot(world):
    """Yesterday's roll-up of the shared goal "Growth": a quarter of the way."""
    return SharedGoalSnapshot.objects.create(
        shared_goal_id=world["ids"]["shared"],
        day=timezone.localdate() - dt.timedelta(days=1),
        progress=0.25,
        uncapped_progress=0.25,
        contributions_with_data=1,
        contributions_total=2,
        guardrail_breached=False,
        computed_at=timezone.now(),
    )


def snapshot_rows() -> list[tuple]:
    return list(
        SharedGoalSnapshot.objects.order_by("pk").values_list(
            "pk",
            "shared_goal_id",
            "day",
            "progress",
            "contributions_with_data",
            "contributions_total",
            "guardrail_breached",
        )
    )


def test_shared_goal_patch_ignores_progress_and_ids(world, snapshot):
    shared = SharedGoal.objects.get(pk=world["ids"]["shared"])
    rows, snapshots = shared.history.count(), snapshot_rows()
    api = token_client(world["users"]["cco"])

    response = api.patch(
        f"/api/v1/shared-goals/{shared.pk}/",
        {"description": "d", **PROGRESS_EXTRAS},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert snapshot_rows() == snapshots
    body = response.json()
    assert (
        body["id"],
        body["progress"],
        body["progress_day"],
        body["contributions_with_data"],
        body["guardrail_breached"],
    ) == (shared.pk, 0.25, snapshot.day.isoformat(), 1, False)
    assert body == api.get(f"/api/v1/shared-goals/{shared.pk}/").json()
    shared.refresh_from_db()
    assert shared.description == "d"
    assert_history_by(shared, world["users"]["cco"], rows)
    stored_timestamps_and_ids_are_the_servers()


def test_shared_goal_create_has_no_progress_until_a_roll_up(world, snapshot):
    api = token_client(world["users"]["cco"])
    body = fill(MATRIX[("POST", "/api/v1/shared-goals/")][1], world["ids"])
    # Each contribution's KPI and silo come from its goal.
    for row in body["contributions"]:
        row.update({"kpi": "support.csat", "silo": "empty"})
    snapshots = snapshot_rows()

    response = api.post(
        "/api/v1/shared-goals/", {**body, **PROGRESS_EXTRAS}, format="json"
    )

    assert response.status_code == 201, response.content
    assert snapshot_rows() == snapshots
    created = SharedGoal.objects.get(name="United")
    answer = response.json()
    assert answer["id"] == created.pk
    assert [
        answer["progress"],
        answer["progress_day"],
        answer["contributions_with_data"],
        answer["guardrail_breached"],
    ] == [None, None, None, None]
    assert sorted((c["kpi"], c["silo"]) for c in answer["contributions"]) == [
        ("sales.free", "sales"),
        ("support.csat", "support"),
    ]
    assert_history_by(created, world["users"]["cco"], 0)
    stored_timestamps_and_ids_are_the_servers()


def conflict_state(pk: int) -> dict[str, Any]:
    return Conflict.objects.filter(pk=pk).values().get()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/api/v1/conflicts/{conflict}/"),
        ("PUT", "/api/v1/conflicts/{conflict}/"),
        ("DELETE", "/api/v1/conflicts/{conflict}/"),
        ("POST", "/api/v1/conflicts/"),
    ],
)
def test_the_conflict_register_is_read_only(world, method, path):
    api = token_client(world["users"]["superuser"])
    before = fingerprint()

    response = api.generic(
        method,
        fill(path, world["ids"]),
        json.dumps({"status": "resolved", "severity": "low", "correlation": 0.5}),
        content_type="application/json",
    )

    assert response.status_code == 405, response.content
    assert fingerprint() == before


def test_a_transition_changes_only_the_status_note_owner_and_due_date(world):
    pk = world["ids"]["conflict"]
    before = conflict_state(pk)
    api = token_client(world["users"]["cco"])

    response = api.post(
        f"/api/v1/conflicts/{pk}/transition/",
        {
            "status": "acknowledged",
            "note": "Raised with both silo leads.",
            "owner": "manager_a",
            "due_date": "2099-12-31",
            "id": FOREIGN_ID,
            "kind": "declared",
            "severity": "low",
            "correlation": 0.5,
            "p_value": 0.9,
            "q_value": 0.9,
            "periods": 3,
            "lag": 7,
            "leader_kpi": "support.csat",
            "leader_silo": "empty",
            "affected_silo": "empty",
            "stale": True,
            "contradicted": True,
            "goal_at_risk": False,
            "declared_link": None,
            "last_run": None,
            "status_changed_at": OLD,
            "status_changed_by": "manager_b",
            "first_detected_at": OLD,
            "transitions": [{"from_status": "open", "to_status": "resolved"}],
            "history": FAKE_HISTORY,
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    after = conflict_state(pk)
    changed = {name for name in after if after[name] != before[name]}
    assert changed == {
        "status",
        "note",
        "owner_id",
        "due_date",
        "status_changed_at",
        "status_changed_by_id",
        "updated_at",
    }
    assert (after["status"], after["status_changed_by_id"]) == (
        "acknowledged",
        world["users"]["cco"].pk,
    )
    body = response.json()
    assert (body["severity"], body["correlation"], body["kind"]) == (
        "high",
        -0.71,
        "observed",
    )
    assert body["status_changed_by"] == "cco"
    assert [(t["from_status"], t["to_status"]) for t in body["transitions"]] == [
        ("open", "acknowledged")
    ]
    stored_timestamps_and_ids_are_the_servers()


def test_a_detection_run_post_takes_only_its_parameters(world):
    api = token_client(world["users"]["cco"])
    known = set(DetectionRun.objects.values_list("pk", flat=True))

    response = api.post(
        "/api/v1/detection-runs/",
        {
            "max_lag": 2,
            "id": FOREIGN_ID,
            "status": "succeeded",
            "trigger": "schedule",
            "requested_by": "manager_b",
            "kpis": 99,
            "measurements": 99,
            "blocks": 99,
            "tests": 99,
            "conflicts_found": 99,
            "synergies_found": 99,
            "contradicted_links": 99,
            "new_conflicts": 99,
            "reopened": 99,
            "marked_stale": 99,
            "synergies": [{"leader_kpi": "sales.deals_closed"}],
            "error": "Injected.",
            "created_at": OLD,
            "started_at": OLD,
            "finished_at": OLD,
            "duration_seconds": 1.5,
        },
        format="json",
    )

    assert response.status_code == 202, response.content
    (run,) = DetectionRun.objects.exclude(pk__in=known)
    # The run waits for its worker (enqueued on commit, which a test never reaches).
    assert (run.status, run.trigger, run.requested_by, run.max_lag) == (
        "pending",
        "api",
        world["users"]["cco"],
        2,
    )
    counts = [
        run.kpis,
        run.measurements,
        run.blocks,
        run.tests,
        run.conflicts_found,
        run.synergies_found,
        run.contradicted_links,
        run.new_conflicts,
        run.reopened,
        run.marked_stale,
    ]
    assert counts == [0] * 10
    assert (run.synergies, run.error) == ([], "")
    assert (run.started_at, run.finished_at, run.duration_seconds) == (None, None, None)
    body = response.json()
    assert (body["id"], body["status"], body["trigger"], body["requested_by"]) == (
        run.pk,
        "pending",
        "api",
        "cco",
    )
    assert body == api.get(f"/api/v1/detection-runs/{run.pk}/").json()
    stored_timestamps_and_ids_are_the_servers()


@pytest.mark.parametrize(
    "body",
    [
        {
            "measurements": [
                {
                    "kpi": "sales.deals_closed",
                    "period": "2024-02-01",
                    "value": 12.5,
                    "created_at": OLD,
                    "updated_at": OLD,
                }
            ]
        },
        {
            "measurements": [
                {"kpi": "sales.deals_closed", "period": "2024-02-01", "value": 1}
            ],
            "history": FAKE_HISTORY,
        },
    ],
    ids=["row timestamps", "history"],
)
def test_bulk_measurements_refuse_server_fields_with_a_400(world, body):
    api = token_client(world["users"]["manager_a"])
    before = fingerprint()

    response = api.post("/api/v1/measurements/bulk/", body, format="json")

    assert response.status_code == 400, response.content
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == (
        {"history"} if "history" in body else {"created_at", "updated_at"}
    )
    assert fingerprint() == before


@pytest.mark.parametrize("operation", WRITES_WITH_BODY, ids=op_id)
def test_no_write_stores_a_client_id_timestamp_or_history(world, operation):
    """Every write of the matrix, with ids, timestamps and history added to its body:
    ignored (the matrix's status) or, for the bulk upload, refused with a 400."""
    path, body, statuses = MATRIX[operation]
    role = succeeding_roles(operation)[0]
    api = token_client(world["users"][role])
    extra = {
        "id": FOREIGN_ID,
        "created_at": OLD,
        "updated_at": OLD,
        "history": FAKE_HISTORY,
    }
    before = fingerprint()

    response = api.generic(
        operation[0],
        fill(path, world["ids"]),
        json.dumps({**fill(body, world["ids"]), **extra}),
        content_type="application/json",
    )

    if operation == ("POST", "/api/v1/measurements/bulk/"):
        assert response.status_code == 400, response.content
        assert fingerprint() == before
    else:
        assert response.status_code == statuses[ROLES.index(role)], response.content
        assert response.json().get("id") != FOREIGN_ID
    stored_timestamps_and_ids_are_the_servers()


# --- NUL characters and lone surrogates -------------------------------------------------

#: Text fields each write accepts beyond the matrix's body, so that every string input
#: is tried (values chosen so that the extended body still succeeds; see the control).
EXTRA_TEXT: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/silos/"): {"description": "Contracts."},
    ("PATCH", "/api/v1/silos/{slug}/"): {"name": "Sales and deals"},
    ("POST", "/api/v1/kpis/"): {"description": "Won over offered."},
    ("PATCH", "/api/v1/kpis/{key}/"): {
        "unit": "deals",
        "description": "d",
        "direction": "higher_is_better",
        "frequency": "monthly",
        "aggregation": "sum",
    },
    ("PATCH", "/api/v1/links/{id}/"): {
        "leader_kpi": "sales.deals_closed",
        "affected_kpi": "support.csat",
        "effect": "hurts",
        "rationale": "r",
    },
    ("POST", "/api/v1/links/"): {},
    ("POST", "/api/v1/goals/"): {
        "name": "Win more",
        "notes": "n",
        "owner": "manager_a",
    },
    ("PATCH", "/api/v1/goals/{id}/"): {
        "cycle": "FY2027",
        "kpi": "sales.deals_closed",
        "name": "n",
        "notes": "n",
        "owner": "manager_a",
        "period_start": "2027-01-01",
        "period_end": "2027-12-01",
    },
    ("POST", "/api/v1/shared-goals/"): {
        "description": "d",
        "owner": "cco",
        "guardrails": [
            {"kpi": "support.csat", "baseline": 1, "tolerance": 1, "note": "n"}
        ],
    },
    ("PATCH", "/api/v1/shared-goals/{id}/"): {
        "cycle": "FY2027",
        "name": "Growth again",
        "owner": "cco",
    },
    ("POST", "/api/v1/cycles/"): {
        "currency": "USD",
        "budget": "10.00",
        "silos": ["sales"],
    },
    ("PATCH", "/api/v1/cycles/{id}/"): {
        "name": "FY2027b",
        "currency": "USD",
        "start_date": "2027-01-01",
        "end_date": "2027-12-31",
        "silos": ["sales"],
    },
    ("POST", "/api/v1/cycles/{id}/phase/"): {"reason": "Ready."},
}


def text_body(operation: tuple[str, str], ids: dict[str, int]) -> Any:
    """The matrix's body of ``operation`` with every extra text field, filled in."""
    body = fill(MATRIX[operation][1], ids)
    if operation == ("POST", "/api/v1/measurements/bulk/"):
        body["measurements"][0]["source"] = "crm"
    return {**body, **fill(EXTRA_TEXT.get(operation, {}), ids)}


def string_leaves(value: Any, at: tuple = ()) -> list[tuple]:
    """Paths (keys and list indexes) to every string in ``value``."""
    if isinstance(value, str):
        return [at]
    if isinstance(value, dict):
        return [
            p for key, item in value.items() for p in string_leaves(item, (*at, key))
        ]
    if isinstance(value, list):
        return [
            p for i, item in enumerate(value) for p in string_leaves(item, (*at, i))
        ]
    return []


def with_leaf(value: Any, at: tuple, new: Any) -> Any:
    if not at:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[at[0]] = with_leaf(value[at[0]], at[1:], new)
    return copy


# The world's ids only matter for shape: any id fills a placeholder the same way.
_SHAPE_IDS = dict.fromkeys(
    [
        "goal_a",
        "goal_b",
        "goal_free",
        "shared",
        "cycle",
        "empty_cycle",
        "link",
        "run",
        "aligning",
        "signed",
        "conflict",
    ],
    1,
)
TEXT_CASES = [
    pytest.param(
        op,
        leaf,
        role,
        id=f"{op_id(op)} {'.'.join(map(str, leaf))} {role}",
    )
    for op in WRITES_WITH_BODY
    for leaf in string_leaves(text_body(op, _SHAPE_IDS))
    for role in succeeding_roles(op)
]
BAD_TEXT = {
    "NUL": json.dumps("a\x00b"),
    # A lone surrogate is legal JSON text but not Unicode; json.dumps would escape the
    # backslash, so the raw text goes into the body as it is.
    "surrogate": '"\\ud800"',
}
MARKER = "@@bad-text@@"


CONTROL_CASES = sorted(
    {(op, role) for op, _, role in (case.values for case in TEXT_CASES)}
)


@pytest.mark.parametrize(
    ("operation", "role"),
    CONTROL_CASES,
    ids=[f"{op_id(o)} {r}" for o, r in CONTROL_CASES],
)
def test_the_text_bodies_succeed_as_they_are(world, operation, role):
    """The control: each extended body is accepted, so a 400 below is the bad text's."""
    api = token_client(world["users"][role])

    response = api.generic(
        operation[0],
        fill(MATRIX[operation][0], world["ids"]),
        json.dumps(text_body(operation, world["ids"])),
        content_type="application/json",
    )

    assert response.status_code == MATRIX[operation][2][ROLES.index(role)], (
        response.content
    )


@pytest.mark.parametrize("bad", sorted(BAD_TEXT))
@pytest.mark.parametrize(("operation", "leaf", "role"), TEXT_CASES)
def test_text_that_cannot_be_stored_is_a_400(world, operation, leaf, role, bad):
    body = with_leaf(text_body(operation, world["ids"]), leaf, MARKER)
    raw = json.dumps(body).replace(json.dumps(MARKER), BAD_TEXT[bad])
    assert raw.count(BAD_TEXT[bad]) == 1
    api = token_client(world["users"][role])
    before = fingerprint()

    response = api.generic(
        operation[0],
        fill(MATRIX[operation][0], world["ids"]),
        raw,
        content_type="application/json",
    )

    assert response.status_code == 400, response.content
    answer = response.json()
    if operation == ("POST", "/api/v1/measurements/bulk/"):
        assert [(e["index"], e["field"]) for e in answer["errors"]] == [(0, leaf[-1])]
    else:
        assert list(answer) == [leaf[0]], answer
    assert fingerprint() == before


def list_filters() -> list[tuple[str, str]]:
    """(path, query parameter) of every list operation (a GET without path parameters)."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted(
        (path, parameter["name"])
        for path, operations in schema["paths"].items()
        if "{" not in path and "get" in operations
        for parameter in operations["get"].get("parameters", [])
        if parameter["in"] == "query"
    )


BAD_QUERY = {"NUL": "a%00b", "surrogate": "%ED%A0%80", "both": "%00%ED%A0%80"}


@pytest.mark.parametrize("bad", sorted(BAD_QUERY))
def test_list_filters_with_nul_or_surrogates_never_fail(world, bad):
    """Every query parameter of every list, alone and with CSV for the figures."""
    reader = token_client(world["users"]["reader"])
    # Channels and deliveries are the CCO team's alone.
    cco = token_client(world["users"]["cco"])
    failures = []
    for path, name in list_filters():
        api = cco if path.startswith("/api/v1/notification-") else reader
        expected = {404} if name == "format" else {200, 400}
        queries = [f"{name}={BAD_QUERY[bad]}"]
        if path == "/api/v1/figures/" and name != "format":
            queries.append(f"format=csv&{name}={BAD_QUERY[bad]}")
        for query in queries:
            response = api.get(f"{path}?{query}")
            if response.status_code not in expected or (
                response.get("Content-Type", "").startswith("application/json")
                and not isinstance(response.json(), dict)
            ):
                failures.append((path, query, response.status_code))
            if response.status_code == 200 and query.startswith("format=csv"):
                b"".join(response.streaming_content)  # the stream must finish too
    assert failures == []


PATH_OPERATIONS = sorted(op for op in MATRIX if "{" in op[1])


@pytest.mark.parametrize("bad", ["a%00b", "%ED%A0%80"])
@pytest.mark.parametrize("operation", PATH_OPERATIONS, ids=op_id)
def test_path_parameters_with_nul_or_surrogates_are_a_404(world, operation, bad):
    """Every path parameter of every operation, replaced by bad text: not found."""
    path, body, _ = MATRIX[operation]
    template = operation[1]
    api = token_client(world["users"]["superuser"])
    before = fingerprint()
    failures = []
    # Each path parameter in turn; the others keep the matrix's values.
    segments = template.strip("/").split("/")
    real = fill(path, world["ids"]).strip("/").split("/")
    for index, segment in enumerate(segments):
        if not segment.startswith("{"):
            continue
        url = "/" + "/".join([*real[:index], bad, *real[index + 1 :]]) + "/"
        response = api.generic(
            operation[0],
            url,
            None if body is None else json.dumps(fill(body, world["ids"])),
            content_type="application/json",
        )
        if response.status_code != 404 or list(response.json()) != ["detail"]:
            failures.append((url, response.status_code, response.content[:200]))
    assert failures == []
    assert fingerprint() == before
