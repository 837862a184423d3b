"""Property-based API checks (schemathesis) over every operation of the OpenAPI schema.

For each operation, generated requests are sent in-process through the WSGI app with a
BI reader's token and with a CCO team token. Every response must be a non-5xx that
conforms to the schema (status code documented, body matching its schema, headers).
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


@pytest.fixture
def tokens(silo_a, silo_b, reader, cco):
    """A small company, and the tokens of a BI reader and a CCO team member."""
    cycle = factories.CycleFactory(name="FY2027")
    deals = factories.KPIFactory(silo=silo_a, slug="deals_closed")
    csat = factories.KPIFactory(silo=silo_b, slug="csat", aggregation="mean")
    factories.MeasurementFactory(kpi=deals)
    factories.GoalFactory(cycle=cycle, kpi=deals)
    factories.ImpactLinkFactory(leader_kpi=deals, affected_kpi=csat)
    return {
        "reader": Token.objects.create(user=reader).key,
        "cco": Token.objects.create(user=cco).key,
    }


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["reader", "cco"])
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
