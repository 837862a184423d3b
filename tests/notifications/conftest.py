import pytest

from tests.notifications import receiver as receiver_module


@pytest.fixture
def receiver():
    """A loopback HTTP receiver, shut down after the test."""
    started = receiver_module.start()
    yield started
    started.server.shutdown()
    started.server.server_close()


@pytest.fixture
def other_receiver():
    started = receiver_module.start()
    yield started
    started.server.shutdown()
    started.server.server_close()
