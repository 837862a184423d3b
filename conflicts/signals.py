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

from goals.models import Goal
from metrics.models import ImpactLink

_CYCLE_MODEL = "planning.PlanningCycle"


def refresh_declared() -> None:
    """Reconcile the declared side of the register (see services.reconcile)."""
    from conflicts.services import reconcile

    reconcile()


def schedule_refresh(**_: Any) -> None:
    """Queue one refresh for when the current transaction commits."""
    connection = transaction.get_connection()
    # A bulk import saves hundreds of goals in one transaction: refresh once.
    if any(callback is refresh_declared for _, callback, _ in connection.run_on_commit):
        return
    transaction.on_commit(refresh_declared)


for model in (Goal, ImpactLink, _CYCLE_MODEL):
    receiver(post_save, sender=model, dispatch_uid=f"conflicts-save-{model}")(
        schedule_refresh
    )
    receiver(post_delete, sender=model, dispatch_uid=f"conflicts-delete-{model}")(
        schedule_refresh
    )
