"""Period arithmetic for KPI frequencies (pure: no ORM).

A period is named by its first day: a Monday for weekly KPIs, the 1st of the month for
monthly ones, and the 1st of January, April, July or October for quarterly ones.
"""

import datetime as dt
from collections.abc import Iterator

WEEKLY = "weekly"
MONTHLY = "monthly"
QUARTERLY = "quarterly"


def period_start(day: dt.date, frequency: str) -> dt.date:
    """Return the first day of the period of ``frequency`` that contains ``day``."""
    if frequency == WEEKLY:
        return day - dt.timedelta(days=day.weekday())
    if frequency == MONTHLY:
        return day.replace(day=1)
    if frequency == QUARTERLY:
        return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    raise ValueError(f"unknown frequency {frequency!r}")


def is_period_start(day: dt.date, frequency: str) -> bool:
    """Return whether ``day`` is the first day of a period of ``frequency``."""
    return period_start(day, frequency) == day


def describe_period_start(frequency: str) -> str:
    """Return, in words, which days may name a period of ``frequency``."""
    return {
        WEEKLY: "a Monday",
        MONTHLY: "the first day of a month",
        QUARTERLY: "the first day of a quarter (1 Jan, 1 Apr, 1 Jul or 1 Oct)",
    }[frequency]


def next_period(start: dt.date, frequency: str) -> dt.date:
    """Return the first day of the period after the one starting on ``start``."""
    if frequency == WEEKLY:
        return start + dt.timedelta(days=7)
    months = 1 if frequency == MONTHLY else 3
    month_index = start.year * 12 + start.month - 1 + months
    return dt.date(month_index // 12, month_index % 12 + 1, 1)


def period_range(first: dt.date, last: dt.date, frequency: str) -> Iterator[dt.date]:
    """Yield the period starts from the period holding ``first`` to the one holding ``last``."""
    current = period_start(first, frequency)
    while current <= last:
        yield current
        current = next_period(current, frequency)
