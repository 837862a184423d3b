"""Celery tasks of conflict detection: thin wrappers over conflicts.services.

A run executes through ``services.detection_run_execute``: with one block it computes
in the task itself; a larger run publishes its prepared matrices to the cache (Redis),
scans its blocks as a Celery chord across the workers and applies the false-discovery
step over all blocks in the chord's callback (``services.detection_run_merge``);
should the blocks have kept too few candidates the callback scans again with the wider
cut. Every task is safe to run twice: a run that already started is not started again,
and the register is reconciled under a lock. Every task retries while the database is
unavailable (core.tasks). Services import these tasks at module level; the tasks
import services inside their bodies, so no import cycle exists.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, chord, shared_task
from django.core.cache import cache

from core.tasks import DATABASE_RETRY, retries_after

logger = logging.getLogger(__name__)

#: Seconds the published matrices stay in the cache: longer than any run may take.
MATRIX_TTL = 3 * 3600


def _matrix_key(run_id: int) -> str:
    return f"conflicts:detection-run:{run_id}:matrices"


@shared_task(name="conflicts.detect_conflicts", bind=True, **DATABASE_RETRY)
def detect_conflicts_task(self: Task, run_id: int) -> str:
    """Execute a pending detection run: inline when it is one block, else as a chord.

    A redelivered message (its worker was killed: acks_late with reject_on_worker_lost,
    or the visibility timeout after a lost node) takes the run over and starts again;
    so does a retry after the database was unavailable (the attempt before it ended).
    """
    from conflicts import services
    from conflicts.models import DetectionRun

    run = DetectionRun.objects.filter(pk=run_id).first()
    if run is None:
        return "skipped"
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    return services.detection_run_execute(
        run,
        takeover=redelivered or self.request.retries > 0,
        dispatch=_dispatch_chord,
        will_retry=lambda error: retries_after(self, error),
    )


def _dispatch_chord(
    run: Any, matrices: list[Any], work: list[Any], p_keep: float, summary: dict
) -> None:
    """Publish the prepared matrices and scan the blocks as a chord."""
    cache.set(_matrix_key(run.pk), matrices, MATRIX_TTL)
    _send_chord(
        run.pk, [[index, list(block)] for index, block in work], p_keep, summary
    )


def _send_chord(
    run_id: int, work: list[list[Any]], p_keep: float, summary: dict
) -> None:
    merge = merge_detection_blocks_task.s(run_id, work, p_keep, summary)
    # A block that fails fails the chord: its error callback fails the run, which
    # must never stay "running" with nobody working on it.
    chord(
        scan_detection_block_task.s(run_id, index, block, p_keep)
        for index, block in work
    )(merge.on_error(detection_chord_failed_task.s(run_id)))


@shared_task(name="conflicts.detection_chord_failed", **DATABASE_RETRY)
def detection_chord_failed_task(
    request: Any, exc: BaseException, traceback: Any, run_id: int
) -> None:
    """Record that a run's chord failed (a block or the final step raised)."""
    from conflicts import services
    from conflicts.models import DetectionRun

    run = DetectionRun.objects.filter(pk=run_id).first()
    if run is not None:
        services.detection_run_fail(run, f"A detection block failed: {exc!r}"[:5000])


@shared_task(name="conflicts.scan_detection_block", **DATABASE_RETRY)
def scan_detection_block_task(
    run_id: int, matrix_index: int, block: list[int], p_keep: float
) -> dict[str, Any]:
    """Scan one block of a run's published matrices; return its serialized scan."""
    from conflicts import engine
    from conflicts.models import DetectionRun

    run = DetectionRun.objects.get(pk=run_id)
    matrices = cache.get(_matrix_key(run_id))
    if matrices is None:
        raise RuntimeError(f"the matrices of detection run {run_id} expired")
    result = engine.scan(
        matrices[matrix_index],
        (block[0], block[1], block[2], block[3]),
        max_lag=run.max_lag,
        min_pairs=run.min_pairs,
        q_threshold=run.q_threshold,
        p_keep=p_keep,
    )
    return engine.scan_to_json(result, [matrix_index, block])


@shared_task(name="conflicts.merge_detection_blocks", **DATABASE_RETRY)
def merge_detection_blocks_task(
    scans: list[dict[str, Any]],
    run_id: int,
    work: list[list[Any]],
    p_keep: float,
    summary: dict[str, Any],
) -> str:
    """Apply the false-discovery step over all blocks and write the register."""
    from conflicts import engine, services
    from conflicts.models import DetectionRun, RunStatus

    run = DetectionRun.objects.get(pk=run_id)
    if run.status != RunStatus.RUNNING:
        return "skipped"
    try:
        received = sorted(scan["work_item"] for scan in scans)
        if received != sorted(work):
            # A redelivered block counted twice and another missing: the result
            # would be silently wrong, so the run fails instead.
            raise RuntimeError(
                f"expected {len(work)} distinct blocks, received {len(scans)} "
                f"({len({str(item) for item in received})} distinct)"
            )
        matrices = cache.get(_matrix_key(run_id))
        if matrices is None:
            raise RuntimeError(f"the matrices of detection run {run_id} expired")
        wider = services.detection_run_merge(
            run,
            matrices=matrices,
            scans=[engine.scan_from_json(scan) for scan in scans],
            p_keep=p_keep,
            summary=summary,
        )
        if wider is not None:
            logger.info("Run %s: rescanning with p <= %.3g", run_id, wider)
            _send_chord(run_id, work, wider, summary)
            return "rescanning"
        cache.delete(_matrix_key(run_id))
        return "finished"
    except Exception as error:
        services.detection_run_fail(run, f"{type(error).__name__}: {error}")
        raise


@shared_task(name="conflicts.nightly_detection", **DATABASE_RETRY)
def nightly_detection_task() -> int | None:
    """Start the nightly run unless a scheduled run is already under way.

    The schedule firing twice at once gives one run: the check and the creation happen
    under an advisory lock. A run older than the task time limit is not "under way"
    (a lost chord must not block every later night).
    """
    from conflicts import services

    return services.detection_run_schedule(
        enqueue=lambda run: detect_conflicts_task.delay(run.pk)
    )
