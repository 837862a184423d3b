"""Put every KPI on the grids it is compared on (pure: no ORM).

A pair of KPIs is tested on the grid of the coarser of their two frequencies: two
monthly KPIs on the monthly grid, a monthly leader and a quarterly follower on the
quarterly grid (lags in quarters), a weekly KPI and a monthly one on the monthly grid.
So each grid holds its own (*native*) KPIs and every finer KPI aggregated to it by the
KPI's own aggregation; pairs of two aggregated KPIs are not tested there (they were on
their own grid).

Aggregation, and when a coarser period has a value:

- months to a quarter: ``sum`` of all three months (all three present), ``mean`` of
  the months present (at least two), ``last``: the third month (present);
- weeks to a month or a quarter, by the days each week has in it: ``sum`` of each
  week's value x its share of days in the period (every week that overlaps the period
  present), ``mean`` weighted by those days (at least half the period's days
  covered), ``last``: the week holding the period's last day (present).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from metrics import periods

#: Grids from the finest to the coarsest, with the periods in a year.
ORDER = (periods.WEEKLY, periods.MONTHLY, periods.QUARTERLY)
SEASON = {periods.WEEKLY: 52, periods.MONTHLY: 12, periods.QUARTERLY: 4}
UNIT = {periods.WEEKLY: "week", periods.MONTHLY: "month", periods.QUARTERLY: "quarter"}


@dataclass(frozen=True)
class Series:
    """One KPI's stored values in period order, and what the grids need to know."""

    kpi_id: int
    silo_id: int
    frequency: str
    aggregation: str
    sign: float  # +1 higher is better, -1 lower is better
    rank: int  # place along the value chain (silo position, then key)
    periods: Sequence[dt.date]
    values: Sequence[float]


@dataclass(eq=False)
class Grid:
    """One frequency's grid: rows are consecutive periods, columns KPIs.

    ``levels`` hold raw values (NaN where missing); ``native`` says which columns are
    KPIs of this frequency; ``position`` gives each row's place in the year.
    """

    frequency: str
    first_period: dt.date
    kpi_ids: np.ndarray
    silo_ids: np.ndarray
    sign: np.ndarray
    rank: np.ndarray
    native: np.ndarray
    levels: np.ndarray

    @property
    def season(self) -> int:
        return SEASON[self.frequency]

    def period_starts(self) -> list[dt.date]:
        days = [self.first_period]
        for _ in range(self.levels.shape[0] - 1):
            days.append(periods.next_period(days[-1], self.frequency))
        return days

    def positions(self) -> np.ndarray:
        """Each row's place in the year (0..season-1)."""
        return np.array([position(day, self.frequency) for day in self.period_starts()])


def number(day: dt.date, frequency: str) -> int:
    """Number consecutive periods of one frequency with consecutive integers."""
    if frequency == periods.MONTHLY:
        return day.year * 12 + day.month - 1
    if frequency == periods.QUARTERLY:
        return day.year * 4 + (day.month - 1) // 3
    return (day.toordinal() - 1) // 7  # weeks start on Monday; date(1, 1, 1) is one


def position(day: dt.date, frequency: str) -> int:
    """The period's place in its year: month 0-11, quarter 0-3, ISO week 0-51."""
    if frequency == periods.MONTHLY:
        return day.month - 1
    if frequency == periods.QUARTERLY:
        return (day.month - 1) // 3
    return min(day.isocalendar().week, 52) - 1


