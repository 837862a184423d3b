"""The authorization matrix: every operation of the OpenAPI schema for every role.

Each (operation, role) pair is executed against a fresh database with a realistic
request, and must answer the status the matrix states. An operation in the schema that
the matrix lacks fails the suite, so a new endpoint cannot ship without deciding who may
call it. A refused request (4xx) must leave the database exactly as it was.
"""

import datetime as dt
import hashlib
import json

import pytest
from django.apps import apps
from django.db import connection
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from goals.models import RollupRun
from notifications.models import Channel, Delivery, Event, Subscription
from planning.models import SignOff
from tests import factories

ROLES = ["anonymous", "reader", "manager_a", "manager_b", "cco", "superuser"]

# Expected status per role, in ROLES order. manager_a manages silo A ("sales"), whose
# objects the requests name; manager_b manages silo B ("support").
READ = (401, 200, 200, 200, 200, 200)
CCO_WRITE = {
    201: (401, 403, 403, 403, 201, 201),
    200: (401, 403, 403, 403, 200, 200),
    204: (401, 403, 403, 403, 204, 204),
}
SILO_A_CREATE = (401, 403, 201, 403, 201, 201)
# Notification channels and deliveries: the CCO team alone, reads included.
CCO_READ = (401, 403, 403, 403, 200, 200)
# manager_b's own subscription: nobody else finds it.
OWN_B = {200: (401, 403, 404, 200, 404, 404), 204: (401, 403, 404, 204, 404, 404)}
SILO_A_UPDATE = (401, 403, 200, 404, 200, 200)
SILO_A_DELETE = (401, 403, 204, 404, 204, 204)

