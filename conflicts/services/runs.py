"""Detection runs: created, started, executed through one orchestration, finished.

Whatever starts a run — the command, the API, the nightly schedule — it executes
through :func:`detection_run_execute`: read and prepare the matrices once (the
company-wide drivers are estimated from the whole matrix, before any block), then
scan the blocks in this process or, given a ``dispatch``, as a Celery chord whose
final step is :func:`detection_run_merge`. Both end in :func:`detection_run_finish`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from conflicts import engine, inputs
from conflicts.models import (
    Conflict,
    DetectionRun,
    Method,
    RunStatus,
    RunTrigger,
    Severity,
    Status,
)
from conflicts.services.events import run_events_dispatch
from conflicts.services.register import register_reconcile
from conflicts.tasks import detect_conflicts_task
from core.roles import User
from metrics import detection
from metrics.locks import advisory_xact_lock
from metrics.models import KPI

#: Key of the advisory lock that makes the nightly schedule's check-and-create atomic.
SCHEDULE_LOCK = 0x6475_6375

#: Bounds of a run's parameters, for the API, the command and the model alike.
MAX_LAG_RANGE = (0, 12)
MIN_PAIRS_RANGE = (3, 1000)
Q_THRESHOLD_RANGE = (1e-6, 0.5)
BLOCK_SIZE_RANGE = (50, 5000)
DEFAULT_BLOCK_SIZE = 1000

#: dispatch(run, matrices, work, p_keep, summary): send the blocks to the workers.
Dispatch = Callable[
    [DetectionRun, list[inputs.FrequencyMatrix], list[Any], float, dict[str, Any]],
    None,
]


def detection_run_create(
    *,
    trigger: str,
    user: User | None = None,
    method: str = Method.DRIVERS,
    max_lag: int = detection.DEFAULT_MAX_LAG,
    min_pairs: int = detection.DEFAULT_MIN_PAIRS,
    q_threshold: float = detection.DEFAULT_Q_THRESHOLD,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> DetectionRun:
    """Record a pending detection run with its method and parameters."""
    return DetectionRun.objects.create(
        trigger=trigger,
        requested_by=user if user is not None and user.is_authenticated else None,
        method=method,
        max_lag=max_lag,
        min_pairs=min_pairs,
        q_threshold=q_threshold,
        block_size=block_size,
        parameters=inputs.method_parameters(method),
    )


def detection_run_schedule(enqueue: Callable[[DetectionRun], Any]) -> int | None:
    """Create the nightly run and enqueue it after commit, unless one is under way."""
    from django.conf import settings

    recent = timezone.now() - timedelta(seconds=2 * settings.CELERY_TASK_TIME_LIMIT)
    with transaction.atomic():
        advisory_xact_lock(SCHEDULE_LOCK)
        # Runs whose worker was lost for good (never redelivered) are closed here.
        DetectionRun.objects.filter(
            status__in=[RunStatus.PENDING, RunStatus.RUNNING], created_at__lt=recent
        ).update(
            status=RunStatus.FAILED,
            finished_at=timezone.now(),
            error="Abandoned: no worker finished it within twice the task time limit.",
        )
        if DetectionRun.objects.filter(
            trigger=RunTrigger.SCHEDULE,
            status__in=[RunStatus.PENDING, RunStatus.RUNNING],
            created_at__gte=recent,
        ).exists():
            return None
        run = detection_run_create(trigger=RunTrigger.SCHEDULE)
        transaction.on_commit(lambda: enqueue(run))
    return run.pk


def detection_run_enqueue(run: DetectionRun) -> None:
    """Send ``run`` to the workers once the current transaction commits."""
    transaction.on_commit(lambda: detect_conflicts_task.delay(run.pk))


def abandoned_before() -> datetime:
    """Return the start time before which a run still marked running is abandoned.

    No task outlives CELERY_TASK_TIME_LIMIT (the worker kills it), so a run that
    started longer ago and is still "running" lost its worker: killed, or stopped by
    the hard limit before it could record a failure.
    """
    from django.conf import settings

    return timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)


def detection_run_start(run: DetectionRun, *, takeover: bool = False) -> bool:
    """Mark a pending run running; return False when it already started.

    A second delivery of a finished run does nothing. A running run is taken over and
    starts again when ``takeover`` says its worker is gone (the broker redelivered the
    message: with acks_late a message comes back only if its worker died before
    acknowledging it), or when it started longer ago than any task may run (see
    :func:`abandoned_before`).
    """
    running_again = Q(status=RunStatus.RUNNING) & (
        Q(started_at__lt=abandoned_before()) if not takeover else Q()
    )
    updated = (
        DetectionRun.objects.filter(pk=run.pk)
        .filter(Q(status=RunStatus.PENDING) | running_again)
        .update(status=RunStatus.RUNNING, started_at=timezone.now(), error="")
    )
    run.refresh_from_db()
    return updated == 1


def detection_run_execute(
    run: DetectionRun,
    *,
    takeover: bool = False,
    dispatch: Dispatch | None = None,
    will_retry: Callable[[BaseException], bool] | None = None,
    progress: Callable[[str], None] | None = None,
) -> str:
    """Execute a pending run: the one orchestration of detection.

    Read the measurements and prepare the matrices once; then, with ``dispatch`` and
    more than one block, hand the blocks to it (the Celery chord; its final step calls
    :func:`detection_run_merge`), else scan them here and finish. Return "skipped" (the
    run had started), "dispatched" or "finished". On an error the run is recorded as
    failed, unless ``will_retry`` says the task will try again (a database outage).
    """
    say = progress or (lambda line: None)
    if not detection_run_start(run, takeover=takeover):
        return "skipped"
    try:
        began = time.perf_counter()
        matrices, measurements = inputs.load_matrices(run.method)
        summary: dict[str, Any] = {
            "kpis": sum(int(m.native.sum()) for m in matrices),
            "measurements": measurements,
            "untested": inputs.untested_kpis(matrices, min_pairs=run.min_pairs),
            "drivers": engine.drivers_of(matrices),
        }
        say(
            f"Read {measurements} measurements of {summary['kpis']} KPIs and found "
            f"{len(summary['drivers'])} company-wide drivers "
            f"({time.perf_counter() - began:.2f} s)."
        )
        work = engine.work_items(matrices, run.block_size)
        if dispatch is not None and len(work) > 1:
            p_keep = engine.first_p_keep(
                matrices, max_lag=run.max_lag, q_threshold=run.q_threshold
            )
            dispatch(run, matrices, work, p_keep, summary)
            return "dispatched"

        def block_done(done: int, total: int) -> None:
            say(f"Block {done}/{total} scanned ({time.perf_counter() - began:.2f} s).")

        associations, tests, blocks = engine.scan_all(
            matrices,
            max_lag=run.max_lag,
            min_pairs=run.min_pairs,
            q_threshold=run.q_threshold,
            block_size=run.block_size,
            progress=block_done,
        )
        say(f"{tests} tests, {len(associations)} significant associations.")
        detection_run_finish(
            run, matrices, associations, summary=summary, tests=tests, blocks=blocks
        )
        return "finished"
    except Exception as error:
        if will_retry is None or not will_retry(error):
            detection_run_fail(run, f"{type(error).__name__}: {error}")
        raise


def detection_run_merge(
    run: DetectionRun,
    *,
    matrices: list[inputs.FrequencyMatrix],
    scans: list[detection.BlockScan],
    p_keep: float,
    summary: dict[str, Any],
) -> float | None:
    """The final step of a distributed run: the false-discovery step over all blocks.

    Return None when the run is finished, or the wider cut to scan the blocks again
    with (see :func:`metrics.detection.merge_scans`).
    """
    merged = detection.merge_scans(
        scans,
        p_keep=p_keep,
        q_threshold=run.q_threshold,
        one_sided=engine.one_sided(matrices),
    )
    if not isinstance(merged, list):
        return merged
    detection_run_finish(
        run,
        matrices,
        merged,
        summary=summary,
        tests=sum(scan.tests for scan in scans),
        blocks=len(scans),
    )
    return None


def detection_run_finish(
    run: DetectionRun,
    matrices: list[inputs.FrequencyMatrix],
    associations: list[detection.Association],
    *,
    summary: dict[str, Any],
    tests: int,
    blocks: int,
) -> DetectionRun:
    """Write a run's associations into the register with their effect sizes, its
    counts, drivers and untested KPIs, and dispatch conflict.new and conflict.high
    (delivered after commit)."""
    conflicts = [a for a in associations if a.kind == "conflict"]
    synergies = sorted(
        (a for a in associations if a.kind == "synergy"), key=lambda a: (-a.r, a.p)
    )
    frequency = engine.native_frequency(matrices)
    grids = {
        frozenset((a.leader, a.follower)): engine.grid_of(
            frequency, a.leader, a.follower
        )
        for a in associations
    }
    effects = engine.effects_of(matrices, associations)
    # A chord sent before a deploy may carry an older summary.
    drivers = summary.get("drivers", [])
    untested = summary.get("untested", [])
    with transaction.atomic():
        # A duplicated callback (redelivery) must not write the run a second time.
        locked = DetectionRun.objects.select_for_update().get(pk=run.pk)
        if locked.status != RunStatus.RUNNING:
            run.refresh_from_db()
            return run
        result = register_reconcile(
            run=run, associations=associations, effects=effects, grids=grids
        )
        finished = timezone.now()
        named = {
            k for a in synergies[: run.SYNERGIES_KEPT] for k in (a.leader, a.follower)
        } | {entry["kpi_id"] for driver in drivers for entry in driver["kpis"]}
        names = dict(KPI.objects.filter(id__in=named).values_list("id", "key"))
        silos = dict(KPI.objects.filter(id__in=named).values_list("id", "silo__slug"))
        # Every high-severity conflict under review that nobody was told about yet:
        # new, reopened, or made high since (also by a goal change between runs).
        alarming = Conflict.objects.filter(
            severity=Severity.HIGH,
            stale=False,
            status__in=[Status.OPEN, Status.ACKNOWLEDGED],
            alerted_high=False,
        )
        ids = sorted(alarming.values_list("pk", flat=True))
        DetectionRun.objects.filter(pk=run.pk).update(
            status=RunStatus.SUCCEEDED,
            finished_at=finished,
            duration_seconds=(finished - run.started_at).total_seconds()
            if run.started_at
            else None,
            kpis=summary["kpis"],
            measurements=summary["measurements"],
            tests=tests,
            blocks=blocks,
            conflicts_found=len(conflicts),
            synergies_found=len(synergies),
            contradicted_links=result.contradicted,
            new_conflicts=len(result.created),
            reopened=len(result.reopened),
            marked_stale=result.marked_stale,
            high_alerts=len(ids),
            untested_kpis=len(untested),
            untested=untested[: inputs.UNTESTED_KEPT],
            drivers=[
                {
                    "grid": driver["grid"],
                    "number": driver["number"],
                    "share": driver["share"],
                    "silos": len({silos[e["kpi_id"]] for e in driver["kpis"]}),
                    "kpis": [
                        {
                            "kpi": names[e["kpi_id"]],
                            "silo": silos[e["kpi_id"]],
                            "correlation": e["correlation"],
                        }
                        for e in driver["kpis"]
                    ],
                }
                for driver in drivers
            ],
            synergies=[
                {
                    "leader_kpi": names[a.leader],
                    "affected_kpi": names[a.follower],
                    "lag": a.lag,
                    "correlation": a.r,
                    "p_value": a.p,
                    "q_value": a.q,
                    "periods": a.n,
                }
                for a in synergies[: run.SYNERGIES_KEPT]
            ],
        )
        if ids:
            Conflict.objects.filter(pk__in=ids).update(alerted_high=True)
        # In the run's transaction: the events go out only if the register's changes
        # are kept, and after they are.
        run_events_dispatch(
            run_id=run.pk,
            new_ids=[c.pk for c in result.created],
            reopened_ids=[c.pk for c in result.reopened],
            high_ids=ids,
        )
    run.refresh_from_db()
    return run


def detection_run_fail(run: DetectionRun, error: str) -> None:
    """Record that a run failed, with the error, so a later run can start afresh."""
    finished = timezone.now()
    DetectionRun.objects.filter(
        pk=run.pk, status__in=[RunStatus.PENDING, RunStatus.RUNNING]
    ).update(status=RunStatus.FAILED, finished_at=finished, error=error[:5000])


def detection_run_perform(
    run: DetectionRun, *, progress: Callable[[str], None] | None = None
) -> DetectionRun:
    """Execute a pending run in this process (see :func:`detection_run_execute`)."""
    detection_run_execute(run, progress=progress)
    run.refresh_from_db()
    return run


def detection_run_now(**options: Any) -> DetectionRun:
    """Create and run a detection run synchronously (the management command)."""
    progress = options.pop("progress", None)
    run = detection_run_create(trigger=RunTrigger.COMMAND, **options)
    return detection_run_perform(run, progress=progress)
