"""Pace: the attainment a goal should have reached by now, and its status (pure: no ORM).

A goal runs over its periods ``p1 .. pn``. By the end of period ``pk`` it is expected
to have covered the share ``s_k`` of its way from baseline to target:

- **linear**: ``s_k = k / n``;
- **seasonal** (a sum KPI, such as deals or tickets, whose same periods one year earlier
  all have a value, none negative, and a positive total): ``s_k`` is last year's
  cumulative share, ``(v'_1 + .. + v'_k) / (v'_1 + .. + v'_n)``, so that a December
  that always brings a fifth of the year's deals is expected to again.

A sum goal's baseline and target are totals over all its periods, so its actual to date
is compared with the totals pro rata: attainment to date is
``(actual_to_date - baseline * s) / (target - baseline)`` (higher is better; mirrored for
lower is better; a band is scaled by ``s``). On pace it equals ``s``; at the due period
it is the goal's final attainment; and a sum goal no longer reads 0% until its running
total passes last year's whole total. A mean or last goal's attainment is the usual one
(its actual is already a level, not a running total).

The expected attainment is ``s`` (1 for a target band: a band is to be held all along).
The pace is read *as of* the later of the last period with a value and the last
complete period before today (the current period is not over, and its value is usually
not in yet): a silo whose figures stop coming in falls behind its pace instead of
standing still on its last good month. A figures row is read as of its own period.
Status, from the attainment ``a`` and the expected ``e``:

- ``met``: ``a >= 1`` (for a sum goal, only at its due period: a running total can still
  fall short);
- ``off_track``: the due period is reached and ``a < 1``, or ``a < e * (1 - OFF_TRACK_BEHIND)``;
- ``at_risk``: ``a < e * (1 - AT_RISK_BEHIND)`` (more than 25% behind pace);
- ``on_track``: otherwise;
- ``no_data``: no period has a value yet.

Assumptions, said plainly: linear pace assumes the improvement accrues evenly; the
seasonal shape assumes this year's periods weigh as last year's did. Neither knows about
a planned one-off (a launch, a price change): the status is a prompt to look, not a
forecast.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from goals import progress
from metrics import periods as period_math

LINEAR = "linear"
SEASONAL = "seasonal"
SHAPES = (LINEAR, SEASONAL)

ON_TRACK = "on_track"
AT_RISK = "at_risk"
OFF_TRACK = "off_track"
MET = "met"
NO_DATA = "no_data"

#: Every status, in the order a person reads them (best first).
STATUSES = (MET, ON_TRACK, AT_RISK, OFF_TRACK, NO_DATA)
STATUS_LABELS = {
    MET: "met",
    ON_TRACK: "on track",
    AT_RISK: "at risk",
    OFF_TRACK: "off track",
    NO_DATA: "no data",
}

#: More than this share behind the expected attainment: at risk.
AT_RISK_BEHIND = 0.25
#: More than this share behind: off track.
OFF_TRACK_BEHIND = 0.5


def year_before(period: dt.date, frequency: str) -> dt.date:
    """Return the same period one year earlier (52 weeks for a weekly KPI, so that a
    Monday stays a Monday)."""
    if frequency == period_math.WEEKLY:
        return period - dt.timedelta(weeks=52)
    return period.replace(year=period.year - 1)


@dataclass(frozen=True)
class Shape:
    """The cumulative share expected by the end of each of a goal's periods."""

    shares: Mapping[dt.date, float]
    kind: str
    last_period: dt.date


def shape(
    *,
    periods: Sequence[dt.date],
    frequency: str,
    aggregation: str,
    prior: Mapping[dt.date, float] | None = None,
) -> Shape:
    """Return the goal's pace shape over ``periods`` (its period starts, in order).

    ``prior`` maps last year's period starts to their values; it makes a sum goal's
    shape seasonal when it covers every period with values >= 0 and a positive total.
    """
    if not periods:
        raise ValueError("a goal has at least one period")
    count = len(periods)
    linear = {period: (index + 1) / count for index, period in enumerate(periods)}
    if aggregation != "sum" or not prior:
        return Shape(linear, LINEAR, periods[-1])
    values = [prior.get(year_before(period, frequency)) for period in periods]
    if any(value is None or value < 0 for value in values):
        return Shape(linear, LINEAR, periods[-1])
    known = [float(value) for value in values if value is not None]
    total = sum(known)
    if total <= 0:
        return Shape(linear, LINEAR, periods[-1])
    shares: dict[dt.date, float] = {}
    running = 0.0
    for period, value in zip(periods, known, strict=True):
        running += value
        shares[period] = min(1.0, running / total)
    shares[periods[-1]] = 1.0
    return Shape(shares, SEASONAL, periods[-1])


