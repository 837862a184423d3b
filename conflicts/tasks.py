"""Celery tasks of conflict detection: thin wrappers over conflicts.services and engine.

A run with one block computes in the task itself. A larger run publishes its change
matrices to the cache (Redis), scans its blocks as a Celery chord across the workers and
applies the false-discovery step over all blocks in the chord's callback; should the
blocks have kept too few candidates (see metrics.detection.merge_scans) the callback
scans again with the wider cut. Every task is safe to run twice: a run that already
started is not started again, and the register is reconciled under a lock. Every task
retries while the database is unavailable (core.tasks).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, chord, shared_task
from django.core.cache import cache

from conflicts import engine, services
from conflicts.models import DetectionRun, RunStatus
from core.tasks import DATABASE_RETRY, retries_after
from metrics import detection

logger = logging.getLogger(__name__)

#: Seconds the published matrices stay in the cache: longer than any run may take.
MATRIX_TTL = 3 * 3600


def _matrix_key(run_id: int) -> str:
    return f"conflicts:detection-run:{run_id}:matrices"


@shared_task(name="conflicts.detect_conflicts", bind=True, **DATABASE_RETRY)
def detect_conflicts(self: Task, run_id: int) -> str:
    """Run a pending detection run: inline when it is one block, else as a chord.

    A redelivered message (its worker was killed: acks_late with reject_on_worker_lost,
    or the visibility timeout after a lost node) takes the run over and starts again;
    so does a retry after the database was unavailable (the attempt before it ended).
    """
    run = DetectionRun.objects.filter(pk=run_id).first()
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    takeover = redelivered or self.request.retries > 0
    if run is None or not services.start_run(run, takeover=takeover):
        return "skipped"
    try:
        matrices, measurements = engine.load_matrices()
        work = [
            (index, block)
            for index, matrix in enumerate(matrices)
            for block in matrix.blocks(run.block_size)
        ]
        kpis = sum(m.kpi_ids.size for m in matrices)
        untested = engine.untested_kpis(matrices, min_pairs=run.min_pairs)
        p_keep = engine.first_p_keep(
            matrices, max_lag=run.max_lag, q_threshold=run.q_threshold
        )
        if len(work) <= 1:
            associations, tests, blocks = engine.scan_all(
                matrices,
                max_lag=run.max_lag,
                min_pairs=run.min_pairs,
                q_threshold=run.q_threshold,
                block_size=run.block_size,
            )
            services.finish_run(
                run,
                associations,
                kpis=kpis,
                measurements=measurements,
                tests=tests,
                blocks=blocks,
                untested=untested,
            )
            return "finished"
        cache.set(_matrix_key(run.pk), matrices, MATRIX_TTL)
        _dispatch(
            run.pk,
            work,
            p_keep,
            {"kpis": kpis, "measurements": measurements, "untested": untested},
        )
        return "dispatched"
    except Exception as error:
        # A retry follows a database outage: the run stays running for it to take over.
        if not retries_after(self, error):
            services.fail_run(run, f"{type(error).__name__}: {error}")
        raise


def _dispatch(
    run_id: int,
    work: list[tuple[int, tuple[int, int, int, int]]],
    p_keep: float,
    counts: dict[str, int],
) -> None:
    merge = merge_detection_blocks.s(
        run_id, [[i, list(b)] for i, b in work], p_keep, counts
    )
    # A block that fails fails the chord: its error callback fails the run, which
    # must never stay "running" with nobody working on it.
    chord(
        scan_detection_block.s(run_id, index, list(block), p_keep)
        for index, block in work
    )(merge.on_error(detection_chord_failed.s(run_id)))


@shared_task(name="conflicts.detection_chord_failed", **DATABASE_RETRY)
def detection_chord_failed(
    request: Any, exc: BaseException, traceback: Any, run_id: int
) -> None:
    """Record that a run's chord failed (a block or the final step raised)."""
    run = DetectionRun.objects.filter(pk=run_id).first()
    if run is not None:
        services.fail_run(run, f"A detection block failed: {exc!r}"[:5000])


@shared_task(name="conflicts.scan_detection_block", **DATABASE_RETRY)
def scan_detection_block(
    run_id: int, matrix_index: int, block: list[int], p_keep: float
) -> dict[str, Any]:
    """Scan one block of a run's published matrices; return its serialized scan."""
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
def merge_detection_blocks(
    scans: list[dict[str, Any]],
    run_id: int,
    work: list[list[Any]],
    p_keep: float,
    counts: dict[str, int],
) -> str:
    """Apply the false-discovery step over all blocks and write the register."""
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
        results = [engine.scan_from_json(scan) for scan in scans]
        merged = detection.merge_scans(
            results, p_keep=p_keep, q_threshold=run.q_threshold
        )
        if not isinstance(merged, list):
            logger.info("Run %s: rescanning with p <= %.3g", run_id, merged)
            _dispatch(run_id, [(i, tuple(b)) for i, b in work], merged, counts)
            return "rescanning"
        services.finish_run(
            run,
            merged,
            kpis=counts["kpis"],
            measurements=counts["measurements"],
            tests=sum(r.tests for r in results),
            blocks=len(results),
            # A chord dispatched before runs recorded untested KPIs lacks the key.
            untested=counts.get("untested", []),
        )
        cache.delete(_matrix_key(run_id))
        return "finished"
    except Exception as error:
        services.fail_run(run, f"{type(error).__name__}: {error}")
        raise


@shared_task(name="conflicts.nightly_detection", **DATABASE_RETRY)
def nightly_detection() -> int | None:
    """Start the nightly run unless a scheduled run is already under way.

    The schedule firing twice at once gives one run: the check and the creation happen
    under an advisory lock. A run older than the task time limit is not "under way"
    (a lost chord must not block every later night).
    """
    return services.create_scheduled_run(
        enqueue=lambda run: detect_conflicts.delay(run.pk)
    )
