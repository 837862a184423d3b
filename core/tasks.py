"""Celery task options shared by the apps: retry while the database is unavailable.

A task that finds PostgreSQL down (stopped, restarting, unreachable) raises one of
``core.database.DATABASE_UNAVAILABLE``. Without a retry Celery records the failure and
acknowledges the message (``acks_late`` acknowledges failures too): the work is lost.
With ``**DATABASE_RETRY`` in its decorator the task is sent again with a countdown of
1, 2, 4, ... seconds, up to ``DATABASE_MAX_RETRIES`` times; the tasks that use it are
idempotent, so running again is safe. Only these errors are retried: a bug or bad data
fails the same way every time.
"""

from __future__ import annotations

from typing import Any

from celery import Task
from django.conf import settings

from core.database import DATABASE_UNAVAILABLE, is_database_unavailable

#: Retries after the first attempt before a task gives up and fails: with production
#: settings the waits are 1, 2, 4, 8, 16, 32, 60, 60, 60, 60 s, about five minutes of
#: outage (a restart or a failover takes well under that).
DATABASE_MAX_RETRIES = 10


def _longest_wait() -> int:
    """Return the longest countdown between two attempts, in seconds.

    A retried message waits in the worker unacknowledged until its countdown ends;
    Redis hands a message unacknowledged for longer than the visibility timeout to
    another worker, and the task would run twice. So wait at most a quarter of it (and
    at most a minute, so that recovery is noticed soon).
    """
    return max(1, min(60, settings.CELERY_VISIBILITY_TIMEOUT // 4))


#: Keyword arguments of ``shared_task`` that retry on an unavailable database.
DATABASE_RETRY: dict[str, Any] = {
    "autoretry_for": DATABASE_UNAVAILABLE,
    "retry_backoff": 1,
    "retry_backoff_max": _longest_wait(),
    # A handful of tasks at once cannot overload a database that comes back; a fixed
    # schedule keeps the outage a task survives predictable.
    "retry_jitter": False,
    "max_retries": DATABASE_MAX_RETRIES,
}


def retries_after(task: Task, error: BaseException) -> bool:
    """Return whether ``task`` will be retried for ``error`` (so it must not record a
    failure: the next attempt carries on with the work)."""
    return is_database_unavailable(error) and task.request.retries < (
        task.max_retries or 0
    )
