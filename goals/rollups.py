"""The shared-goal roll-up: every open cycle's shared goals, snapshotted once a day.

A constant number of SQL queries whatever the number of shared goals: one for the shared
goals, one for their contributions, one for the contributing goals' actuals, one for the
guardrails with their current values, one upsert of the snapshots (and the lock and the
run record). The arithmetic is goals.progress.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, OuterRef, Q, Subquery
from django.db.models.functions import Greatest
from django.utils import timezone

from core.bounds import LONG_TEXT_MAX, finite_json
from cycles.models import Phase
from goals import progress
from goals.events import breached_before, guardrail_events_dispatch
from goals.models import (
    Contribution,
    Goal,
    Guardrail,
    RollupDemand,
    RollupRun,
    SharedGoal,
    SharedGoalSnapshot,
)
from goals.selectors import goal_attainment, goal_list_with_actuals, with_pace
from goals.tasks import rollup_shared_goals_task
from metrics.locks import try_advisory_xact_lock
from metrics.models import Measurement

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

logger = logging.getLogger(__name__)

#: Key of the advisory lock that lets one roll-up run at a time.
ROLLUP_LOCK = 0x6475_6376
#: Cache key that coalesces the roll-ups a burst of uploads asks for into one.
PENDING_KEY = "goals:rollup:pending"


def open_shared_goals() -> list[SharedGoal]:
    """Return the shared goals of cycles that are not closed, with their cycle."""
    return list(
        SharedGoal.objects.exclude(cycle__phase=Phase.CLOSED)
        .select_related("cycle")
        .order_by("id")
    )


class Current(TypedDict):
    """What :func:`guardrails_with_current` annotates."""

    current: float | None


def guardrails_with_current(
    shared_goal_ids: Iterable[int], through: dt.date | None = None
) -> list[WithAnnotations[Guardrail, Current]]:
    """Return the guardrails annotated with ``current``: the KPI's latest value inside
    its shared goal's cycle (None when it has none yet), up to ``through`` if given."""
    in_cycle = Measurement.objects.filter(
        kpi=OuterRef("kpi"),
        period__gte=OuterRef("shared_goal__cycle__start_date"),
        period__lte=OuterRef("shared_goal__cycle__end_date"),
    )
    if through is not None:
        in_cycle = in_cycle.filter(period__lte=through)
    latest = in_cycle.order_by("-period").values("value")[:1]
    return list(
        Guardrail.objects.filter(shared_goal_id__in=list(shared_goal_ids))
        .select_related("kpi")
        .annotate(current=Subquery(latest))
        .order_by("shared_goal_id", "kpi__key")
    )


@dataclass(frozen=True)
class Computed:
    """One shared goal's progress with the breakdown the snapshot stores."""

    shared_goal: SharedGoal
    result: progress.SharedProgress
    contributions: list[dict]
    guardrails: list[dict]


def compute(
    shared_goals: list[SharedGoal],
    day: dt.date | None = None,
    through: dt.date | None = None,
) -> list[Computed]:
    """Compute the progress of ``shared_goals`` on ``day`` (today by default; the pace
    of sum goals depends on it), from the periods up to ``through`` (all by default:
    ``through`` rebuilds a past snapshot from the figures as they stood). Four queries
    in all."""
    ids = [shared_goal.pk for shared_goal in shared_goals]
    contributions = list(
        Contribution.objects.filter(shared_goal_id__in=ids)
        .values_list("shared_goal_id", "goal_id", "weight")
        .order_by("shared_goal_id", "goal_id")
    )
    goals = {
        goal.pk: goal
        for goal in with_pace(
            goal_list_with_actuals(
                Goal.objects.filter(
                    pk__in={goal_id for _, goal_id, _ in contributions}
                ),
                through=through,
            ),
            today=day,
        )
    }
    guardrails: dict[int, list[WithAnnotations[Guardrail, Current]]] = {}
    for guardrail in guardrails_with_current(ids, through=through):
        guardrails.setdefault(guardrail.shared_goal_id, []).append(guardrail)
    by_shared: dict[int, list[tuple[int, float]]] = {}
    for shared_id, goal_id, weight in contributions:
        by_shared.setdefault(shared_id, []).append((goal_id, weight))

    computed = []
    for shared_goal in shared_goals:
        parts, part_rows = [], []
        for goal_id, weight in by_shared.get(shared_goal.pk, []):
            goal = goals[goal_id]
            attainment = goal_attainment(goal)
            parts.append(
                progress.Part(
                    key=goal_id,
                    silo=goal.kpi.silo.slug,
                    weight=weight,
                    attainment=attainment,
                )
            )
            part_rows.append(
                {
                    "goal": goal_id,
                    "kpi": goal.kpi.key,
                    "silo": goal.kpi.silo.slug,
                    "weight": weight,
                    "actual": goal.actual,
                    "attainment": attainment,
                }
            )
        guards, guard_rows = [], []
        for guardrail in guardrails.get(shared_goal.pk, []):
            worsened_by = progress.worsening(
                direction=guardrail.kpi.direction,
                baseline=guardrail.baseline,
                current=guardrail.current,
                band_low=guardrail.kpi.band_low,
                band_high=guardrail.kpi.band_high,
            )
            guard = progress.Guard(
                key=guardrail.pk, worsened_by=worsened_by, tolerance=guardrail.tolerance
            )
            guards.append(guard)
            guard_rows.append(
                {
                    "id": guardrail.pk,
                    "kpi": guardrail.kpi.key,
                    "baseline": guardrail.baseline,
                    "tolerance": guardrail.tolerance,
                    "current": guardrail.current,
                    "worsened_by": worsened_by,
                    "breached": guard.breached,
                }
            )
        computed.append(
            Computed(
                shared_goal=shared_goal,
                result=progress.shared_progress(parts, guards),
                contributions=part_rows,
                guardrails=guard_rows,
            )
        )
    return computed