# (method, path) -> (path used, JSON body or None, expected statuses by role)
MATRIX = {
    ("GET", "/api/v1/"): ("/api/v1/", None, READ),
    ("GET", "/api/v1/silos/"): ("/api/v1/silos/", None, READ),
    ("POST", "/api/v1/silos/"): (
        "/api/v1/silos/",
        {"slug": "legal", "name": "Legal"},
        CCO_WRITE[201],
    ),
    ("GET", "/api/v1/silos/{slug}/"): ("/api/v1/silos/sales/", None, READ),
    ("PATCH", "/api/v1/silos/{slug}/"): (
        "/api/v1/silos/sales/",
        {"description": "Closes deals."},
        CCO_WRITE[200],
    ),
    ("DELETE", "/api/v1/silos/{slug}/"): ("/api/v1/silos/empty/", None, CCO_WRITE[204]),
    ("GET", "/api/v1/kpis/"): ("/api/v1/kpis/", None, READ),
    ("POST", "/api/v1/kpis/"): (
        "/api/v1/kpis/",
        {
            "silo": "sales",
            "slug": "win_rate",
            "name": "Win rate",
            "unit": "%",
            "direction": "higher_is_better",
            "frequency": "monthly",
            "aggregation": "mean",
        },
        SILO_A_CREATE,
    ),
    ("GET", "/api/v1/kpis/{key}/"): ("/api/v1/kpis/sales.deals_closed/", None, READ),
    ("PATCH", "/api/v1/kpis/{key}/"): (
        "/api/v1/kpis/sales.deals_closed/",
        {"name": "Deals won"},
        SILO_A_UPDATE,
    ),
    ("DELETE", "/api/v1/kpis/{key}/"): (
        "/api/v1/kpis/sales.unused/",
        None,
        SILO_A_DELETE,
    ),
    ("GET", "/api/v1/links/"): ("/api/v1/links/", None, READ),
    ("POST", "/api/v1/links/"): (
        "/api/v1/links/",
        {
            "leader_kpi": "sales.unused",
            "affected_kpi": "support.csat",
            "effect": "helps",
            "lag": 0,
            "rationale": "r",
        },
        CCO_WRITE[201],
    ),
    ("GET", "/api/v1/links/{id}/"): ("/api/v1/links/{link}/", None, READ),
    ("PATCH", "/api/v1/links/{id}/"): (
        "/api/v1/links/{link}/",
        {"lag": 2},
        CCO_WRITE[200],
    ),
    ("DELETE", "/api/v1/links/{id}/"): ("/api/v1/links/{link}/", None, CCO_WRITE[204]),
    ("GET", "/api/v1/measurements/"): ("/api/v1/measurements/", None, READ),
    ("GET", "/api/v1/figures/"): ("/api/v1/figures/", None, READ),
    # Bulk rows of another silo are row errors (400 naming the row), by the contract.
    ("POST", "/api/v1/measurements/bulk/"): (
        "/api/v1/measurements/bulk/",
        {
            "measurements": [
                {"kpi": "sales.deals_closed", "period": "2024-02-01", "value": 12.5}
            ]
        },
        (401, 403, 200, 400, 200, 200),
    ),
    ("GET", "/api/v1/goals/"): ("/api/v1/goals/", None, READ),
    ("POST", "/api/v1/goals/"): (
        "/api/v1/goals/",
        {
            "cycle": "FY2027",
            "kpi": "sales.unused",
            "baseline": 1,
            "target": 2,
            "period_start": "2027-01-01",
            "period_end": "2027-06-01",
        },
        SILO_A_CREATE,
    ),
    ("GET", "/api/v1/goals/{id}/"): ("/api/v1/goals/{goal_a}/", None, READ),
    ("PATCH", "/api/v1/goals/{id}/"): (
        "/api/v1/goals/{goal_a}/",
        {"target": 175},
        SILO_A_UPDATE,
    ),
    ("DELETE", "/api/v1/goals/{id}/"): (
        "/api/v1/goals/{goal_free}/",
        None,
        SILO_A_DELETE,
    ),
    ("GET", "/api/v1/shared-goals/"): ("/api/v1/shared-goals/", None, READ),
    ("POST", "/api/v1/shared-goals/"): (
        "/api/v1/shared-goals/",
        {
            "cycle": "FY2027",
            "name": "United",
            "contributions": [
                {"goal": "{goal_free}", "weight": 1},
                {"goal": "{goal_b}", "weight": 1},
            ],
        },
        CCO_WRITE[201],
    ),
    ("GET", "/api/v1/shared-goals/{id}/"): (
        "/api/v1/shared-goals/{shared}/",
        None,
        READ,
    ),
    ("PATCH", "/api/v1/shared-goals/{id}/"): (
        "/api/v1/shared-goals/{shared}/",
        {"description": "d"},
        CCO_WRITE[200],
    ),
    ("DELETE", "/api/v1/shared-goals/{id}/"): (
        "/api/v1/shared-goals/{shared}/",
        None,
        CCO_WRITE[204],
    ),
    ("GET", "/api/v1/cycles/"): ("/api/v1/cycles/", None, READ),
    ("POST", "/api/v1/cycles/"): (
        "/api/v1/cycles/",
        {"name": "FY2029", "start_date": "2029-01-01", "end_date": "2029-12-31"},
        CCO_WRITE[201],
    ),
    ("GET", "/api/v1/cycles/{id}/"): ("/api/v1/cycles/{cycle}/", None, READ),
    ("PATCH", "/api/v1/cycles/{id}/"): (
        "/api/v1/cycles/{cycle}/",
        {"budget": "10.00"},
        CCO_WRITE[200],
    ),
    ("DELETE", "/api/v1/cycles/{id}/"): (
        "/api/v1/cycles/{empty_cycle}/",
        None,
        CCO_WRITE[204],
    ),
    ("GET", "/api/v1/shared-goals/{id}/progress/"): (
        "/api/v1/shared-goals/{shared}/progress/",
        None,
        READ,
    ),
    ("POST", "/api/v1/cycles/{id}/phase/"): (
        "/api/v1/cycles/{empty_cycle}/phase/",
        {"phase": "aligning"},
        CCO_WRITE[200],
    ),
    ("GET", "/api/v1/cycles/{id}/commit-check/"): (
        "/api/v1/cycles/{aligning}/commit-check/",
        None,
        READ,
    ),
    ("GET", "/api/v1/cycles/{id}/consistency/"): (
        "/api/v1/cycles/{aligning}/consistency/",
        None,
        READ,
    ),
    # Signing is personal: only a manager of the silo, never the CCO role alone.
    ("POST", "/api/v1/cycles/{id}/sign-offs/"): (
        "/api/v1/cycles/{aligning}/sign-offs/",
        {"silo": "sales", "note": "Sales agrees."},
        (401, 403, 201, 403, 403, 403),
    ),
    ("DELETE", "/api/v1/cycles/{id}/sign-offs/{silo}/"): (
        "/api/v1/cycles/{signed}/sign-offs/sales/",
        None,
        (401, 403, 204, 403, 403, 403),
    ),
    ("GET", "/api/v1/cycles/{id}/readiness/"): (
        "/api/v1/cycles/{cycle}/readiness/",
        None,
        READ,
    ),
    ("PATCH", "/api/v1/cycles/{id}/readiness/"): (
        "/api/v1/cycles/{cycle}/readiness/",
        {"answers": [{"number": 1, "answer": "yes", "note": "The CCO."}]},
        CCO_WRITE[200],
    ),
    ("GET", "/api/v1/conflicts/"): ("/api/v1/conflicts/", None, READ),
    ("GET", "/api/v1/conflicts/{id}/"): ("/api/v1/conflicts/{conflict}/", None, READ),
    ("POST", "/api/v1/conflicts/{id}/transition/"): (
        "/api/v1/conflicts/{conflict}/transition/",
        {
            "status": "acknowledged",
            "note": "Raised with both silo leads.",
            "owner": "manager_a",
            "due_date": "2099-12-31",
        },
        CCO_WRITE[200],
    ),
    # Comments: the CCO team and the managers of the conflict's two silos write, BI
    # readers read. {conflict} is sales -> support (both managers' silos);
    # {conflict_finance} is sales -> finance, none of manager_b's silos.
    ("GET", "/api/v1/conflicts/{id}/comments/"): (
        "/api/v1/conflicts/{conflict_finance}/comments/",
        None,
        (401, 200, 200, 404, 200, 200),
    ),
    ("POST", "/api/v1/conflicts/{id}/comments/"): (
        "/api/v1/conflicts/{conflict_finance}/comments/",
        {"body": "Finance sees the margin fall too."},
        (401, 403, 201, 404, 201, 201),
    ),
    ("GET", "/api/v1/detection-runs/"): ("/api/v1/detection-runs/", None, READ),
    ("POST", "/api/v1/detection-runs/"): (
        "/api/v1/detection-runs/",
        {"max_lag": 2},
        (401, 403, 403, 403, 202, 202),
    ),
    ("GET", "/api/v1/detection-runs/{id}/"): (
        "/api/v1/detection-runs/{run}/",
        None,
        READ,
    ),
    ("GET", "/api/v1/notification-channels/"): (
        "/api/v1/notification-channels/",
        None,
        CCO_READ,
    ),
    ("POST", "/api/v1/notification-channels/"): (
        "/api/v1/notification-channels/",
        {
            "name": "Ops Slack",
            "kind": "slack",
            "url": "https://hooks.slack.com/services/T0/B0/x",
            "events": ["conflict.high"],
        },
        CCO_WRITE[201],
    ),
    ("GET", "/api/v1/notification-channels/{id}/"): (
        "/api/v1/notification-channels/{channel}/",
        None,
        CCO_READ,
    ),
    ("PATCH", "/api/v1/notification-channels/{id}/"): (
        "/api/v1/notification-channels/{channel}/",
        {"events": ["digest"]},
        CCO_WRITE[200],
    ),
    ("DELETE", "/api/v1/notification-channels/{id}/"): (
        "/api/v1/notification-channels/{channel}/",
        None,
        CCO_WRITE[204],
    ),
    ("POST", "/api/v1/notification-channels/{id}/test/"): (
        "/api/v1/notification-channels/{channel}/test/",
        None,
        (401, 403, 403, 403, 202, 202),
    ),
    ("GET", "/api/v1/notification-deliveries/"): (
        "/api/v1/notification-deliveries/",
        None,
        CCO_READ,
    ),
    ("GET", "/api/v1/notification-deliveries/{id}/"): (
        "/api/v1/notification-deliveries/{delivery}/",
        None,
        CCO_READ,
    ),
    ("GET", "/api/v1/notification-subscriptions/"): (
        "/api/v1/notification-subscriptions/",
        None,
        (401, 403, 200, 200, 200, 200),
    ),
    ("POST", "/api/v1/notification-subscriptions/"): (
        "/api/v1/notification-subscriptions/",
        {"events": ["conflict.new"]},
        # manager_b has one already.
        (401, 403, 201, 400, 201, 201),
    ),
    ("GET", "/api/v1/notification-subscriptions/{id}/"): (
        "/api/v1/notification-subscriptions/{subscription}/",
        None,
        OWN_B[200],
    ),
    ("PATCH", "/api/v1/notification-subscriptions/{id}/"): (
        "/api/v1/notification-subscriptions/{subscription}/",
        {"events": ["digest"]},
        OWN_B[200],
    ),
    ("DELETE", "/api/v1/notification-subscriptions/{id}/"): (
        "/api/v1/notification-subscriptions/{subscription}/",
        None,
        OWN_B[204],
    ),
    ("GET", "/api/v1/rollup-runs/"): ("/api/v1/rollup-runs/", None, READ),
    ("GET", "/api/v1/rollup-runs/{id}/"): (
        "/api/v1/rollup-runs/{rollup_run}/",
        None,
        READ,
    ),
}


