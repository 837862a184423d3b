"""Writes of silos, KPIs and declared links.

Every write validates the whole object (``full_clean``: field rules, model rules and
constraints) before saving, and records the acting user on the history row.
"""

from typing import Any, TypeVar

from django.db import models, transaction

from metrics.models import KPI, ImpactLink, Silo
from metrics.roles import User

ModelT = TypeVar("ModelT", bound=models.Model)


def validated_save(*, instance: ModelT, user: User, **fields: Any) -> ModelT:
    """Set ``fields`` on ``instance``, validate it fully, save it and return it.

    Raise django.core.exceptions.ValidationError naming each bad field; nothing is
    written then.
    """
    for name, value in fields.items():
        setattr(instance, name, value)
    instance.full_clean()
    # simple-history reads the acting user from here when there is no request user
    # (API calls authenticate with tokens, after its middleware has run).
    instance._history_user = user  # type: ignore[attr-defined]
    with transaction.atomic():
        instance.save()
    return instance


def recorded_delete(*, instance: models.Model, user: User) -> None:
    """Delete ``instance``, recording ``user`` on its last history row.

    Raise ProtectedError when other rows depend on it (a KPI with measurements).
    """
    instance._history_user = user  # type: ignore[attr-defined]
    instance.delete()


def silo_save(*, user: User, silo: Silo | None = None, **fields: Any) -> Silo:
    """Create a silo, or update ``silo``, from ``fields``."""
    return validated_save(instance=silo or Silo(), user=user, **fields)


def kpi_save(*, user: User, kpi: KPI | None = None, **fields: Any) -> KPI:
    """Create a KPI, or update ``kpi`` (whose silo and slug never change)."""
    return validated_save(instance=kpi or KPI(), user=user, **fields)


def link_save(
    *, user: User, link: ImpactLink | None = None, **fields: Any
) -> ImpactLink:
    """Declare a cross-silo impact link, or update ``link``; a new link records who."""
    if link is None:
        link = ImpactLink(declared_by=user if user.is_authenticated else None)
    return validated_save(instance=link, user=user, **fields)
