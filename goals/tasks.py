"""Celery tasks of the shared-goal roll-up: thin wrappers over goals.rollups.

Both retry while the database is unavailable (core.tasks): a roll-up writes in one
transaction, so an attempt cut short left nothing behind. The roll-up service imports
these tasks at module level; they import the service inside their bodies.
"""

from celery import shared_task

from core.tasks import DATABASE_RETRY
from goals.models import RollupRun


@shared_task(name="goals.rollup_shared_goals", **DATABASE_RETRY)
def rollup_shared_goals_task(reason: str = RollupRun.Reason.SCHEDULE) -> str:
    """Snapshot every open cycle's shared goals for today (see goals.rollups.shared_goals_rollup).

    Safe to run twice or concurrently: the same day's snapshot is replaced, and a run
    that finds another holding the lock records itself as skipped. A skipped run asked
    for by new measurements asks again, so those measurements are never left out.
    """
    from goals import rollups

    run = rollups.shared_goals_rollup(reason=reason)
    if (
        run.status == RollupRun.Status.SKIPPED
        and reason == RollupRun.Reason.MEASUREMENTS
    ):
        rollups.rollup_reschedule()
    return run.status


@shared_task(name="goals.rollup_catch_up", **DATABASE_RETRY)
def rollup_catch_up_task() -> str:
    """Run the roll-up if a contributing measurement changed since the last one."""
    from goals import rollups

    if not rollups.rollup_is_behind():
        return "up to date"
    return rollups.shared_goals_rollup(reason=RollupRun.Reason.CATCH_UP).status
