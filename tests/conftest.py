"""Shared fixtures: two silos with one manager each, the CCO team and a BI reader."""

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
