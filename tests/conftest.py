"""Shared fixtures: two silos with one manager each, the CCO team and a BI reader."""

import pytest
from rest_framework.test import APIClient

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
