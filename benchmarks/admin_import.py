"""Benchmark: the admin's CSV import of 20,000 measurements, old preview vs new.

Run: ``uv run python benchmarks/admin_import.py``. On a private PostgreSQL database
(``ducttape_bench_import``, created, migrated and dropped by the script), seeded without
timing with one silo of 100 monthly KPIs, a silo manager of it, and 5,000 stored
measurements (the first 25 KPIs, 200 months each: the first 100 months equal to the
file's values, the last 100 different). The file: 20,000 rows, every KPI x 200 months
from 2000-01, so 15,000 new rows, 2,500 changed and 2,500 unchanged.

- **old**: django-import-export's dry run, the engine of the preview this import
  replaced: ``resource.import_data(dataset, dry_run=True, ...)`` with the resource the
  admin used (``LegacyMeasurementResource`` below, the pre-change
  ``metrics/imports.py`` unchanged) and the admin's arguments. It saves every row
  through the ORM in a transaction that it rolls back. Timed without the page the
  admin then rendered (one table row per file row), so the old figure is a lower
  bound of the old preview. ``--old-confirm`` also times its confirm step
  (``dry_run=False``), which the admin ran the same way.
- **new**: the admin through Django's test client, as the silo manager: the upload
  (``POST import/``), the preview (``GET import/<id>/``) and the confirmation
  (``POST import/<id>/confirm/``), each timed from the request to the response; then
  the stored rows are compared with the file's, and the state is restored for the
  next run (``--runs``, medians compared).
- **locks**: while each preview runs, another connection upserts a row that the file
  changes, through the bulk API's service (as a pipeline would), with the row's
  stored value; the time it took is printed (the old preview holds that row's lock
  until its rollback).

Goal (issue 10, point 5): the preview of 20,000 rows in at most 5 s. Exit 0 when it
measured, whether or not the goal was met (the last lines say MET or NOT MET).
"""

import argparse
import datetime as dt
import statistics
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any

import _support

KPI_COUNT = 100
MONTHS = 200
FIRST_PERIOD = dt.date(2000, 1, 1)
STORED_KPIS = 25
EQUAL_MONTHS = 100
SILO_SLUG = "bench_sales"
MANAGER = "bench_manager"
RUNS = 3
GOAL_SECONDS = 5.0
ROWS = KPI_COUNT * MONTHS
EXPECTED = {
    "new": (KPI_COUNT - STORED_KPIS) * MONTHS,
    "changed": STORED_KPIS * (MONTHS - EQUAL_MONTHS),
    "unchanged": STORED_KPIS * EQUAL_MONTHS,
}
#: The row another client writes during the previews: KPI 0's first changed month.
LOCKED_MONTH = EQUAL_MONTHS


def key(kpi_index: int) -> str:
    return f"{SILO_SLUG}.kpi_{kpi_index:03d}"


def file_value(kpi_index: int, month_index: int) -> float:
    # Quarters: exact in binary and in decimal, so comparisons are exact.
    return kpi_index * 1000 + month_index + 0.25


def stored_value(kpi_index: int, month_index: int) -> float:
    equal = month_index < EQUAL_MONTHS
    return file_value(kpi_index, month_index) if equal else -1.0


def csv_text() -> str:
    lines = ["kpi,period,value,source"]
    periods = [
        f"{_support.month(index, first=FIRST_PERIOD):%Y-%m-%d}"
        for index in range(MONTHS)
    ]
    for kpi_index in range(KPI_COUNT):
        for month_index in range(MONTHS):
            lines.append(
                f"{key(kpi_index)},{periods[month_index]},"
                f"{file_value(kpi_index, month_index)},benchmark"
            )
    return "\n".join(lines) + "\n"


# -- The import this benchmark compares against ------------------------------------


