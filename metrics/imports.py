"""CSV import of measurements in the admin, and the CSV export's resource.

An import goes in three steps, each its own request, so that no step holds a row lock
while a person reads:

1. **Upload**: the file is read (UTF-8, with or without a BOM), its delimiter sniffed
   (comma, semicolon or tab) and its header checked; then it is stored as a
   ``MeasurementImport`` (the database, not a worker's memory: the next request may
   reach another worker).
2. **Preview** (read-only): every row is checked with the bulk API's rules
   (``metrics.ingest.measurements_check``: the KPI named, the user's silos, the period,
   the value's bound, duplicates) and compared with what is stored: counts of new,
   changed and unchanged rows, every problem by line number, the first changes.
3. **Confirm**: the rows go through the bulk API's upsert, which checks them again
   (something may have changed since the preview) and writes all of them or none.

In a semicolon-separated file (European Excel writes those, because the comma is its
decimal separator) a value may use a decimal comma, ``12,5``; a value holding both a
comma and a point (``1.234,5``) is refused rather than guessed at.
"""

import csv
import datetime as dt
import io
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from import_export import fields, resources

from core.roles import Account, User
from metrics import periods
from metrics.csv_files import (
    COLUMNS,
    MAX_BYTES,
    MAX_ROWS,
    ImportFileError,
    decode_csv,
    parse_csv,
)
from metrics.ingest import (
    BulkResult,
    BulkValidationError,
    RowError,
    measurements_bulk_upsert,
    measurements_check,
)
from metrics.measurement_writes import CHUNK_SIZE, ValidRow
from metrics.models import Measurement, MeasurementImport, Silo
from metrics.selectors import silos_writable_by

#: The preview lists at most this many problems and this many would-be changes.
PREVIEW_ERRORS = 200
PREVIEW_CHANGES = 100

# --- The stored import ------------------------------------------------------------


class ImportNotFound(Exception):
    """No import of this user with this id: never made, someone else's, or expired."""


def _kept_imports() -> QuerySet[MeasurementImport]:
    """Return the imports not yet expired (an expired one may await its deletion)."""
    return MeasurementImport.objects.filter(created_at__gte=_expiry_cutoff())


def _expiry_cutoff() -> dt.datetime:
    return timezone.now() - dt.timedelta(hours=MeasurementImport.KEPT_FOR_HOURS)


def measurement_import_create(
    *, user: Account, filename: str, content: bytes
) -> MeasurementImport:
    """Check the file as a whole and store it for its preview; return the import.

    Raise ImportFileError (and store nothing) if it is too large, not UTF-8 text, or
    its header or row count is wrong. Rows are checked by the preview. Imports older
    than ``MeasurementImport.KEPT_FOR_HOURS`` are deleted on the way.
    """
    if len(content) > MAX_BYTES:
        raise ImportFileError(too_large_message(len(content)))
    text = decode_csv(content)
    parse_csv(text)
    MeasurementImport.objects.filter(created_at__lt=_expiry_cutoff()).delete()
    return MeasurementImport.objects.create(
        user=user, filename=filename[:255], content=text
    )


def too_large_message(size: int) -> str:
    """Return why a file of ``size`` bytes is refused."""
    return (
        f"The file is {size / 1_048_576:.1f} MB; the admin imports at most "
        f"{MAX_BYTES // 1_048_576} MB at once. Split it, or use the bulk API for "
        "pipelines."
    )


def measurement_import_get(*, user: Account, import_id: int) -> MeasurementImport:
    """Return ``user``'s kept import ``import_id``; raise ImportNotFound otherwise."""
    record = _kept_imports().filter(pk=import_id, user_id=user.pk).first()
    if record is None:
        raise ImportNotFound
    return record


# --- Preview ----------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """A problem of the file, named by its line (None: of the file as a whole)."""

    line: int | None
    column: str
    message: str


@dataclass(frozen=True)
class Change:
    """A row that the import would add or change."""

    line: int
    kpi: str
    period: dt.date
    value: float
    source: str
    stored_value: float | None
    stored_source: str | None

    @property
    def is_new(self) -> bool:
        return self.stored_value is None


