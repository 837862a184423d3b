"""Rules of other apps' models that depend on goals, registered with those apps."""

from goals.models import Goal
from metrics.models import KPI, Direction


def band_goals_block_direction_change(kpi: KPI, stored_direction: str) -> str:
    """Refuse switching a KPI to or from a target band while goals set its target (or
    band) the other way: those goals would no longer mean anything."""
    if Direction.TARGET_BAND not in {stored_direction, kpi.direction}:
        return ""
    if not Goal.objects.filter(kpi_id=kpi.pk).exists():
        return ""
    what = "band" if stored_direction == Direction.TARGET_BAND else "target"
    return (
        f"Goals on this KPI set a {what}; change or delete them before switching to "
        "or from a target band."
    )