def legacy_resource_class() -> type:
    """Return the admin's import resource before this change (metrics/imports.py at
    the commit before), unchanged but for the imports, defined once Django is set up."""
    from django.core.exceptions import ValidationError
    from django.db import transaction
    from import_export import fields, resources, widgets

    from metrics.models import KPI, Measurement
    from metrics.selectors import kpis_writable_by
    from metrics.signals import measurements_changed

    class ScopedKPIWidget(widgets.ForeignKeyWidget):
        def __init__(self, queryset: Any) -> None:
            super().__init__(KPI, field="key")
            self.scoped_queryset = queryset

        def get_queryset(self, value: Any, row: Any, *args: Any, **kwargs: Any) -> Any:
            return self.scoped_queryset

        def clean(self, value: Any, row: Any = None, **kwargs: Any) -> Any:
            try:
                return super().clean(value, row, **kwargs)
            except KPI.DoesNotExist:
                raise ValueError(
                    f"Unknown KPI {value!r}, or a KPI of a silo you do not manage."
                ) from None

    class NumberWidget(widgets.FloatWidget):
        def clean(self, value: Any, row: Any = None, **kwargs: Any) -> Any:
            try:
                return super().clean(value, row, **kwargs)
            except ValueError:
                raise ValueError(f"{value!r} is not a number.") from None

    class LegacyMeasurementResource(resources.ModelResource):
        kpi = fields.Field(attribute="kpi", column_name="kpi")
        value = fields.Field(
            attribute="value", column_name="value", widget=NumberWidget()
        )

        class Meta:
            model = Measurement
            fields = ("kpi", "period", "value", "source")
            export_order = ("kpi", "period", "value", "source")
            import_id_fields = ("kpi", "period")
            clean_model_instances = True
            skip_unchanged = True
            report_skipped = True

        def __init__(self, user: Any = None, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            queryset = (
                kpis_writable_by(user) if user is not None else KPI.objects.none()
            )
            self.fields["kpi"].widget = ScopedKPIWidget(queryset)
            self._seen: set[tuple[str, str]] = set()
            self._changed_kpis: set[int] = set()

        def before_import(self, dataset: Any, **kwargs: Any) -> None:
            self._seen = set()
            self._changed_kpis = set()
            missing = {"kpi", "period", "value"} - set(dataset.headers or ())
            if missing:
                raise ValidationError(f"The file lacks {sorted(missing)}")

        def before_import_row(self, row: Any, **kwargs: Any) -> None:
            pair = (str(row.get("kpi", "")).strip(), str(row.get("period", "")).strip())
            if pair in self._seen:
                raise ValidationError(
                    f"KPI {pair[0]!r} has two rows for period {pair[1]}; keep one."
                )
            self._seen.add(pair)

        def after_save_instance(self, instance: Any, row: Any, **kwargs: Any) -> None:
            super().after_save_instance(instance, row, **kwargs)
            self._changed_kpis.add(instance.kpi_id)

        def after_import(self, dataset: Any, result: Any, **kwargs: Any) -> None:
            super().after_import(dataset, result, **kwargs)
            if kwargs.get("dry_run") or result.has_errors() or not self._changed_kpis:
                return
            kpi_ids = sorted(self._changed_kpis)
            transaction.on_commit(
                lambda: measurements_changed.send(sender=Measurement, kpi_ids=kpi_ids),
                robust=True,
            )

    return LegacyMeasurementResource


# -- Seeding, checking, restoring --------------------------------------------------


@dataclass
class World:
    manager: Any
    kpi_ids: list[int]


def seed() -> World:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from core.roles import SILO_MANAGERS
    from metrics.models import KPI, Silo

    silo = Silo.objects.create(slug=SILO_SLUG, name="Bench sales", position=1)
    kpis = KPI.objects.bulk_create(
        KPI(
            silo=silo,
            slug=f"kpi_{index:03d}",
            key=key(index),
            name=f"KPI {index}",
            unit="count",
            direction="higher_is_better",
            frequency="monthly",
            aggregation="sum",
        )
        for index in range(KPI_COUNT)
    )
    manager = get_user_model().objects.create_user(MANAGER, is_staff=True)
    manager.groups.add(Group.objects.get(name=SILO_MANAGERS))
    silo.managers.add(manager)
    world = World(manager=manager, kpi_ids=[kpi.pk for kpi in kpis])
    restore(world)
    return world


def restore(world: World) -> None:
    """Leave exactly the 5,000 seeded measurements."""
    from django.db import connection

    from metrics.models import Measurement

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE metrics_measurement")
    Measurement.objects.bulk_create(
        Measurement(
            kpi_id=world.kpi_ids[kpi_index],
            period=_support.month(month_index, first=FIRST_PERIOD),
            value=stored_value(kpi_index, month_index),
            source="benchmark",
        )
        for kpi_index in range(STORED_KPIS)
        for month_index in range(MONTHS)
    )


def check_stored(world: World) -> None:
    """Raise unless the table holds exactly the file's 20,000 rows."""
    from metrics.models import Measurement

    index_of = {kpi_id: index for index, kpi_id in enumerate(world.kpi_ids)}
    stored = {
        (index_of[kpi_id], period): (value, source)
        for kpi_id, period, value, source in Measurement.objects.values_list(
            "kpi_id", "period", "value", "source"
        )
    }
    expected = {
        (kpi_index, _support.month(month_index, first=FIRST_PERIOD)): (
            file_value(kpi_index, month_index),
            "benchmark",
        )
        for kpi_index in range(KPI_COUNT)
        for month_index in range(MONTHS)
    }
    if stored != expected:
        wrong = sum(1 for pair, row in expected.items() if stored.get(pair) != row)
        raise _support.BenchmarkError(
            f"after the import {len(stored):,} rows are stored, {wrong:,} of the "
            f"file's {ROWS:,} rows missing or different"
        )


# -- Another client writing during a preview ------------------------------------------


class Writer:
    """Upsert the locked row from another thread (another connection); time it."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.seconds: float | None = None
        self.result: Any = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self) -> float:
        if self._thread.ident is None:
            raise _support.BenchmarkError("the concurrent upload never started")
        self._thread.join(timeout=600)
        if self.seconds is None:
            raise _support.BenchmarkError("the concurrent upload did not finish")
        if self.result is None or (self.result.created, self.result.updated) != (0, 0):
            raise _support.BenchmarkError(f"concurrent upload: {self.result!r}")
        return self.seconds

    def _run(self) -> None:
        from django.db import connection

        from metrics.ingest import measurements_bulk_upsert

        row = {
            "kpi": key(0),
            "period": _support.month(LOCKED_MONTH, first=FIRST_PERIOD).isoformat(),
            # The stored value and source: the upsert changes nothing, whatever the
            # preview did, and the data stays as seeded.
            "value": stored_value(0, LOCKED_MONTH),
            "source": "benchmark",
        }
        started = time.perf_counter()
        try:
            self.result = measurements_bulk_upsert(user=self.world.manager, rows=[row])
        finally:
            self.seconds = time.perf_counter() - started
            connection.close()


# -- The two previews ---------------------------------------------------------------


@dataclass
class OldRun:
    preview: float
    writer_waited: float
    confirm: float | None


def old_run(world: World, text: str, with_confirm: bool) -> OldRun:
    from import_export.formats.base_formats import CSV

    from metrics.models import Measurement

    resource_class = legacy_resource_class()
    writer = Writer(world)
    locked_kpi, locked_period = (
        world.kpi_ids[0],
        _support.month(LOCKED_MONTH, first=FIRST_PERIOD),
    )

    class Watched(resource_class):  # type: ignore[misc, valid-type]
        def after_save_instance(self, instance: Any, row: Any, **kwargs: Any) -> None:
            super().after_save_instance(instance, row, **kwargs)
            if (instance.kpi_id, instance.period) == (locked_kpi, locked_period):
                writer.start()

    def import_data(resource: Any, dry_run: bool) -> tuple[float, Any]:
        # As ImportMixin.import_action and process_import called it.
        dataset = CSV().create_dataset(text)
        started = time.perf_counter()
        result = resource.import_data(
            dataset,
            dry_run=dry_run,
            raise_errors=False,
            use_transactions=True,
            collect_failed_rows=True,
            rollback_on_validation_errors=True,
        )
        seconds = time.perf_counter() - started
        if result.has_errors() or result.has_validation_errors():
            raise _support.BenchmarkError("the old import found errors in the file")
        totals = {name: result.totals[name] for name in ("new", "update", "skip")}
        expected = {
            "new": EXPECTED["new"],
            "update": EXPECTED["changed"],
            "skip": EXPECTED["unchanged"],
        }
        if totals != expected:
            raise _support.BenchmarkError(f"old import totals {totals} != {expected}")
        return seconds, result

    preview_seconds, _ = import_data(Watched(user=world.manager), dry_run=True)
    waited = writer.join()
    if Measurement.objects.count() != STORED_KPIS * MONTHS:
        raise _support.BenchmarkError("the old dry run left rows behind")
    confirm_seconds = None
    if with_confirm:
        confirm_seconds, _ = import_data(
            resource_class(user=world.manager), dry_run=False
        )
        check_stored(world)
        restore(world)
    return OldRun(preview_seconds, waited, confirm_seconds)


@dataclass
class NewRun:
    upload: float
    preview: float
    confirm: float
    writer_waited: float
    page_bytes: int
    message: str


def new_run(world: World, text: str) -> NewRun:
    from django.contrib.messages import get_messages
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client

    client = Client()
    client.force_login(world.manager)
    # Warm up: the first request of a process imports every URLconf and admin.
    if client.get("/admin/metrics/measurement/import/").status_code != 200:
        raise _support.BenchmarkError("the import page did not answer 200")
    upload = SimpleUploadedFile("bench.csv", text.encode(), content_type="text/csv")

    started = time.perf_counter()
    response = client.post(
        "/admin/metrics/measurement/import/", {"import_file": upload}
    )
    upload_seconds = time.perf_counter() - started
    if response.status_code != 302:
        raise _support.BenchmarkError(f"upload answered {response.status_code}")
    preview_url = response["Location"]

    writer = Writer(world)
    started = time.perf_counter()
    writer.start()  # during the preview: it takes about half a second
    response = client.get(preview_url)
    preview_seconds = time.perf_counter() - started
    waited = writer.join()
    page = response.content.decode()
    # The page's summary (read from the HTML: the test client's template
    # instrumentation would slow the rendering being timed).
    shown = [
        f"<strong>{ROWS:,}</strong> rows",
        *(f"<strong>{count:,}</strong> {name}" for name, count in EXPECTED.items()),
        "<strong>0</strong> problems",
    ]
    missing = [text for text in shown if text not in page]
    if response.status_code != 200 or missing:
        raise _support.BenchmarkError(f"preview: {response.status_code}, {missing}")

    started = time.perf_counter()
    confirmed = client.post(f"{preview_url}confirm/")
    confirm_seconds = time.perf_counter() - started
    if confirmed.status_code != 302:
        raise _support.BenchmarkError(f"confirm answered {confirmed.status_code}")
    message = [str(m) for m in get_messages(confirmed.wsgi_request)][-1]
    expected_message = (
        f"Imported {ROWS:,} rows: {EXPECTED['new']:,} new, {EXPECTED['changed']:,} "
        f"changed, {EXPECTED['unchanged']:,} unchanged."
    )
    if message != expected_message:
        raise _support.BenchmarkError(f"confirm said {message!r}")
    check_stored(world)
    restore(world)
    return NewRun(
        upload_seconds,
        preview_seconds,
        confirm_seconds,
        waited,
        len(response.content),
        message,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS, help="runs of the new import")
    parser.add_argument(
        "--old-confirm",
        action="store_true",
        help="also time the old confirm step (as long again as its preview)",
    )
    arguments = parser.parse_args()

    url = _support.database_url("_import")
    with _support.django_database(url):
        from django.conf import settings
        from django.db import connections
        from django.test import override_settings

        PLAIN_STATIC_STORAGES = {
            **settings.STORAGES,
            "staticfiles": {
                "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
            },
        }

        machine = _support.machine_description()
        postgres = _support.postgres_version(url)
        world = seed()
        text = csv_text()
        print(
            f"seeded (not timed): {KPI_COUNT} monthly KPIs, {STORED_KPIS * MONTHS:,} "
            f"stored measurements; the file: {ROWS:,} rows, {len(text.encode()):,} "
            "bytes",
            flush=True,
        )
        print("old: django-import-export dry run ...", flush=True)
        old = old_run(world, text, arguments.old_confirm)
        print(f"  {old.preview:.2f} s", flush=True)
        new_runs = []
        # WhiteNoise warns that collectstatic has not run; so does the test suite.
        warnings.filterwarnings("ignore", "No directory at", UserWarning)
        # Production settings name static files through collectstatic's manifest,
        # which a checkout lacks; the admin's pages only link them.
        with override_settings(STORAGES=PLAIN_STATIC_STORAGES):
            for number in range(arguments.runs):
                new_runs.append(new_run(world, text))
                print(
                    f"new run {number + 1}: preview {new_runs[-1].preview:.2f} s, "
                    f"confirm {new_runs[-1].confirm:.2f} s",
                    flush=True,
                )
        connections.close_all()

    def median(values: list[float]) -> float:
        return statistics.median(values)

    rows = [
        [
            "old: django-import-export",
            "",
            f"{old.preview:.2f}",
            "" if old.confirm is None else f"{old.confirm:.2f}",
            f"{old.writer_waited:.2f}",
            "not rendered",
        ]
    ]
    for number, run in enumerate(new_runs, start=1):
        rows.append(
            [
                f"new run {number}",
                f"{run.upload:.2f}",
                f"{run.preview:.2f}",
                f"{run.confirm:.2f}",
                f"{run.writer_waited:.3f}",
                f"{run.page_bytes:,}",
            ]
        )
    new_preview = median([run.preview for run in new_runs])
    rows.append(
        [
            "new median",
            f"{median([run.upload for run in new_runs]):.2f}",
            f"{new_preview:.2f}",
            f"{median([run.confirm for run in new_runs]):.2f}",
            f"{median([run.writer_waited for run in new_runs]):.3f}",
            "",
        ]
    )
    _support.print_table(
        f"admin CSV import: {ROWS:,} rows ({EXPECTED['new']:,} new, "
        f"{EXPECTED['changed']:,} changed, {EXPECTED['unchanged']:,} unchanged) as a "
        "silo manager; seconds; old = import_data(dry_run=True), and dry_run=False for "
        "its confirm (--old-confirm), without the page; writer = a one-row bulk upsert "
        "of a row the file changes, from another connection during the preview",
        ["", "upload s", "preview s", "confirm s", "writer waited s", "page bytes"],
        rows,
    )
    print(f"machine: {machine}; {postgres}")
    print(f"confirm message: {new_runs[-1].message}")
    print("check: after each confirm, exactly the file's 20,000 rows stored: OK")
    print(f"preview old / new: {old.preview / new_preview:.0f}x")
    verdict = "MET" if new_preview <= GOAL_SECONDS else "NOT MET"
    print(f"goal: preview of {ROWS:,} rows <= {GOAL_SECONDS:.0f} s: {verdict}")
    return 0


if __name__ == "__main__":
    _support.run(main)