@dataclass(frozen=True)
class ImportPreview:
    """What importing a file would do, with the lists cut to a page's length.

    ``changes`` lists the rows that would change a stored value first, then new rows,
    each in the file's order.
    """

    record: MeasurementImport
    delimiter_name: str
    decimal_comma: bool
    rows: int
    new: int
    changed: int
    unchanged: int
    invalid_rows: int
    problem_count: int
    problems: list[Problem] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    @property
    def can_import(self) -> bool:
        return self.problem_count == 0

    @property
    def more_problems(self) -> int:
        return self.problem_count - len(self.problems)

    @property
    def more_changes(self) -> int:
        return self.new + self.changed - len(self.changes)


def measurement_import_preview(
    *, user: User, record: MeasurementImport
) -> ImportPreview:
    """Check every row of the import and compare it with the stored measurements.

    Reads only: no row is written or locked. Queries: two for the checks, and one per
    2,000 valid rows for the stored values.
    """
    try:
        parsed = parse_csv(record.content)
    except ImportFileError as exc:
        # Checked at upload; the rules may have changed since (a deploy).
        return _file_problem_preview(record, exc.message)
    checked = measurements_check(
        user=user,
        rows=parsed.rows,
        max_rows=MAX_ROWS,
        parse_value=parsed.value_parser(),
        name_row=parsed.line_name,
    )
    errors = sorted(
        [*parsed.errors, *checked.errors],
        key=lambda error: -1 if error.index is None else error.index,
    )
    layout_errors = {error.index for error in parsed.errors}
    valid = [
        (index, row)
        for index, row in enumerate(checked.rows)
        if row is not None and index not in layout_errors
    ]
    stored = _stored_values([row for _, row in valid])
    # Overwrites are what a person most needs to check: list them before new rows.
    changed: list[Change] = []
    new: list[Change] = []
    changed_count = new_count = 0
    for index, row in valid:
        found = stored.get((row.kpi_id, row.period))
        if found is not None and found == (row.value, row.source):
            continue
        if found is None:
            new_count += 1
            listed = new
        else:
            changed_count += 1
            listed = changed
        if len(listed) < PREVIEW_CHANGES:
            listed.append(
                Change(
                    line=parsed.lines[index],
                    kpi=parsed.rows[index]["kpi"],
                    period=row.period,
                    value=row.value,
                    source=row.source,
                    stored_value=None if found is None else found[0],
                    stored_source=None if found is None else found[1],
                )
            )
    return ImportPreview(
        record=record,
        delimiter_name=parsed.delimiter_name,
        decimal_comma=parsed.decimal_comma,
        rows=len(parsed.rows),
        new=new_count,
        changed=changed_count,
        unchanged=len(valid) - new_count - changed_count,
        invalid_rows=len({e.index for e in errors if e.index is not None}),
        problem_count=len(errors),
        problems=[
            Problem(
                None if error.index is None else parsed.lines[error.index],
                error.field,
                error.message,
            )
            for error in errors[:PREVIEW_ERRORS]
        ],
        changes=[*changed, *new][:PREVIEW_CHANGES],
    )


def _file_problem_preview(record: MeasurementImport, message: str) -> ImportPreview:
    return ImportPreview(
        record=record,
        delimiter_name="",
        decimal_comma=False,
        rows=0,
        new=0,
        changed=0,
        unchanged=0,
        invalid_rows=0,
        problem_count=1,
        problems=[Problem(None, "file", message)],
    )