def schema_operations() -> set[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
    }


def test_the_matrix_covers_every_operation_of_the_schema():
    assert schema_operations() == set(MATRIX)


def database_fingerprint() -> str:
    """Hash every row of every table of the domain apps, their many-to-many tables
    (silo managers, cycle silos), users, groups and their members, and API tokens."""
    digest = hashlib.sha256()
    models = [
        m
        for label in (
            "metrics",
            "goals",
            "cycles",
            "planning",
            "conflicts",
            "notifications",
            "auth",
            "authtoken",
        )
        for m in apps.get_app_config(label).get_models(include_auto_created=True)
    ]
    with connection.cursor() as cursor:
        for model in sorted(models, key=lambda m: m._meta.db_table):
            table = connection.ops.quote_name(model._meta.db_table)
            cursor.execute(f"SELECT * FROM {table} ORDER BY 1")  # noqa: S608 - table names from the ORM
            digest.update(repr(cursor.fetchall()).encode())
    return digest.hexdigest()


@pytest.fixture
def world(silo_a, silo_b, manager_a, manager_b, cco, reader, superuser):
    factories.SiloFactory(slug="empty", name="Empty")
    cycle = factories.CycleFactory(name="FY2027")
    deals = factories.KPIFactory(silo=silo_a, slug="deals_closed")
    factories.KPIFactory(silo=silo_a, slug="unused")
    csat = factories.KPIFactory(silo=silo_b, slug="csat", aggregation="mean")
    factories.MeasurementFactory(kpi=deals)
    goal_a = factories.GoalFactory(cycle=cycle, kpi=deals)
    goal_b = factories.GoalFactory(cycle=cycle, kpi=csat)
    other_kpi = factories.KPIFactory(silo=silo_a, slug="free")
    goal_free = factories.GoalFactory(cycle=cycle, kpi=other_kpi)
    shared = factories.SharedGoalFactory(cycle=cycle, name="Growth")
    for goal in (goal_a, goal_b):
        factories.ContributionFactory(shared_goal=shared, goal=goal)
    empty_cycle = factories.CycleFactory(name="FY2030")
    link = factories.ImpactLinkFactory(leader_kpi=deals, affected_kpi=csat)
    aligning = factories.CycleFactory(name="FY2031", phase="aligning")
    aligning.silos.set([silo_a, silo_b])
    signed = factories.CycleFactory(name="FY2032", phase="aligning")
    signed.silos.set([silo_a])
    SignOff.objects.create(cycle=signed, silo=silo_a, user=manager_a)
    run = factories.DetectionRunFactory()
    rollup_run = RollupRun.objects.create(
        reason="command",
        status="failed",
        day=dt.date(2027, 3, 1),
        started_at=dt.datetime(2027, 3, 1, 3, tzinfo=dt.UTC),
        finished_at=dt.datetime(2027, 3, 1, 3, 0, 1, tzinfo=dt.UTC),
        error="DataError: value out of range",
    )
    conflict = factories.ConflictFactory(
        leader_kpi=deals, affected_kpi=csat, link=link, last_run=run
    )
    finance = factories.SiloFactory(slug="finance", name="Finance")
    conflict_finance = factories.ConflictFactory(
        leader_kpi=factories.KPIFactory(silo=silo_a, slug="discount"),
        affected_kpi=factories.KPIFactory(silo=finance, slug="margin"),
    )
    channel = Channel.objects.create(
        name="Ops webhook",
        kind="webhook",
        url="http://127.0.0.1:9/hook",
        secret="s" * 32,
        events=["conflict.new"],
    )
    subscription = Subscription.objects.create(user=manager_b, events=["digest"])
    event = Event.objects.create(
        name="conflict.new",
        key="conflict.new:matrix",
        occurred_at=dt.datetime(2027, 3, 1, tzinfo=dt.UTC),
        title="New conflict",
    )
    delivery = Delivery.objects.create(
        event=event, channel=channel, kind="webhook", target=channel.url
    )
    return {
        "users": {
            "manager_a": manager_a,
            "manager_b": manager_b,
            "cco": cco,
            "reader": reader,
            "superuser": superuser,
        },
        "ids": {
            "goal_a": goal_a.pk,
            "goal_b": goal_b.pk,
            "goal_free": goal_free.pk,
            "shared": shared.pk,
            "cycle": cycle.pk,
            "empty_cycle": empty_cycle.pk,
            "link": link.pk,
            "run": run.pk,
            "rollup_run": rollup_run.pk,
            "aligning": aligning.pk,
            "signed": signed.pk,
            "conflict": conflict.pk,
            "conflict_finance": conflict_finance.pk,
            "channel": channel.pk,
            "subscription": subscription.pk,
            "delivery": delivery.pk,
        },
    }


