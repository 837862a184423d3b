"""Shared fixtures: two silos with one manager each, the CCO team and a BI reader, and
the small companies the API tests of several apps read and write."""

import datetime as dt

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from rest_framework.test import APIClient

from config.celery_app import app
from tests import factories


@pytest.fixture
def silo_a():
    return factories.SiloFactory(slug="sales", name="Sales", position=20)


@pytest.fixture
def silo_b():
    return factories.SiloFactory(slug="support", name="Support", position=40)


@pytest.fixture
def manager_a(silo_a):
    return factories.silo_manager(silo_a, username="manager_a")


@pytest.fixture
def manager_b(silo_b):
    return factories.silo_manager(silo_b, username="manager_b")


@pytest.fixture
def cco():
    return factories.cco_member(username="cco")


@pytest.fixture
def reader():
    return factories.bi_reader(username="reader")


@pytest.fixture
def superuser():
    return factories.UserFactory(username="root", is_superuser=True)


@pytest.fixture
def company(silo_a, silo_b):
    """Two KPIs of two silos with three months of measurements and a declared link."""
    deals = factories.KPIFactory(silo=silo_a, slug="deals_closed", unit="deals")
    tickets = factories.KPIFactory(
        silo=silo_b, slug="tickets", direction="lower_is_better", aggregation="sum"
    )
    for month, (d, t) in enumerate([(10, 100), (12, 104), (15, 111)], start=1):
        factories.MeasurementFactory(kpi=deals, period=dt.date(2024, month, 1), value=d)
        factories.MeasurementFactory(
            kpi=tickets, period=dt.date(2024, month, 1), value=t
        )
    factories.ImpactLinkFactory(leader_kpi=deals, affected_kpi=tickets, lag=1)
    return {"deals": deals, "tickets": tickets}


@pytest.fixture
def world(silo_a, silo_b):
    """A cycle FY2027 with one goal on a KPI of each of two silos."""
    cycle = factories.CycleFactory(name="FY2027")
    deals = factories.KPIFactory(silo=silo_a, slug="deals_closed")
    csat = factories.KPIFactory(silo=silo_b, slug="csat", aggregation="mean")
    return {
        "cycle": cycle,
        "deals": deals,
        "csat": csat,
        "goal_a": factories.GoalFactory(cycle=cycle, kpi=deals),
        "goal_b": factories.GoalFactory(cycle=cycle, kpi=csat),
    }


@pytest.fixture
def api():
    """A DRF test client; tests authenticate it as the role they need."""
    return APIClient()


@pytest.fixture
def worker():
    """A real Celery worker (a thread of this process) consuming from the Redis broker
    that REDIS_URL names; eager mode is off while it runs. Tests that use it write to
    the database from the worker, so they are transactional."""
    assert settings.REDIS_URL, "the Celery tests need REDIS_URL (make test sets it)"
    app.loader.import_module("celery.contrib.testing.tasks")
    app.conf.task_always_eager = False
    try:
        with start_worker(
            app, pool="solo", perform_ping_check=True, shutdown_timeout=30
        ):
            yield
    finally:
        app.conf.task_always_eager = True
