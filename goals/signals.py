"""Ask for a shared-goal roll-up when measurements of contributing KPIs change."""

from typing import Any

from django.dispatch import receiver

from goals import rollups
from metrics.signals import measurements_changed


@receiver(measurements_changed, dispatch_uid="goals-rollup-on-measurements")
def rollup_after_measurements(*, kpi_ids: list[int], **_: Any) -> None:
    """Schedule one coalesced roll-up (sent after commit, so the task sees the rows)."""
    rollups.rollup_schedule(kpi_ids)
