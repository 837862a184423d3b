"""Detection on a real Celery worker against the real Redis (no eager mode).

The worker runs in a thread of the test process (celery.contrib.testing), consuming
from the Redis broker that REDIS_URL names; tasks write to the test database, so the
tests are transactional.
"""

import threading
import time

import pytest
from django.conf import settings
from django.db import connection

from conflicts import services, tasks
from conflicts.models import Conflict, DetectionRun
from tests.conflicts.company import standard_company
from tests.conflicts.messy import messy_company

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def wait_for(run_id: int, timeout: float = 90.0) -> DetectionRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = DetectionRun.objects.get(pk=run_id)
        if run.status in ("succeeded", "failed"):
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} still {run.status} after {timeout} s")


def register():
    return sorted(
        Conflict.objects.values_list(
            "leader_kpi__key",
            "affected_kpi__key",
            "kind",
            "lag",
            "correlation",
            "p_value",
            "q_value",
            "periods",
            "grid",
            "effect",
            "effect_low",
            "effect_high",
            "severity",
        )
    )


def test_worker_run_as_a_chord_of_blocks_stores_what_the_command_stores(worker):
    standard_company().save()
    run = services.detection_run_create(trigger="api", block_size=4)

    tasks.detect_conflicts_task.delay(run.pk)
    run = wait_for(run.pk)

    assert run.status == "succeeded", run.error
    # 16 KPIs in blocks of 4 leaders x 8 followers: 8 block tasks in the chord.
    assert run.blocks == 8
    from_worker = register()
    assert [row[:4] for row in from_worker] == [
        ("sales.deals_closed", "support.ticket_backlog", "observed", 2)
    ]

    Conflict.objects.all().delete()
    command_run = services.detection_run_now(block_size=4)

    assert register() == from_worker
    assert (command_run.tests, command_run.conflicts_found, command_run.synergies) == (
        run.tests,
        run.conflicts_found,
        run.synergies,
    )


def test_blocks_across_workers_give_exactly_the_single_process_result(worker):
    # A messy company: drivers estimated once from the whole matrix, before the blocks;
    # the monthly, quarterly and weekly grids each cut into blocks of 10 leaders.
    messy_company(0).save()
    run = services.detection_run_create(trigger="api", block_size=10)

    tasks.detect_conflicts_task.delay(run.pk)
    run = wait_for(run.pk)

    assert run.status == "succeeded", run.error
    assert run.blocks == 13
    from_worker = register()
    assert len(from_worker) == 5

    Conflict.objects.all().delete()
    command_run = services.detection_run_now(block_size=10)

    assert command_run.blocks == 13
    assert register() == from_worker
    assert (command_run.tests, command_run.drivers, command_run.untested) == (
        run.tests,
        run.drivers,
        run.untested,
    )


def test_worker_runs_a_single_block_inline(worker):
    standard_company().save()
    run = services.detection_run_create(trigger="api")

    tasks.detect_conflicts_task.delay(run.pk)
    run = wait_for(run.pk)

    assert (run.status, run.blocks, run.conflicts_found) == ("succeeded", 1, 1)


def test_a_redelivered_task_does_not_run_a_finished_run_again(worker):
    standard_company().save()
    run = services.detection_run_create(trigger="api")
    tasks.detect_conflicts_task.delay(run.pk)
    finished = wait_for(run.pk)

    result = tasks.detect_conflicts_task.delay(run.pk).get(timeout=30)

    assert result == "skipped"
    assert DetectionRun.objects.get(pk=run.pk).finished_at == finished.finished_at


def test_nightly_schedule_fired_twice_at_once_starts_one_run(worker):
    standard_company().save()
    started = []

    def fire():
        try:
            started.append(tasks.nightly_detection_task())
        finally:
            connection.close()

    threads = [threading.Thread(target=fire) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    created = [run_id for run_id in started if run_id is not None]
    assert len(created) == 1
    assert wait_for(created[0]).status == "succeeded"
    assert DetectionRun.objects.count() == 1
    assert settings.CELERY_BEAT_SCHEDULE["nightly-conflict-detection"]["task"] == (
        tasks.nightly_detection_task.name
    )


def test_a_failing_block_fails_the_run_instead_of_leaving_it_running(
    worker, monkeypatch
):
    from conflicts import engine

    standard_company().save()
    real_scan = engine.scan

    def scan_that_fails_on_one_block(matrix, block, **kwargs):
        if block[0] == 4:
            raise RuntimeError("disk full")
        return real_scan(matrix, block, **kwargs)

    monkeypatch.setattr(engine, "scan", scan_that_fails_on_one_block)
    run = services.detection_run_create(trigger="api", block_size=4)

    tasks.detect_conflicts_task.delay(run.pk)
    run = wait_for(run.pk)

    assert run.status == "failed"
    assert "disk full" in run.error
    assert Conflict.objects.count() == 0
