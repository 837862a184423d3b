"""Query counts of the API's list endpoints: they must not grow with the rows."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests import factories
from tests.core.test_api import LISTS
from tests.tokens import token_for

pytestmark = pytest.mark.django_db


def grow(silo_a, silo_b, count):
    cycle = factories.CycleFactory()
    for _ in range(count):
        kpi_a = factories.KPIFactory(silo=silo_a)
        kpi_b = factories.KPIFactory(silo=silo_b)
        factories.MeasurementFactory(kpi=kpi_a)
        factories.ImpactLinkFactory(leader_kpi=kpi_a, affected_kpi=kpi_b)
        shared = factories.SharedGoalFactory(cycle=cycle)
        for kpi in (kpi_a, kpi_b):
            factories.ContributionFactory(
                shared_goal=shared, goal=factories.GoalFactory(cycle=cycle, kpi=kpi)
            )
        priority = factories.PriorityFactory(
            cycle=factories.CycleFactory(), accountable_silo=silo_a
        )
        priority.cycle.silos.add(silo_a)


@pytest.mark.parametrize("url", LISTS)
def test_list_query_count_does_not_grow_with_rows(api, silo_a, silo_b, reader, url):
    # A token loads the user afresh on each request, as in production.
    api.credentials(HTTP_AUTHORIZATION=f"Token {token_for(reader)}")
    grow(silo_a, silo_b, 2)
    with CaptureQueriesContext(connection) as few:
        assert api.get(url).status_code == 200
    grow(silo_a, silo_b, 10)
    with CaptureQueriesContext(connection) as many:
        assert api.get(url).status_code == 200

    assert len(many.captured_queries) == len(few.captured_queries)
