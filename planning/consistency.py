"""Can the silos' goals be met together? The knock-on of one goal on another (pure).

A leader goal moves its KPI from ``baseline`` to ``target``. Per period, that is a change
of the leader's level of

- ``(target - baseline) / n`` for a sum KPI (totals over the goal's n periods),
- ``target - baseline`` for a mean or last KPI (a level);

a band goal aims at its band's middle. An effect ``e`` (units of the affected KPI per unit
of the leader, per period, ``lag`` periods later: the observed effect of a conflict, or the
expected effect the CCO team declared on a link) carries it onto the affected KPI:
``e x change`` per period, from ``lag`` periods after the leader goal's first period. On an
affected **sum** goal that adds up over its periods reached by the knock-on; on a level
goal it shifts the level. The confidence interval of ``e`` gives the knock-on's range.

The affected goal's attainment *without* the knock-on is 1 (it is planned to reach its
target); *with* it, the attainment its target plus the knock-on would reach. A knock-on
that takes that attainment down by at least the margin (default 25 points) is a goal
contradiction: both goals cannot be met as planned.

Assumptions, said plainly: effects are linear and additive, the estimated effect holds at
the size of the planned change (it was measured on the changes history shows), and the
lag counts the affected KPI's periods. It is a planning check, not a forecast.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from goals import progress
from metrics import periods as period_math

#: The drop in the affected goal's attainment that makes a contradiction.
DEFAULT_MARGIN = 0.25


@dataclass(frozen=True)
class GoalPlan:
    """What a goal plans: its KPI's direction and aggregation, baseline, target (or
    band) and periods."""

    direction: str
    aggregation: str
    frequency: str
    baseline: float
    target: float | None
    target_low: float | None
    target_high: float | None
    period_start: dt.date
    period_end: dt.date

    @property
    def periods(self) -> list[dt.date]:
        return list(
            period_math.period_range(self.period_start, self.period_end, self.frequency)
        )

    @property
    def aim(self) -> float:
        """The value the goal aims at: its target, or its band's middle."""
        if self.target is not None:
            return self.target
        # The database's check: a goal without a target has a band.
        assert self.target_low is not None
        assert self.target_high is not None
        return (self.target_low + self.target_high) / 2

    def change_per_period(self) -> float:
        """The planned change of the KPI's level per period (see the module)."""
        change = self.aim - self.baseline
        if self.aggregation == "sum":
            return change / max(len(self.periods), 1)
        return change


@dataclass(frozen=True)
class Projection:
    """One goal's knock-on on another: the change per period of the leader, the
    knock-on on the affected goal's aggregate (with its range), and the affected goal's
    attainment without and with it (with its range)."""

    leader_change: float
    periods_reached: int
    knock_on: float
    knock_on_low: float
    knock_on_high: float
    attainment_without: float
    attainment_with: float
    attainment_with_low: float
    attainment_with_high: float

    @property
    def drop(self) -> float:
        return self.attainment_without - self.attainment_with

    def contradicts(self, margin: float = DEFAULT_MARGIN) -> bool:
        # Rounded: a drop of exactly the margin counts, whatever the float error.
        return round(self.drop, 9) >= margin


def periods_reached(leader: GoalPlan, affected: GoalPlan, lag: int) -> int:
    """How many of the affected goal's periods the knock-on reaches: those from ``lag``
    periods after the leader goal's first period on."""
    first = leader.period_start
    for _ in range(lag):
        first = period_math.next_period(
            period_math.period_start(first, affected.frequency), affected.frequency
        )
    return sum(1 for period in affected.periods if period >= first)


def project(
    leader: GoalPlan,
    affected: GoalPlan,
    *,
    effect: float,
    effect_low: float | None,
    effect_high: float | None,
    lag: int,
) -> Projection | None:
    """Return the leader goal's knock-on on the affected goal; None when it reaches none
    of the affected goal's periods."""
    reached = periods_reached(leader, affected, lag)
    if reached == 0:
        return None
    change = leader.change_per_period()
    scale = reached if affected.aggregation == "sum" else 1
    ends: Sequence[float] = sorted(
        e * change * scale
        for e in (
            effect if effect_low is None else effect_low,
            effect if effect_high is None else effect_high,
        )
    )
    knock_on = effect * change * scale

    def attained(shift: float) -> float:
        value = progress.attainment(
            direction=affected.direction,
            baseline=affected.baseline,
            actual=affected.aim + shift,
            target=affected.target,
            target_low=affected.target_low,
            target_high=affected.target_high,
        )
        assert value is not None  # a finite actual always has an attainment
        return value

    with_ends = sorted(attained(end) for end in ends)
    return Projection(
        leader_change=change,
        periods_reached=reached,
        knock_on=knock_on,
        knock_on_low=ends[0],
        knock_on_high=ends[1],
        attainment_without=attained(0.0),
        attainment_with=attained(knock_on),
        attainment_with_low=with_ends[0],
        attainment_with_high=with_ends[1],
    )
