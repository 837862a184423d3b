"""Property-based API checks (schemathesis) over every operation of the OpenAPI schema.

For each operation, generated requests are sent in-process through the WSGI app with
the token of each role that has one: a BI reader, a silo manager (manager_a, of silo
"sales"), a CCO team member and a superuser. Every response must be a non-5xx that
conforms to the schema (status code documented, body matching its schema, headers).

Size of the run: MAX_EXAMPLES = 25 generated examples per operation and role
(Hypothesis's max_examples for the fuzzing phase, derandomized: every run sends the
same requests), for all four roles, over the 46 operations of the schema: 184 test
cases. Schemathesis adds its deterministic coverage cases (boundary values of each
parameter and body field) to the 25, so the requests actually sent per operation and
role are, as measured with schemathesis 4.32.5 on this schema (the same for every
role: generation does not depend on the token):

*  26  each detail GET (11 operations) and each DELETE (7)
*  28  GET detection-runs/, GET silos/;  30  GET shared-goals/
*  34  GET cycles/, GET goals/, POST measurements/bulk/
*  37  GET links/, POST cycles/{id}/sign-offs/;  38  GET measurements/
*  43  GET figures/, POST links/;  45  GET kpis/
*  46  POST conflicts/{id}/transition/;  49  GET conflicts/, POST cycles/{id}/phase/
*  58  POST cycles/, POST silos/;  61  PATCH cycles/{id}/readiness/
*  67  PATCH links/{id}/;  70  PATCH silos/{slug}/;  73  POST shared-goals/
*  76  PATCH cycles/{id}/;  79  POST goals/;  91  PATCH shared-goals/{id}/,
   POST detection-runs/;  106  POST kpis/;  109  PATCH goals/{id}/;  136  PATCH kpis/{key}/

That is 2,118 requests per role, 8,472 in all; the file runs in about two minutes.
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode, checks

from config.wsgi import application
from tests import factories

MAX_EXAMPLES = 25

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
# Requests that follow the schema; what each must get back is checked below.
schema.config.generation.update(modes=[GenerationMode.POSITIVE])

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


@pytest.fixture(autouse=True)
def keep_the_test_transaction_open():
    """Let in-process WSGI requests share the test's connection, as Django's client does.

    Django closes connections whose autocommit differs from the settings at the end of
    each request, and a test's connection is inside a transaction.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


#: Every role that has a token; each gets MAX_EXAMPLES examples per operation.
ROLES = ["reader", "manager_a", "cco", "superuser"]


@pytest.fixture
def tokens(silo_a, silo_b, reader, manager_a, cco, superuser):
    """A small company, and a token for each role."""
    cycle = factories.CycleFactory(name="FY2027")
    deals = factories.KPIFactory(silo=silo_a, slug="deals_closed")
    csat = factories.KPIFactory(silo=silo_b, slug="csat", aggregation="mean")
    factories.MeasurementFactory(kpi=deals)
    factories.GoalFactory(cycle=cycle, kpi=deals)
    factories.ImpactLinkFactory(leader_kpi=deals, affected_kpi=csat)
    users = {
        "reader": reader,
        "manager_a": manager_a,
        "cco": cco,
        "superuser": superuser,
    }
    return {role: Token.objects.create(user=users[role]).key for role in ROLES}


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_conforms_to_its_schema(case, tokens, role):
    case.call_and_validate(
        headers={"Authorization": f"Token {tokens[role]}"}, checks=CHECKS
    )