def _stored_values(
    rows: list[ValidRow],
) -> dict[tuple[int, dt.date], tuple[float, str]]:
    """Return the stored (value, source) of each (KPI, period) among ``rows``."""
    ordered = sorted(rows, key=lambda row: (row.kpi_id, row.period))
    stored: dict[tuple[int, dt.date], tuple[float, str]] = {}
    for start in range(0, len(ordered), CHUNK_SIZE):
        chunk = ordered[start : start + CHUNK_SIZE]
        # Sorted rows make each chunk a few KPIs over a run of periods, so the cross
        # product that KPI IN (...) AND period IN (...) reads stays close to the rows.
        for kpi_id, period, value, source in (
            Measurement.objects.filter(
                kpi_id__in={row.kpi_id for row in chunk},
                period__in={row.period for row in chunk},
            )
            .order_by()
            .values_list("kpi_id", "period", "value", "source")
        ):
            stored[(kpi_id, period)] = (value, source)
    return stored


# --- Confirm ----------------------------------------------------------------------


@dataclass(frozen=True)
class ImportOutcome:
    """What a confirmed import wrote."""

    filename: str
    rows: int
    created: int
    updated: int

    @property
    def unchanged(self) -> int:
        return self.rows - self.created - self.updated

    def message(self) -> str:
        return (
            f"Imported {self.rows:,} rows: {self.created:,} new, {self.updated:,} "
            f"changed, {self.unchanged:,} unchanged."
        )


def measurement_import_confirm(*, user: Account, import_id: int) -> ImportOutcome:
    """Write every row of ``user``'s import ``import_id``, or none, and delete it.

    The rows go through ``measurements_bulk_upsert``, which checks them again (a KPI
    may have been deactivated or moved since the preview, a manager removed from a
    silo) and sends ``measurements_changed`` after the commit. Raise ImportNotFound if
    there is no such import (also when a second confirmation comes after the first),
    and BulkValidationError, writing nothing, if any row is now invalid.
    """
    with transaction.atomic():
        # The lock makes a double submission wait for the first and then find the
        # import gone, instead of importing the file twice.
        record = (
            _kept_imports()
            .select_for_update()
            .filter(pk=import_id, user_id=user.pk)
            .first()
        )
        if record is None:
            raise ImportNotFound
        try:
            parsed = parse_csv(record.content)
        except ImportFileError as exc:
            raise BulkValidationError([RowError(None, "file", exc.message)]) from None
        if parsed.errors:
            raise BulkValidationError(parsed.errors)
        result: BulkResult = measurements_bulk_upsert(
            user=user,
            rows=parsed.rows,
            max_rows=MAX_ROWS,
            parse_value=parsed.value_parser(),
            name_row=parsed.line_name,
        )
        record.delete()
    return ImportOutcome(
        filename=record.filename,
        rows=len(parsed.rows),
        created=result.created,
        updated=result.updated,
    )


# --- Templates --------------------------------------------------------------------


def template_silos(user: User) -> QuerySet[Silo]:
    """Return the silos ``user`` may import into, in value-chain order."""
    return silos_writable_by(user).order_by("position", "name")


def measurement_import_template(
    *, user: User, silo_slug: str, today: dt.date | None = None
) -> tuple[Silo, str] | None:
    """Return a silo ``user`` may write and a CSV to fill in for it, or None.

    The CSV has the import's header and one row per active KPI of the silo, by key,
    with the current period of the KPI's frequency and the value left blank.
    """
    silo = template_silos(user).filter(slug=silo_slug).first()
    if silo is None:
        return None
    today = today or timezone.localdate()
    output = io.StringIO()
    writer = csv.writer(output, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for key, frequency in (
        silo.kpis.filter(is_active=True).order_by("key").values_list("key", "frequency")
    ):
        period = periods.period_start(today, frequency)
        writer.writerow([key, f"{period:%Y-%m-%d}", "", ""])
    return silo, output.getvalue()


# --- Export -----------------------------------------------------------------------


class MeasurementResource(resources.ModelResource):
    """Measurements for the admin's CSV export: KPI key, period, value, source.

    The rows are those of the change list (scoped to the user's silos, filtered as it
    is), so a downloaded file can be edited and imported back.
    """

    kpi = fields.Field(attribute="kpi", column_name="kpi")

    class Meta:
        model = Measurement
        fields = COLUMNS
        export_order = COLUMNS

    def dehydrate_kpi(self, measurement: Measurement) -> str:
        return measurement.kpi.key
