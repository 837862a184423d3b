"""A goal's own figures checked against its KPI: target or band, the side of the
baseline the target lies on, period starts and order. Pure: no queries beyond the
goal's KPI, which the caller has loaded."""

from __future__ import annotations

from typing import TYPE_CHECKING

from metrics import periods
from metrics.models import Direction

if TYPE_CHECKING:
    from goals.models import Goal


def goal_value_problems(goal: Goal) -> dict[str, str]:
    """Return the problems of ``goal``'s target, band and periods, by field."""
    errors: dict[str, str] = {}
    if goal.kpi_id is not None:
        is_band = goal.kpi.direction == Direction.TARGET_BAND
        if is_band and goal.target is not None:
            errors["target"] = (
                "A target-band KPI's goal sets a band (target low and high), "
                "not a single target."
            )
        if not is_band and (
            goal.target_low is not None or goal.target_high is not None
        ):
            errors["target_low"] = (
                f"{goal.kpi.get_direction_display()} KPIs take a single target, "
                "not a band."
            )
        if is_band and (goal.target_low is None or goal.target_high is None):
            errors["target_high"] = "Set both edges of the target band."
        if not is_band and goal.target is None:
            errors["target"] = "Set the target value."
        if goal.target is not None and goal.baseline is not None:
            # A target on the worsening side would turn progress upside down.
            if goal.kpi.direction == Direction.HIGHER_IS_BETTER and (
                goal.target < goal.baseline
            ):
                errors["target"] = (
                    "Higher is better for this KPI: the target must not be below "
                    f"the baseline ({goal.baseline:g})."
                )
            if goal.kpi.direction == Direction.LOWER_IS_BETTER and (
                goal.target > goal.baseline
            ):
                errors["target"] = (
                    "Lower is better for this KPI: the target must not be above "
                    f"the baseline ({goal.baseline:g})."
                )
        for field in ("period_start", "period_end"):
            day = getattr(goal, field)
            if day is not None and not periods.is_period_start(day, goal.kpi.frequency):
                errors[field] = (
                    f"A {goal.kpi.frequency} KPI's period must be "
                    f"{periods.describe_period_start(goal.kpi.frequency)}."
                )
    if (
        goal.target_low is not None
        and goal.target_high is not None
        and goal.target_low > goal.target_high
    ):
        errors["target_high"] = "The band's high edge must not be below its low edge."
    if goal.period_start and goal.period_end and goal.period_start > goal.period_end:
        errors["period_end"] = "The due period must not come before the first period."
    return errors
