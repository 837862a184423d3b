"""Keep declared conflicts current as goals, links and cycles change.

A declared conflict must show as soon as the goal that makes it exists, before any data
or detection run. Goals, links and cycles live below this app and do not know about it,
so it listens to their saves and deletes and refreshes the register once per
transaction, after commit (the refresh is a constant number of queries).
"""

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from cycles.models import Cycle
from goals.models import Goal
from metrics.models import ImpactLink


def refresh_declared() -> None:
    """Reconcile the declared side of the register (see services.register_reconcile)."""
    from conflicts.services import register_reconcile

    register_reconcile()


def schedule_refresh(raw: bool = False, **_: Any) -> None:
    """Queue a refresh for when the current transaction commits, once per transaction.

    Raw saves (``loaddata`` of a fixture) are skipped: the rows may reference others not
    loaded yet, and whoever loads a fixture runs ``detect_conflicts`` afterwards.

    Every save queues a callback, but the callbacks of one transaction share a flag
    and only the first to run refreshes: a bulk import of hundreds of goals refreshes
    once, and a callback lost to a rolled-back savepoint cannot lose the refresh.
    """
    if raw:
        return
    connection = transaction.get_connection()
    pending = getattr(connection, "_ducttape_declared_refresh", None)
    if pending is None or pending["done"]:
        pending = {"done": False}
        connection._ducttape_declared_refresh = pending

    def run_once() -> None:
        if not pending["done"]:
            pending["done"] = True
            refresh_declared()

    # robust: the goal is saved whatever happens here; a failed refresh is logged, and
    # the next save or detection run refreshes again.
    transaction.on_commit(run_once, robust=True)


for model in (Goal, ImpactLink, Cycle):
    receiver(post_save, sender=model, dispatch_uid=f"conflicts-save-{model.__name__}")(
        schedule_refresh
    )
    receiver(
        post_delete, sender=model, dispatch_uid=f"conflicts-delete-{model.__name__}"
    )(schedule_refresh)