def snapshots(results: list[Computed], day: dt.date) -> list[SharedGoalSnapshot]:
    """Return the (unsaved) snapshots of computed shared goals for ``day``."""
    now = timezone.now()
    return [
        SharedGoalSnapshot(
            shared_goal=item.shared_goal,
            day=day,
            progress=item.result.progress,
            uncapped_progress=item.result.uncapped,
            contributions_with_data=item.result.with_data,
            contributions_total=item.result.total,
            # jsonb holds no NaN or Infinity: what a job writes is finite.
            per_silo=finite_json(item.result.per_silo),
            contributions=finite_json(item.contributions),
            guardrails=finite_json(item.guardrails),
            guardrail_breached=bool(item.result.breached),
            computed_at=now,
        )
        for item in results
    ]


def shared_goals_rollup(
    *,
    reason: str = RollupRun.Reason.SCHEDULE,
    day: dt.date | None = None,
    progress_line: Callable[[str], None] | None = None,
) -> RollupRun:
    """Snapshot every open cycle's shared goals for ``day`` (today by default).

    Idempotent: a second run the same day replaces each snapshot with the same numbers.
    Two runs at once: the second finds the lock taken and is recorded as skipped.
    """
    say = progress_line or (lambda line: None)
    day = day or timezone.localdate()
    began = time.perf_counter()
    started_at = timezone.now()
    try:
        run = _rollup_locked(reason=reason, day=day, say=say, began=began)
    except Exception as exc:
        _record_failure(
            reason=reason, day=day, started_at=started_at, began=began, exc=exc
        )
        raise
    if run.status == RollupRun.Status.DONE:
        say(
            f"Snapshotted {run.shared_goals} shared goals in "
            f"{run.duration_seconds:.2f} s ({run.breached} with a breached guardrail)."
        )
    return run


def _rollup_locked(
    *, reason: str, day: dt.date, say: Callable[[str], None], began: float
) -> RollupRun:
    """Do the roll-up in one transaction under the lock (see ``rollup``)."""
    started_at = timezone.now()
    with transaction.atomic():
        if not try_advisory_xact_lock(ROLLUP_LOCK):
            say("Another roll-up is running: skipped.")
            return RollupRun.objects.create(
                reason=reason,
                day=day,
                status=RollupRun.Status.SKIPPED,
                started_at=started_at,
                finished_at=timezone.now(),
            )
        # Uploads from now on ask for a new run; this one may not see them.
        try:
            cache.delete(PENDING_KEY)
        except Exception:  # the cache (Redis) being down must not stop the roll-up
            logger.warning("Could not clear the roll-up coalescing key", exc_info=True)
        # Read the demand before any data: a change committing from now on leaves
        # "requested" ahead of what this run marks as satisfied.
        demanded = requested_changes()
        shared_goals = open_shared_goals()
        say(f"Rolling up {len(shared_goals)} shared goals of open cycles for {day}.")
        results = compute(shared_goals, day=day)
        before = breached_before([item.shared_goal.pk for item in results], day)
        SharedGoalSnapshot.objects.bulk_create(
            snapshots(results, day),
            update_conflicts=True,
            unique_fields=["shared_goal", "day"],
            update_fields=[
                "progress",
                "uncapped_progress",
                "contributions_with_data",
                "contributions_total",
                "per_silo",
                "contributions",
                "guardrails",
                "guardrail_breached",
                "computed_at",
            ],
            batch_size=5000,
        )
        guardrail_events_dispatch(items=results, before=before, day=day)
        RollupDemand.objects.filter(pk=1).update(
            satisfied=Greatest(F("satisfied"), demanded)
        )
        return RollupRun.objects.create(
            reason=reason,
            day=day,
            status=RollupRun.Status.DONE,
            shared_goals=len(results),
            breached=sum(1 for item in results if item.result.breached),
            started_at=started_at,
            finished_at=timezone.now(),
            duration_seconds=time.perf_counter() - began,
        )