def fill(value, ids):
    if isinstance(value, str):
        for name, pk in ids.items():
            if value == f"{{{name}}}":
                return pk
            value = value.replace(f"{{{name}}}", str(pk))
        return value
    if isinstance(value, dict):
        return {key: fill(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, ids) for item in value]
    return value


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("operation", sorted(MATRIX), ids=lambda op: f"{op[0]} {op[1]}")
def test_operation_answers_each_role_as_the_matrix_says(world, operation, role):
    path, body, statuses = MATRIX[operation]
    expected = statuses[ROLES.index(role)]
    api = APIClient()
    if role != "anonymous":
        token, _ = Token.objects.get_or_create(user=world["users"][role])
        api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    before = database_fingerprint()

    response = api.generic(
        operation[0],
        fill(path, world["ids"]),
        data=None if body is None else json.dumps(fill(body, world["ids"])),
        content_type="application/json",
    )

    assert response.status_code == expected, response.content
    if expected >= 400 or operation[0] == "GET":
        assert database_fingerprint() == before


CONFLICT_OPERATIONS = sorted(
    op for op in MATRIX if op[1].startswith("/api/v1/conflicts/")
)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "operation", CONFLICT_OPERATIONS, ids=lambda op: f"{op[0]} {op[1]}"
)
def test_an_account_without_a_role_is_refused_every_conflict_operation(
    world, operation
):
    path, body, _ = MATRIX[operation]
    token = Token.objects.create(user=factories.UserFactory(username="nobody"))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    before = database_fingerprint()

    response = api.generic(
        operation[0],
        fill(path, world["ids"]),
        data=None if body is None else json.dumps(fill(body, world["ids"])),
        content_type="application/json",
    )

    assert response.status_code == 403, response.content
    assert response.json() == {
        "detail": "Your account has no ducttape role (BI readers, Silo managers, "
        "CCO team)."
    }
    assert database_fingerprint() == before
