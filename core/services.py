"""Writes every app's services make the same way: validate fully, record who.

Every write validates the whole object (``full_clean``: field rules, model rules and
constraints) before saving, and records the acting user on the simple-history row.
"""

from collections.abc import Callable
from typing import Any, TypeVar

from django.db import models, transaction

from core.roles import User

ModelT = TypeVar("ModelT", bound=models.Model)


def set_history_user(instance: models.Model, user: User) -> None:
    """Record ``user`` as the author of the history row ``instance``'s next save or
    delete writes.

    simple-history reads the acting user from here when there is no request user
    (API calls authenticate with tokens, after its middleware has run).
    """
    instance._history_user = user  # type: ignore[attr-defined]  # simple-history's hook: read at save, no model field


def set_change_reason(instance: models.Model, reason: str) -> None:
    """Record ``reason`` on the history row ``instance``'s next save or delete writes."""
    instance._change_reason = reason  # type: ignore[attr-defined]  # simple-history's hook: read at save, no model field


def validated_save(*, instance: ModelT, user: User, **fields: Any) -> ModelT:
    """Set ``fields`` on ``instance``, validate it fully, save it and return it.

    Raise django.core.exceptions.ValidationError naming each bad field; nothing is
    written then.
    """
    for name, value in fields.items():
        setattr(instance, name, value)
    instance.full_clean()
    set_history_user(instance, user)
    with transaction.atomic():
        instance.save()
    return instance


def recorded_delete(*, instance: models.Model, user: User) -> None:
    """Delete ``instance``, recording ``user`` on its last history row.

    Raise ProtectedError when other rows depend on it (a KPI with measurements).
    """
    set_history_user(instance, user)
    instance.delete()


class _TrialRollback(Exception):
    """Raised inside :func:`trial_write` to roll its transaction back."""


def trial_write(write: Callable[[], object]) -> None:
    """Run ``write`` in a transaction and roll it back, whatever it did.

    A confirmation step asks before a write that has consequences: running the write
    first tells it whether the write would succeed (its ValidationError propagates),
    with the write's own rules and nothing else to keep in step. Callbacks it
    registered with ``transaction.on_commit`` (events, tasks) are dropped with it.
    """
    try:
        with transaction.atomic():
            write()
            raise _TrialRollback
    except _TrialRollback:
        pass
