"""Figures: the flat table BI tools read, one row per (KPI, period) measurement.

Each row carries the measurement, its KPI and silo, and the target and attainment of the
silo goal that covers its period (the goal whose ``period_start``..``period_end`` holds
the period; when goals of several cycles do, the goal of the cycle that starts last).

Attainment is *to date*: the goal's actual is the KPI aggregated by its own aggregation
over the goal's periods from ``period_start`` up to and including the row's period (sum
or mean of those values; for "last", the row's own value), so a chart of a goal's rows
shows its progress month by month; the row of the due period carries the goal's final
attainment. A target-band goal has no single target: its ``target`` is null, and its
attainment measures the band.

``updated_at`` is the last change to anything the row shows: the measurement, an earlier
measurement counted in its to-date attainment, the covering goal, the KPI or the silo,
so ``updated_since`` finds every row whose content changed. (Deletions leave no trace
to find; re-read a period range to catch those.)

One SQL statement computes the rows (window functions for the to-date aggregates,
whatever the number of rows); only the attainment formula of ``goals.progress`` runs in
Python, per row, on the values the statement returns.
"""

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from typing import Any, NamedTuple

from django.db import connection
from django.utils.dateparse import parse_datetime

from cycles.models import Cycle
from goals import pace as pacing
from goals.models import Goal
from goals.selectors import goal_shapes
from metrics.models import Measurement


class Figure(NamedTuple):
    """One row of the figures table, its fields in the public column order."""

    period: dt.date
    silo: str
    silo_name: str
    kpi: str
    kpi_name: str
    unit: str
    direction: str
    value: float
    target: float | None
    attainment: float | None
    expected: float | None
    status: str | None
    updated_at: dt.datetime


#: The public column order (the CSV header and the JSON field order).
FIGURE_COLUMNS: tuple[str, ...] = Figure._fields


@dataclass(frozen=True)
class FigureFilters:
    """Which rows to return; None leaves a criterion out."""

    kpi: str | None = None
    silo: str | None = None
    period_after: dt.date | None = None
    period_before: dt.date | None = None
    updated_since: dt.datetime | None = None
    cycle: str | None = None


# The statement has two levels. The inner one joins each measurement to every goal that
# covers its period and computes the goal's to-date aggregates over the goal's periods;
# the outer one keeps, per measurement, the goal of the latest cycle start (an anti-join:
# cheaper than ranking, which would sort the whole table once more). Filters that
# keep all the earlier periods of the KPIs they keep (by KPI, silo or cycle, or cutting
# later periods) run inside, before the windows, so the database aggregates less; those
# that drop earlier periods or look at the to-date timestamp run outside, so a to-date
# aggregate still counts the periods that a filter hides. The windows skip rows without
# a goal (which share one NULL partition), and the mean is taken in Python as sum / count.
# Stored values lie below 1e15 in magnitude (core.bounds): no sum can overflow.
_SELECT = """
SELECT figure.period, figure.silo_slug, figure.silo_name, figure.kpi_key,
    figure.kpi_name, figure.unit, figure.direction, figure.value, figure.aggregation,
    figure.goal_id, figure.baseline, figure.target, figure.target_low,
    figure.target_high, figure.sum_to_date, figure.count_to_date, figure.updated_at,
    figure.goal_start, figure.goal_end, figure.frequency
FROM (
    SELECT
        measurement.period,
        measurement.value,
        silo.slug AS silo_slug,
        silo.name AS silo_name,
        kpi.key AS kpi_key,
        kpi.name AS kpi_name,
        kpi.unit,
        kpi.direction,
        kpi.aggregation,
        kpi.frequency,
        goal.id AS goal_id,
        goal.period_start AS goal_start,
        goal.period_end AS goal_end,
        goal.baseline,
        goal.target,
        goal.target_low,
        goal.target_high,
        SUM(measurement.value) FILTER (WHERE goal.id IS NOT NULL)
            OVER goal_to_date AS sum_to_date,
        COUNT(*) FILTER (WHERE goal.id IS NOT NULL)
            OVER goal_to_date AS count_to_date,
        GREATEST(
            measurement.updated_at,
            kpi.updated_at,
            silo.updated_at,
            COALESCE(goal.updated_at, measurement.updated_at),
            COALESCE(
                MAX(measurement.updated_at) FILTER (WHERE goal.id IS NOT NULL)
                    OVER goal_to_date,
                measurement.updated_at
            )
        ) AS updated_at,
        measurement.kpi_id,
        goal_cycle.start_date AS cycle_start,
        goal_cycle.id AS cycle_id
    FROM metrics_measurement AS measurement
    INNER JOIN metrics_kpi AS kpi ON kpi.id = measurement.kpi_id
    INNER JOIN metrics_silo AS silo ON silo.id = kpi.silo_id
    LEFT OUTER JOIN goals_goal AS goal
        ON goal.kpi_id = measurement.kpi_id
        AND measurement.period >= goal.period_start
        AND measurement.period <= goal.period_end
    LEFT OUTER JOIN {cycle_table} AS goal_cycle
        ON goal_cycle.id = goal.cycle_id
    WHERE {inner}
    WINDOW goal_to_date AS (PARTITION BY goal.id ORDER BY measurement.period)
) AS figure
WHERE NOT EXISTS (
    SELECT 1
    FROM goals_goal AS later_goal
    INNER JOIN {cycle_table} AS later_cycle
        ON later_cycle.id = later_goal.cycle_id
    WHERE later_goal.kpi_id = figure.kpi_id
        AND figure.period >= later_goal.period_start
        AND figure.period <= later_goal.period_end
        AND (later_cycle.start_date, later_cycle.id)
            > (figure.cycle_start, figure.cycle_id)
) AND {outer}
"""
_ORDER = " ORDER BY figure.kpi_key, figure.period"