def goal_periods(start: dt.date, end: dt.date, frequency: str) -> list[dt.date]:
    """Return the period starts a goal runs over, first to due period."""
    return list(period_math.period_range(start, end, frequency))


def attainment_to_date(
    *,
    direction: str,
    aggregation: str,
    baseline: float,
    actual: float | None,
    share: float,
    target: float | None = None,
    target_low: float | None = None,
    target_high: float | None = None,
) -> float | None:
    """Return the goal's attainment with ``share`` of its periods' weight behind it.

    A sum goal's totals are taken pro rata (see the module's docstring); other goals'
    attainment does not depend on ``share``.
    """
    if aggregation == "sum" and share < 1:
        if direction == progress.TARGET_BAND:
            if target_low is not None and target_high is not None:
                target_low, target_high = target_low * share, target_high * share
        elif target is not None:
            target = target - baseline * (1 - share)
            baseline = baseline * share
    return progress.attainment(
        direction=direction,
        baseline=baseline,
        actual=actual,
        target=target,
        target_low=target_low,
        target_high=target_high,
    )


def expected_attainment(direction: str, share: float) -> float:
    """Return the attainment on pace at ``share`` (a band is to be held throughout)."""
    return 1.0 if direction == progress.TARGET_BAND else share


def status(
    *,
    attainment: float | None,
    expected: float | None,
    final: bool,
    aggregation: str,
) -> str:
    """Return the goal's status (see the module's docstring for the rule)."""
    if attainment is None or expected is None:
        return NO_DATA
    if attainment >= 1 and (final or aggregation != "sum"):
        return MET
    if final:
        return OFF_TRACK
    if attainment < expected * (1 - OFF_TRACK_BEHIND):
        return OFF_TRACK
    if attainment < expected * (1 - AT_RISK_BEHIND):
        return AT_RISK
    return ON_TRACK


def reading_period(
    *,
    latest: dt.date | None,
    today: dt.date | None,
    frequency: str,
    goal_shape: Shape,
) -> dt.date | None:
    """Return the goal period the pace is read at: the later of ``latest`` and the
    last complete period before ``today``, within the goal's periods (None before the
    goal's first period has ended and without a value)."""
    candidates = [latest] if latest is not None else []
    if today is not None:
        current = period_math.period_start(today, frequency)
        complete = [p for p in goal_shape.shares if p < current]
        if complete:
            candidates.append(max(complete))
    if not candidates:
        return None
    return min(max(candidates), goal_shape.last_period)


@dataclass(frozen=True)
class Pace:
    """A goal's attainment to date, the attainment expected by then, and its status.

    ``as_of`` is the period the pace is read at (see :func:`reading_period`);
    ``latest`` the last period with a value; ``shape`` is ``linear`` or
    ``seasonal``.
    """

    attainment: float | None
    expected: float | None
    status: str
    shape: str
    as_of: dt.date | None
    latest: dt.date | None = None

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]


def pace(
    *,
    direction: str,
    aggregation: str,
    baseline: float,
    actual: float | None,
    latest: dt.date | None,
    goal_shape: Shape,
    frequency: str,
    today: dt.date | None = None,
    target: float | None = None,
    target_low: float | None = None,
    target_high: float | None = None,
) -> Pace:
    """Return the pace of a goal whose actual to date is ``actual``, its last value in
    ``latest``, read on ``today`` (None: as of ``latest`` alone)."""
    as_of = reading_period(
        latest=latest, today=today, frequency=frequency, goal_shape=goal_shape
    )
    share = goal_shape.shares.get(as_of) if as_of is not None else None
    if actual is None or share is None:
        return Pace(None, None, NO_DATA, goal_shape.kind, as_of, latest)
    try:
        attained = attainment_to_date(
            direction=direction,
            aggregation=aggregation,
            baseline=baseline,
            actual=actual,
            share=share,
            target=target,
            target_low=target_low,
            target_high=target_high,
        )
    except ValueError:
        # A goal whose shape does not fit its KPI's direction (possible only by
        # bypassing validation) has no meaningful attainment.
        attained = None
    expected = expected_attainment(direction, share)
    return Pace(
        attainment=attained,
        expected=expected if attained is not None else None,
        status=status(
            attainment=attained,
            expected=expected,
            final=as_of == goal_shape.last_period,
            aggregation=aggregation,
        ),
        shape=goal_shape.kind,
        as_of=as_of,
        latest=latest,
    )
