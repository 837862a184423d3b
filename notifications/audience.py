"""Who "the managers of these silos" are: the app that owns silos says so here.

Events name the silos they concern by id; notifications knows no silo model. The app
that does (metrics) registers, in its AppConfig.ready, a function from silo ids to the
users who manage one of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

ManagersOf = Callable[[Sequence[int]], QuerySet]
_managers_of: list[ManagersOf] = []


def register_silo_managers(managers_of: ManagersOf) -> None:
    """Say how to find the users who manage any of some silos (replaces any before)."""
    _managers_of[:] = [managers_of]


def managers_of(silo_ids: Sequence[int]) -> QuerySet:
    """The users who manage any of ``silo_ids`` (nobody when no app said how)."""
    if not _managers_of or not silo_ids:
        return get_user_model().objects.none()
    return _managers_of[0](silo_ids)