#: The cycle's table, from its model (it moved once, when the cycle moved down). The
#: only name formatted into these statements; every value is a bound parameter.
_CYCLE_TABLE = Cycle._meta.db_table
_CYCLE_KPIS = (
    "kpi.id IN (SELECT cycle_goal.kpi_id FROM goals_goal AS cycle_goal"  # noqa: S608
    f" INNER JOIN {_CYCLE_TABLE} AS named_cycle"
    " ON named_cycle.id = cycle_goal.cycle_id WHERE named_cycle.name = %(cycle)s)"
)
_CYCLE_START = (
    f"(SELECT named_cycle.start_date FROM {_CYCLE_TABLE} AS named_cycle"  # noqa: S608
    " WHERE named_cycle.name = %(cycle)s)"
)
_CYCLE_END = (
    f"(SELECT named_cycle.end_date FROM {_CYCLE_TABLE} AS named_cycle"  # noqa: S608
    " WHERE named_cycle.name = %(cycle)s)"
)
_INNER_FILTERS = {
    "kpi": "kpi.key = %(kpi)s",
    "silo": "silo.slug = %(silo)s",
    "period_before": "measurement.period <= %(period_before)s",
    "cycle": f"{_CYCLE_KPIS} AND measurement.period <= {_CYCLE_END}",
}
_OUTER_FILTERS = {
    "period_after": "figure.period >= %(period_after)s",
    "updated_since": "figure.updated_at >= %(updated_since)s",
    "cycle": f"figure.period >= {_CYCLE_START}",
}

# Every measurement makes exactly one row, so without a filter on the to-date timestamp
# the rows are counted from the measurements alone, without the windows.
_COUNT = """
SELECT COUNT(*)
FROM metrics_measurement AS measurement
INNER JOIN metrics_kpi AS kpi ON kpi.id = measurement.kpi_id
INNER JOIN metrics_silo AS silo ON silo.id = kpi.silo_id
WHERE {inner}
"""
_COUNT_FILTERS = {
    **_INNER_FILTERS,
    "period_after": "measurement.period >= %(period_after)s",
    "cycle": f"{_CYCLE_KPIS} AND measurement.period >= {_CYCLE_START}"
    f" AND measurement.period <= {_CYCLE_END}",
}


