"""Cycles over the REST API (planning serves /api/v1/cycles/, with each cycle's
priorities, RACI, funding and sign-offs)."""

import datetime as dt

import pytest

from cycles.models import Cycle
from tests import factories
from tests.tokens import as_token

pytestmark = pytest.mark.django_db


def test_cycle_nests_priorities_raci_funding_and_sign_offs(api, silo_a, silo_b, reader):
    from planning.models import FundingAllocation, Responsibility, SignOff

    priority = factories.PriorityFactory(accountable_silo=silo_a, title="Grow", rank=1)
    priority.cycle.silos.add(silo_a, silo_b)
    Responsibility.objects.create(priority=priority, silo=silo_b, role="consulted")
    FundingAllocation.objects.create(priority=priority, silo=silo_a, amount="1500.00")
    SignOff.objects.create(cycle=priority.cycle, silo=silo_a, user=reader, note="ok")
    api.force_authenticate(reader)

    (cycle,) = api.get("/api/v1/cycles/").json()["results"]

    assert cycle["silos"] == ["sales", "support"]
    assert cycle["priorities"] == [
        {
            "id": priority.pk,
            "rank": 1,
            "title": "Grow",
            "description": "",
            "accountable_silo": "sales",
            "responsibilities": [{"silo": "support", "role": "consulted"}],
            "funding": [{"silo": "sales", "amount": "1500.00"}],
        }
    ]
    assert [(s["silo"], s["user"], s["note"]) for s in cycle["sign_offs"]] == [
        ("sales", "reader", "ok")
    ]


def test_cco_creates_a_cycle_whose_phase_starts_at_draft(api, world, cco):
    as_token(api, cco)

    response = api.post(
        "/api/v1/cycles/",
        {
            "name": "FY2028",
            "start_date": "2028-01-01",
            "end_date": "2028-12-31",
            "budget": "2500000.00",
            "currency": "EUR",
            "silos": ["sales", "support"],
            "phase": "committed",
        },
        format="json",
    )

    assert response.status_code == 201
    cycle = Cycle.objects.get(name="FY2028")
    assert (cycle.phase, sorted(cycle.silos.values_list("slug", flat=True))) == (
        "draft",
        ["sales", "support"],
    )
    assert cycle.start_date == dt.date(2028, 1, 1)
