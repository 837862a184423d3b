"""Writes of silos, KPIs and declared links.

Every write validates the whole object (``full_clean``: field rules, model rules and
constraints) before saving, and records the acting user on the history row.
"""

from typing import Any

from core.roles import User
from core.services import recorded_delete, validated_save
from metrics.models import KPI, ImpactLink, Silo

__all__ = ["kpi_save", "link_save", "recorded_delete", "silo_save", "validated_save"]


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
