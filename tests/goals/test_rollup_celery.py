"""The roll-up on a real Celery worker against the real Redis (no eager mode)."""

import threading
import time

import pytest
from django.core.cache import cache

from goals import rollups, tasks
from goals.models import RollupRun, SharedGoalSnapshot
from tests.goals.rollup_world import build

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture(autouse=True)
def no_pending_rollup():
    cache.delete(rollups.PENDING_KEY)
    yield
    cache.delete(rollups.PENDING_KEY)


def wait_for_runs(count: int, timeout: float = 30.0) -> list[RollupRun]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = list(RollupRun.objects.order_by("started_at"))
        if len(runs) >= count:
            return runs
        time.sleep(0.1)
    raise AssertionError(
        f"{count} roll-up runs expected, {RollupRun.objects.count()} seen"
    )


def test_the_worker_rolls_up_and_a_second_run_keeps_one_snapshot(
    worker, silo_a, silo_b
):
    build(silo_a, silo_b)

    assert tasks.rollup_shared_goals_task.delay("schedule").get(timeout=30) == "done"
    first = SharedGoalSnapshot.objects.values_list("pk", "progress").get()
    assert tasks.rollup_shared_goals_task.delay("schedule").get(timeout=30) == "done"

    assert SharedGoalSnapshot.objects.values_list("pk", "progress").get() == first
    assert first[1] == pytest.approx(1.6 / 3)
    assert RollupRun.objects.filter(status="done").count() == 2


def test_a_burst_of_uploads_causes_one_rollup(
    worker, silo_a, silo_b, manager_a, settings, api
):
    settings.ROLLUP_COALESCE_SECONDS = 2
    build(silo_a, silo_b)
    api.force_authenticate(manager_a)

    for value in (61, 62, 63, 64, 65):
        response = api.post(
            "/api/v1/measurements/bulk/",
            {
                "measurements": [
                    {"kpi": "sales.deals", "period": "2027-03-01", "value": value}
                ]
            },
            format="json",
        )
        assert response.status_code == 200

    runs = wait_for_runs(1)
    time.sleep(settings.ROLLUP_COALESCE_SECONDS + 1)  # room for a second run, if any
    assert [(r.reason, r.status) for r in RollupRun.objects.all()] == [
        ("measurements", "done")
    ]
    # The run saw the last upload: deals 40 + 50 + 65 = 155 -> attainment 0.55.
    snapshot = SharedGoalSnapshot.objects.get()
    assert snapshot.contributions[0]["actual"] == 155.0
    assert runs[0].shared_goals == 1


def test_a_rollup_while_the_worker_runs_one_is_skipped(
    worker, silo_a, silo_b, monkeypatch
):

    build(silo_a, silo_b)
    real_compute = rollups.compute
    computing, release = threading.Event(), threading.Event()

    def held_compute(shared_goals, **when):
        # The worker (a thread of this process) holds the lock here until released.
        computing.set()
        assert release.wait(timeout=30)
        return real_compute(shared_goals, **when)

    monkeypatch.setattr(rollups, "compute", held_compute)
    result = tasks.rollup_shared_goals_task.delay("schedule")
    assert computing.wait(timeout=30)
    concurrent = rollups.shared_goals_rollup(reason="command")
    release.set()

    assert concurrent.status == "skipped"
    assert result.get(timeout=30) == "done"
    assert SharedGoalSnapshot.objects.count() == 1
    assert sorted(RollupRun.objects.values_list("reason", "status")) == [
        ("command", "skipped"),
        ("schedule", "done"),
    ]