def build(series: Sequence[Series]) -> list[Grid]:
    """Return one grid per frequency that has KPIs of its own, finest first."""
    grids = []
    for index, frequency in enumerate(ORDER):
        native = [s for s in series if s.frequency == frequency and len(s.periods)]
        if not native:
            continue
        finer = [s for s in series if s.frequency in ORDER[:index] and len(s.periods)]
        columns: list[tuple[Series, dict[int, float]]] = []
        for item in native:
            columns.append(
                (
                    item,
                    {
                        number(day, frequency): value
                        for day, value in zip(item.periods, item.values, strict=True)
                    },
                )
            )
        for item in finer:
            aggregated = aggregate(item, frequency)
            if aggregated:
                columns.append((item, aggregated))
        numbers = [n for _, values in columns for n in values]
        if not numbers:
            continue
        first, last = min(numbers), max(numbers)
        levels = np.full((last - first + 1, len(columns)), np.nan)
        for column, (_, values) in enumerate(columns):
            rows = np.fromiter((n - first for n in values), dtype=np.int64)
            levels[rows, column] = np.fromiter(values.values(), dtype=float)
        grids.append(
            Grid(
                frequency=frequency,
                first_period=_start_of(first, frequency),
                kpi_ids=np.array([s.kpi_id for s, _ in columns], dtype=np.int64),
                silo_ids=np.array([s.silo_id for s, _ in columns], dtype=np.int64),
                sign=np.array([s.sign for s, _ in columns], dtype=float),
                rank=np.array([s.rank for s, _ in columns], dtype=np.int64),
                native=np.array([s.frequency == frequency for s, _ in columns]),
                levels=levels,
            )
        )
    return grids


def _start_of(period_number: int, frequency: str) -> dt.date:
    if frequency == periods.MONTHLY:
        return dt.date(period_number // 12, period_number % 12 + 1, 1)
    if frequency == periods.QUARTERLY:
        return dt.date(period_number // 4, 3 * (period_number % 4) + 1, 1)
    return dt.date.fromordinal(period_number * 7 + 1)


def aggregate(item: Series, frequency: str) -> dict[int, float]:
    """Return ``item``'s values on the coarser ``frequency`` (period number -> value)."""
    if item.frequency == periods.MONTHLY and frequency == periods.QUARTERLY:
        return _months_to_quarters(item)
    if item.frequency == periods.WEEKLY:
        return _weeks_to(item, frequency)
    raise ValueError(f"cannot aggregate {item.frequency} to {frequency}")


def _months_to_quarters(item: Series) -> dict[int, float]:
    quarters: dict[int, dict[int, float]] = {}
    for day, value in zip(item.periods, item.values, strict=True):
        quarters.setdefault(number(day, periods.QUARTERLY), {})[(day.month - 1) % 3] = (
            value
        )
    result = {}
    for quarter, months in quarters.items():
        if item.aggregation == "sum" and len(months) == 3:
            result[quarter] = float(sum(months.values()))
        elif item.aggregation == "mean" and len(months) >= 2:
            result[quarter] = float(np.mean(list(months.values())))
        elif item.aggregation == "last" and 2 in months:
            result[quarter] = float(months[2])
    return result


def _weeks_to(item: Series, frequency: str) -> dict[int, float]:
    # Spread each week over its days, then gather the days by period.
    first_day = item.periods[0]
    span = (item.periods[-1] - first_day).days + 7
    value_of_day = np.full(span, np.nan)
    for day, value in zip(item.periods, item.values, strict=True):
        offset = (day - first_day).days
        value_of_day[offset : offset + 7] = value
    days = [first_day + dt.timedelta(days=offset) for offset in range(span)]
    by_period: dict[int, list[int]] = {}
    for offset, day in enumerate(days):
        by_period.setdefault(number(day, frequency), []).append(offset)
    result = {}
    for period, offsets in by_period.items():
        start = _start_of(period, frequency)
        length = (periods.next_period(start, frequency) - start).days
        values = value_of_day[offsets]
        covered = ~np.isnan(values)
        if item.aggregation == "sum":
            if len(offsets) == length and covered.all():
                result[period] = float(values.sum() / 7.0)
        elif item.aggregation == "mean":
            if covered.sum() * 2 >= length:
                result[period] = float(values[covered].mean())
        elif item.aggregation == "last":
            last_day = periods.next_period(start, frequency) - dt.timedelta(days=1)
            offset = (last_day - first_day).days
            if 0 <= offset < span and not np.isnan(value_of_day[offset]):
                result[period] = float(value_of_day[offset])
    return result
