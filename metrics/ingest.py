"""Bulk ingestion of measurements: validate every row, then upsert them all or none.

Pipelines push up to ``MAX_ROWS`` measurements per call; the admin's CSV import goes
through the same validation and the same upsert, with its own row limit and its own
reading of a value (a CSV cell is text). Every row is checked in Python first (two
queries whatever the number of rows: the KPIs named, and the silos the caller may
write), so that a refused request lists every problem of every row and writes nothing.
The write is then one statement per chunk of rows; on PostgreSQL an
``INSERT ... ON CONFLICT`` that only touches rows whose value or source differ, so
sending the same rows again changes nothing.
"""

import datetime as dt
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone

from core.bounds import magnitude_problem
from core.roles import User
from core.text import json_type_name, printable, quoted
from metrics import periods
from metrics.measurement_writes import ValidRow, upsert_portable, upsert_postgresql
from metrics.models import KPI, Measurement
from metrics.selectors import silo_ids_writable_by
from metrics.signals import measurements_changed


def _max_length(model: type[models.Model], name: str) -> int:
    """Return the ``max_length`` of ``model``'s text field ``name``."""
    field = model._meta.get_field(name)
    assert isinstance(field, models.CharField)
    assert field.max_length is not None
    return field.max_length


MAX_ROWS = 10_000
ROW_FIELDS = ("kpi", "period", "value", "source")
REQUIRED_FIELDS = ("kpi", "period", "value")
SOURCE_MAX_LENGTH = _max_length(Measurement, "source")

