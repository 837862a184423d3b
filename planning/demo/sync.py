"""Idempotent row writes for the demo seed: create what is missing, fix what differs."""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import models

from core.services import set_change_reason
from metrics.models import ImpactLink
from planning.demo.data import SOURCE


@dataclass
class StepCounts:
    """How many rows a step created, updated, or found as they should be."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def __str__(self) -> str:
        return (
            f"{self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged"
        )


ModelT = TypeVar("ModelT", bound=models.Model)


def _differs(instance: models.Model, name: str, wanted: Any) -> bool:
    model_field = instance._meta.get_field(name)
    if model_field.many_to_one:
        assert isinstance(model_field, models.Field)  # a foreign key, not a reverse one
        # Compare ids: reading the related object would cost a query per field.
        current = getattr(instance, model_field.attname)
        return current != (wanted.pk if wanted is not None else None)
    return getattr(instance, name) != wanted


def _sync(
    model: type[ModelT],
    counts: StepCounts,
    *,
    lookup: dict[str, Any],
    values: dict[str, Any],
) -> ModelT:
    """Return the row of ``model`` found by ``lookup``, made to hold ``values``.

    Create it when missing; save it only when a value differs, because every save
    writes a history row.
    """
    instance = model._default_manager.filter(**lookup).first()
    if instance is None:
        instance = model(**lookup, **values)
        counts.created += 1
    else:
        changed = [
            name for name, wanted in values.items() if _differs(instance, name, wanted)
        ]
        if not changed:
            counts.unchanged += 1
            return instance
        for name in changed:
            setattr(instance, name, values[name])
        counts.updated += 1
    if isinstance(instance, ImpactLink):
        instance.copy_silos()
    instance.full_clean()
    set_change_reason(instance, SOURCE)
    instance.save()
    return instance


def _add_missing(
    related: Any, wanted: Iterable[models.Model], counts: StepCounts
) -> None:
    """Add to the many-to-many ``related`` manager only the rows it lacks.

    ``add`` of rows already present still sends m2m_changed, which simple-history
    records as a change.
    """
    wanted = list(wanted)
    present = set(related.values_list("pk", flat=True))
    missing = [row for row in wanted if row.pk not in present]
    if missing:
        related.add(*missing)
    counts.created += len(missing)
    counts.unchanged += len(wanted) - len(missing)