class FigureQuery:
    """A lazy, filterable figures table, sliced and counted like a QuerySet.

    ``count()`` and a slice run one query each; ``iterator()`` reads the whole table
    through a server-side cursor, in chunks, so memory stays flat however many rows.
    """

    #: Each figure is one measurement (what django-filter and drf-spectacular ask for).
    model = Measurement

    def __init__(self, filters: FigureFilters | None = None) -> None:
        self.filters = filters or FigureFilters()

    def all(self) -> "FigureQuery":
        return self

    def filter(self, **criteria: Any) -> "FigureQuery":
        """Return a query with ``criteria`` (FigureFilters fields) added."""
        return FigureQuery(replace(self.filters, **criteria))

    def count(self) -> int:
        params = self._params()
        if "updated_since" in params:
            sql = f"SELECT COUNT(*) FROM ({self._sql()[0]}) AS counted"  # noqa: S608 (constant SQL, values are parameters)
        else:
            sql = _COUNT.format(inner=_where(_COUNT_FILTERS, params))
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return int(cursor.fetchone()[0])

    def __getitem__(self, window: slice) -> list[Figure]:
        if not isinstance(window, slice) or window.step is not None:
            raise TypeError("figures support only slices without a step")
        if window.stop is None:
            raise TypeError("a slice of figures needs an end: read all with iterator()")
        offset = max(window.start or 0, 0)
        sql, params = self._sql()
        sql += _ORDER + " LIMIT %(limit)s OFFSET %(offset)s"
        params.update(limit=max(window.stop - offset, 0), offset=offset)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            shapes = Shapes()
            return [_figure(row, shapes) for row in cursor.fetchall()]

    def iterator(self, chunk_size: int = 5000) -> Iterator[Figure]:
        """Yield every figure in order, ``chunk_size`` rows in memory at a time."""
        for chunk in self.chunks(chunk_size):
            yield from chunk

    def chunks(self, chunk_size: int = 5000) -> Iterator[list[Figure]]:
        """Yield every figure in order, in lists of at most ``chunk_size``."""
        shapes = Shapes()
        for rows in self._raw_chunks(chunk_size):
            yield [_figure(row, shapes) for row in rows]

    def csv_chunks(self, chunk_size: int = 5000) -> Iterator[list[tuple[Any, ...]]]:
        """Yield every figure in order as CSV-ready tuples, ``chunk_size`` at a time.

        The columns are FIGURE_COLUMNS with ``updated_at`` as ISO 8601 text. Rows without
        a goal skip the attainment arithmetic altogether: the export streams a million
        rows, and per-row Python is where its time goes.
        """
        shapes = Shapes()
        for rows in self._raw_chunks(chunk_size):
            yield [_csv_row(row, shapes) for row in rows]

    def _raw_chunks(self, chunk_size: int) -> Iterator[list[tuple[Any, ...]]]:
        sql, params = self._sql()
        sql += _ORDER
        # Like QuerySet.iterator(): a named (server-side) cursor unless the deployment
        # turned them off (transaction-pooling PgBouncer).
        server_side = not connection.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS")
        if server_side and connection.vendor == "postgresql":
            yield from _postgresql_chunks(sql, params, chunk_size)
            return
        cursor = connection.chunked_cursor() if server_side else connection.cursor()
        with cursor:
            cursor.execute(sql, params)
            while rows := cursor.fetchmany(chunk_size):
                yield rows

    def _params(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for field in fields(FigureFilters):
            value = getattr(self.filters, field.name)
            if value is None or value == "":
                continue
            if isinstance(value, dt.datetime):
                value = connection.ops.adapt_datetimefield_value(
                    value.astimezone(dt.UTC) if value.tzinfo else value
                )
            elif isinstance(value, dt.date):
                value = connection.ops.adapt_datefield_value(value)
            params[field.name] = value
        return params

    def _sql(self) -> tuple[str, dict[str, Any]]:
        params = self._params()
        sql = _SELECT.format(
            inner=_where(_INNER_FILTERS, params),
            outer=_where(_OUTER_FILTERS, params),
            cycle_table=_CYCLE_TABLE,
        )
        if connection.vendor == "sqlite":
            # SQLite's many-argument max() is PostgreSQL's GREATEST (no argument of
            # this one is ever NULL, where the two would differ).
            sql = sql.replace("GREATEST(", "MAX(")
        return sql, params


def _where(conditions: dict[str, str], params: dict[str, Any]) -> str:
    return " AND ".join(conditions[name] for name in params if name in conditions) or (
        "1 = 1"
    )


def figure_list(**criteria: Any) -> FigureQuery:
    """Return the figures table, narrowed by ``criteria`` (see FigureFilters).

    Rows are ordered by KPI key, then period. Every role may read every silo's figures,
    as with measurements, so the table is not scoped to a user.
    """
    return FigureQuery(FigureFilters(**criteria))


def _postgresql_chunks(
    sql: str, params: dict[str, Any], chunk_size: int
) -> Iterator[list[tuple[Any, ...]]]:
    # psycopg's own named cursor rather than Django's, for the binary format: it halves
    # the time to load a million rows of floats and timestamps (exactly, too).
    connection.ensure_connection()
    with (
        connection.wrap_database_errors,
        connection.connection.cursor(
            name=f"figures_{uuid.uuid4().hex}",
            binary=True,
            # Outside a transaction the cursor must outlive the DECLARE's own.
            withhold=connection.get_autocommit(),
        ) as cursor,
    ):
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(chunk_size):
            yield rows


_GOAL_ID = 9
_UPDATED_AT = 16


class Shapes:
    """Every goal's pace shape (goals.pace), read when the first row with a goal needs
    one: two queries for the whole table, however many rows and goals."""

    def __init__(self) -> None:
        self._shapes: dict[int, pacing.Shape] | None = None

    def get(self, goal_id: int) -> pacing.Shape | None:
        if self._shapes is None:
            self._shapes = goal_shapes(Goal.objects.select_related("kpi"))
        return self._shapes.get(goal_id)


def _csv_row(row: tuple[Any, ...], shapes: Shapes) -> tuple[Any, ...]:
    if row[_GOAL_ID] is None and isinstance(row[0], dt.date):
        # period .. value as stored; no target, no attainment, no pace.
        return (*row[:8], None, None, None, None, iso_z(row[_UPDATED_AT]))
    figure = _figure(row, shapes)
    return (*figure[:-1], iso_z(figure.updated_at))


def iso_z(value: dt.datetime | str) -> str:
    """Return ``value`` as ISO 8601 in UTC with a ``Z`` (the JSON rows' form too)."""
    if isinstance(value, dt.datetime) and value.utcoffset() == dt.timedelta(0):
        # The connection's time zone is UTC: no conversion, just the suffix.
        return value.isoformat()[:-6] + "Z"
    return _as_utc(value).isoformat().removesuffix("+00:00") + "Z"


def _figure(row: tuple[Any, ...], shapes: Shapes) -> Figure:
    (
        period,
        silo_slug,
        silo_name,
        kpi_key,
        kpi_name,
        unit,
        direction,
        value,
        aggregation,
        goal_id,
        baseline,
        target,
        target_low,
        target_high,
        sum_to_date,
        count_to_date,
        updated_at,
        _goal_start,
        _goal_end,
        frequency,
    ) = row
    period = period if isinstance(period, dt.date) else dt.date.fromisoformat(period)
    attainment = expected = status = None
    shape = shapes.get(goal_id) if goal_id is not None else None
    if shape is not None:
        if aggregation == "sum":
            actual = sum_to_date
        elif aggregation == "mean":
            actual = sum_to_date / count_to_date
        else:
            actual = value if aggregation == "last" else None
        pace = pacing.pace(
            direction=direction,
            aggregation=aggregation,
            baseline=baseline,
            actual=actual,
            latest=period,
            goal_shape=shape,
            frequency=frequency,
            target=target,
            target_low=target_low,
            target_high=target_high,
        )
        attainment, expected, status = pace.attainment, pace.expected, pace.status
    return Figure(
        period,
        silo_slug,
        silo_name,
        kpi_key,
        kpi_name,
        unit,
        direction,
        value,
        target,
        attainment,
        expected,
        status,
        _as_utc(updated_at),
    )


def _as_utc(value: dt.datetime | str) -> dt.datetime:
    # PostgreSQL returns aware datetimes; SQLite, text in UTC without an offset.
    if isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is None:
            raise ValueError(f"not a timestamp: {value!r}")
        value = parsed
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)