_KEY_PATTERN = re.compile(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*", re.ASCII)
_DATE_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_KEY_MAX_LENGTH = _max_length(KPI, "key")


@dataclass(frozen=True)
class RowError:
    """One problem of one row (``index`` None: of the request as a whole)."""

    index: int | None
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BulkResult:
    """How many measurements a bulk upsert created and how many it changed."""

    created: int
    updated: int


class BulkValidationError(Exception):
    """Raised with every problem found when any row is invalid; nothing was written."""

    def __init__(self, errors: list[RowError]) -> None:
        # Errors of the request as a whole (index None) come before the rows'.
        self.errors = sorted(
            errors, key=lambda error: -1 if error.index is None else error.index
        )
        super().__init__(f"{len(self.errors)} problem(s) in the measurements sent.")


@dataclass(frozen=True)
class _KPIInfo:
    id: int
    key: str
    silo_id: int
    silo_slug: str
    frequency: str


@dataclass(frozen=True)
class RowsChecked:
    """The outcome of checking rows: each row's values (None if it has a problem),
    and every problem found, in row order."""

    rows: list[ValidRow | None]
    errors: list[RowError]


#: Turn a row's ``value`` into a float, or raise ValueError with a message for a person.
ValueParser = Callable[[Any], float]
#: Name the row at an index in a message ("Row 3", "Line 5").
RowNamer = Callable[[int], str]


def json_number(value: Any) -> float:
    """Return a JSON number as a float; raise ValueError naming what came instead."""
    # bool is an int in Python, but true is not a number in JSON.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"Give a number; got {json_type_name(value)}.")
    try:
        return float(value)
    except OverflowError:
        return math.inf


def row_index_name(index: int) -> str:
    """Name a row of a JSON list by its index, as the API's errors do."""
    return f"Row {index}"


def measurements_check(
    *,
    user: User,
    rows: Sequence[Any],
    max_rows: int = MAX_ROWS,
    parse_value: ValueParser = json_number,
    name_row: RowNamer = row_index_name,
) -> RowsChecked:
    """Check every row against the rules of a stored measurement; write nothing.

    A row names a KPI of a silo ``user`` may write by its key, a period by the first
    day of one of the KPI's periods (``YYYY-MM-DD``), a ``value`` that ``parse_value``
    reads as a number whose magnitude is below ``core.bounds.MAX_MAGNITUDE``, and
    optionally a ``source``; a (KPI, period) may come once. Two queries whatever the
    number of rows. More than ``max_rows`` rows is one problem of the request as a
    whole (index None), and the rows are then not looked at.
    """
    if len(rows) > max_rows:
        message = f"At most {max_rows} rows per request; got {len(rows)}."
        return RowsChecked([], [RowError(None, "measurements", message)])
    return _check_rows(user, rows, parse_value, name_row)


def measurements_validate(
    *,
    user: User,
    rows: Sequence[Any],
    max_rows: int = MAX_ROWS,
    parse_value: ValueParser = json_number,
    name_row: RowNamer = row_index_name,
) -> list[ValidRow]:
    """Return the rows' values, one per row in the rows' order, if every row is valid.

    The rules are ``measurements_check``'s. Raise ``BulkValidationError`` listing every
    problem of every row otherwise.
    """
    checked = measurements_check(
        user=user,
        rows=rows,
        max_rows=max_rows,
        parse_value=parse_value,
        name_row=name_row,
    )
    if checked.errors:
        raise BulkValidationError(checked.errors)
    return [row for row in checked.rows if row is not None]


def measurements_bulk_upsert(
    *,
    user: User,
    rows: Sequence[Any],
    max_rows: int = MAX_ROWS,
    parse_value: ValueParser = json_number,
    name_row: RowNamer = row_index_name,
) -> BulkResult:
    """Create or update one measurement per row, all in one transaction, or none.

    Each row names a KPI by key, a period by its first day (``YYYY-MM-DD``), a finite
    number ``value`` and optionally a ``source`` (see ``measurements_check``). A row
    that matches a stored measurement in both value and source is left alone (its
    ``updated_at`` keeps). ``rows`` comes straight from a JSON body or a CSV file, so
    anything in it is checked, not trusted. Raise ``BulkValidationError`` listing every
    problem of every row (and write nothing) if any row is invalid, or if there are
    more than ``max_rows``. After the commit, send ``measurements_changed`` for the
    KPIs whose measurements changed.
    """
    valid_rows = measurements_validate(
        user=user,
        rows=rows,
        max_rows=max_rows,
        parse_value=parse_value,
        name_row=name_row,
    )
    if not valid_rows:
        return BulkResult(created=0, updated=0)
    # A fixed order takes row locks in the same order in concurrent requests, which
    # keeps two pipelines writing overlapping rows from deadlocking.
    valid_rows.sort(key=lambda row: (row[0], row[1]))
    now = timezone.now()
    write = upsert_postgresql if connection.vendor == "postgresql" else upsert_portable
    with transaction.atomic():
        created, updated = write(valid_rows, now)
        if created or updated:
            kpi_ids = sorted({row[0] for row in valid_rows})
            transaction.on_commit(
                lambda: measurements_changed.send(sender=Measurement, kpi_ids=kpi_ids),
                robust=True,
            )
    return BulkResult(created=created, updated=updated)


def _check_rows(
    user: User, rows: Sequence[Any], parse_value: ValueParser, name_row: RowNamer
) -> RowsChecked:
    """Check each row; see ``measurements_check``."""
    errors: list[RowError] = []
    kpis = _kpis_by_key(rows)
    writable_silo_ids = silo_ids_writable_by(user) if kpis else set()
    first_index: dict[tuple[str, dt.date], int] = {}
    checked_rows: list[ValidRow | None] = []

    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            message = "Each row must be a JSON object with kpi, period and value; "
            errors.append(
                RowError(index, "row", f"{message}got {json_type_name(row)}.")
            )
            checked_rows.append(None)
            continue
        valid_row, row_errors = _check_row(
            index,
            row,
            kpis,
            writable_silo_ids,
            first_index,
            parse_value,
            name_row,
        )
        errors.extend(row_errors)
        checked_rows.append(valid_row)
    return RowsChecked(checked_rows, errors)


def _check_row(
    index: int,
    row: dict[Any, Any],
    kpis: dict[str, _KPIInfo],
    writable_silo_ids: set[int] | None,
    first_index: dict[tuple[str, dt.date], int],
    parse_value: ValueParser,
    name_row: RowNamer,
) -> tuple[ValidRow | None, list[RowError]]:
    """Return the row's values, or None and every problem of the row, field by field.

    ``first_index`` records where each (KPI key, period) first appeared, to name the
    earlier row (with ``name_row``) when one comes twice.
    """
    errors: list[RowError] = []

    def refuse(field: str, message: str) -> None:
        errors.append(RowError(index, field, message))

    for name in REQUIRED_FIELDS:
        if name not in row:
            refuse(name, "This field is required.")
    kpi: _KPIInfo | None = None
    period: dt.date | None = None
    value: float | None = None
    if "kpi" in row:
        kpi, message = _check_kpi(row["kpi"], kpis, writable_silo_ids)
        if message:
            refuse("kpi", message)
    if "period" in row:
        period, message = _check_period(row["period"], kpi)
        if message:
            refuse("period", message)
        if isinstance(row.get("kpi"), str) and period is not None:
            earlier = first_index.setdefault((row["kpi"], period), index)
            if earlier != index:
                refuse(
                    "period",
                    f"{name_row(earlier)} already gives KPI {quoted(row['kpi'])} a "
                    f"value for {period:%Y-%m-%d}; send each KPI and period once.",
                )
    if "value" in row:
        value, message = _check_value(row["value"], parse_value)
        if message:
            refuse("value", message)
    source, message = _check_source(row.get("source", ""))
    if message:
        refuse("source", message)
    for name in row:
        if name not in ROW_FIELDS:
            refuse(
                printable(str(name)),
                f"Unknown field {quoted(str(name))}; a row has kpi, period, value "
                "and (optionally) source.",
            )

    if errors or kpi is None or period is None or value is None:
        return None, errors
    return ValidRow(kpi.id, period, value, source), errors


def _kpis_by_key(rows: Sequence[Any]) -> dict[str, _KPIInfo]:
    """Load every KPI the rows name, in one query."""
    keys = {
        row["kpi"]
        for row in rows
        if isinstance(row, dict)
        and isinstance(row.get("kpi"), str)
        and len(row["kpi"]) <= _KEY_MAX_LENGTH
        and _KEY_PATTERN.fullmatch(row["kpi"])
    }
    if not keys:
        return {}
    return {
        key: _KPIInfo(id=id_, key=key, silo_id=silo_id, silo_slug=slug, frequency=freq)
        for id_, key, silo_id, slug, freq in KPI.objects.filter(key__in=keys)
        .order_by()
        .values_list("id", "key", "silo_id", "silo__slug", "frequency")
    }


def _check_kpi(
    key: Any, kpis: dict[str, _KPIInfo], writable_silo_ids: set[int] | None
) -> tuple[_KPIInfo | None, str]:
    """Return the KPI named by ``key`` and "", or what may be wrong and a message.

    A KPI the caller may not write is still returned, so the period can be checked
    against its frequency and every problem of the row reported.
    """
    if not isinstance(key, str):
        return None, (
            "Give the KPI's key as a string, such as sales.deals_closed; "
            f"got {json_type_name(key)}."
        )
    kpi = kpis.get(key)
    if kpi is None:
        return None, f"Unknown KPI {quoted(key)}."
    if writable_silo_ids is not None and kpi.silo_id not in writable_silo_ids:
        return kpi, (
            f"KPI {quoted(key)} belongs to silo {quoted(kpi.silo_slug)}, which you do "
            "not manage; you may write only the KPIs of your own silos."
        )
    return kpi, ""


def _check_period(text: Any, kpi: _KPIInfo | None) -> tuple[dt.date | None, str]:
    """Return the period's date (None if not a date) and a message if it is wrong."""
    if not isinstance(text, str) or not _DATE_PATTERN.fullmatch(text):
        return None, (
            "Give the period's first day as a date, YYYY-MM-DD; got "
            f"{quoted(text) if isinstance(text, str) else json_type_name(text)}."
        )
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        return None, f"{quoted(text)} is not a date."
    if kpi is not None and not periods.is_period_start(day, kpi.frequency):
        return day, (
            f"KPI {quoted(kpi.key)} is {kpi.frequency}: its period must be "
            f"{periods.describe_period_start(kpi.frequency)}; got {text}."
        )
    return day, ""


def _check_value(value: Any, parse_value: ValueParser) -> tuple[float | None, str]:
    """Return the value as a float and "", or None and what is wrong with it."""
    try:
        number = parse_value(value)
    except ValueError as exc:
        return None, str(exc)
    problem = magnitude_problem(number)
    if problem:
        return None, problem
    return number, ""


def _check_source(source: Any) -> tuple[str, str]:
    """Return the source and "", or "" and what is wrong with it."""
    if not isinstance(source, str):
        return "", f"Give the source as a string; got {json_type_name(source)}."
    if len(source) > SOURCE_MAX_LENGTH:
        return "", (f"Use at most {SOURCE_MAX_LENGTH} characters; got {len(source)}.")
    if "\x00" in source:
        return "", "The source cannot contain NUL characters."
    try:
        source.encode()
    except UnicodeEncodeError:
        return "", "The source is not valid Unicode (it holds a lone surrogate)."
    return source, ""