def _record_failure(
    *, reason: str, day: dt.date, started_at: dt.datetime, began: float, exc: Exception
) -> None:
    """Record a roll-up that failed, with its error, so that it does not vanish.

    The run's own transaction has rolled back; this row is written on its own. If the
    database itself is what failed, the row cannot be written either: the error is
    logged and the caller re-raises the original.
    """
    error = f"{type(exc).__name__}: {exc}"[:LONG_TEXT_MAX]
    try:
        RollupRun.objects.create(
            reason=reason,
            day=day,
            status=RollupRun.Status.FAILED,
            started_at=started_at,
            finished_at=timezone.now(),
            duration_seconds=time.perf_counter() - began,
            error=error,
        )
    except Exception:
        logger.exception("Could not record the failed roll-up (%s)", error)


def contributing(kpi_ids: Iterable[int]) -> bool:
    """Return whether any of these KPIs feeds a shared goal or guardrail of an open
    cycle."""
    kpi_ids = list(kpi_ids)
    if not kpi_ids:
        return False
    open_cycle = ~Q(shared_goal__cycle__phase=Phase.CLOSED)
    return (
        Contribution.objects.filter(open_cycle, goal__kpi_id__in=kpi_ids).exists()
        or Guardrail.objects.filter(open_cycle, kpi_id__in=kpi_ids).exists()
    )


def requested_changes() -> int:
    """Return how many contributing changes have asked for a roll-up so far."""
    row = RollupDemand.objects.filter(pk=1).values_list("requested", flat=True).first()
    return row or 0


def rollup_demand() -> None:
    """Record in PostgreSQL that contributing data changed (see RollupDemand)."""
    if not RollupDemand.objects.filter(pk=1).update(requested=F("requested") + 1):
        RollupDemand.objects.get_or_create(pk=1, defaults={"requested": 1})


def rollup_schedule(kpi_ids: Iterable[int]) -> bool:
    """Record the demand and ask for a roll-up shortly, once for a burst of uploads;
    return whether this call enqueued it.

    The first upload of a burst sets a short-lived cache key and enqueues the task with
    a countdown; the uploads until the task starts find the key and enqueue nothing. If
    Redis is down nothing is enqueued, and the catch-up job runs the roll-up once it is
    back (the demand is in PostgreSQL).
    """
    if not contributing(kpi_ids):
        return False
    rollup_demand()
    try:
        if not cache.add(PENDING_KEY, 1, timeout=settings.ROLLUP_COALESCE_SECONDS * 10):
            return False
        _enqueue()
    except Exception:
        logger.warning(
            "Could not enqueue the roll-up; the catch-up job will run it", exc_info=True
        )
        return False
    return True


def rollup_reschedule() -> None:
    """Enqueue another roll-up: one asked for by uploads found the lock taken, and the
    run holding it may have read the data before those uploads committed.

    Not in eager mode (no Redis): the task would run again at once, inside this one,
    while the lock is still taken; the catch-up job covers that case instead.
    """
    from config.celery_app import app

    if app.conf.task_always_eager:
        return
    try:
        cache.set(PENDING_KEY, 1, timeout=settings.ROLLUP_COALESCE_SECONDS * 10)
        _enqueue()
    except Exception:
        logger.warning("Could not re-enqueue the roll-up", exc_info=True)


def _enqueue() -> None:
    rollup_shared_goals_task.apply_async(
        kwargs={"reason": RollupRun.Reason.MEASUREMENTS},
        countdown=settings.ROLLUP_COALESCE_SECONDS,
    )


def rollup_is_behind() -> bool:
    """Return whether contributing data changed after what the last roll-up covered
    (or there was never a roll-up while shared goals exist)."""
    row = RollupDemand.objects.filter(pk=1).first()
    if row is not None and row.requested > row.satisfied:
        return True
    never_rolled_up = not RollupRun.objects.filter(
        status=RollupRun.Status.DONE
    ).exists()
    return (
        never_rolled_up
        and SharedGoal.objects.exclude(cycle__phase=Phase.CLOSED).exists()
    )
