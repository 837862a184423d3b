"""CSV/XLSX import and export of measurements in the admin (django-import-export).

A row names its KPI by key. The importing user can only name KPIs of silos they may
write, a (KPI, period) pair may appear once per file, and the whole file is one
transaction: any bad row shows its error and nothing is written.
"""

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from import_export import fields, resources, widgets
from import_export.forms import ImportForm

from metrics.models import KPI, Measurement
from metrics.roles import User
from metrics.selectors import kpis_writable_by
from metrics.signals import measurements_changed


class MeasurementImportForm(ImportForm):
    """The admin's import form, refusing files too large to preview in one request."""

    MAX_BYTES = 5 * 1024 * 1024

    def clean_import_file(self) -> Any:
        upload = self.cleaned_data["import_file"]
        if upload.size > self.MAX_BYTES:
            raise ValidationError(
                f"The file is {upload.size / 1_048_576:.1f} MB; the admin imports at "
                f"most {self.MAX_BYTES // 1_048_576} MB at once. Split it, or use the "
                "bulk API for pipelines."
            )
        return upload


class ScopedKPIWidget(widgets.ForeignKeyWidget):
    """Resolve a KPI key among the KPIs the importing user may write."""

    def __init__(self, queryset: Any) -> None:
        super().__init__(KPI, field="key")
        self.scoped_queryset = queryset

    def get_queryset(self, value: Any, row: Any, *args: Any, **kwargs: Any) -> Any:
        return self.scoped_queryset

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> KPI | None:
        try:
            return super().clean(value, row, **kwargs)
        except KPI.DoesNotExist:
            raise ValueError(
                f"Unknown KPI {value!r}, or a KPI of a silo you do not manage."
            ) from None


class NumberWidget(widgets.FloatWidget):
    """Parse a value, naming the cell when it is not a number."""

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> float | None:
        try:
            return super().clean(value, row, **kwargs)
        except ValueError:
            raise ValueError(f"{value!r} is not a number.") from None


class MeasurementResource(resources.ModelResource):
    """Measurements keyed by (KPI key, period); importing an existing pair updates it."""

    kpi = fields.Field(attribute="kpi", column_name="kpi")
    value = fields.Field(attribute="value", column_name="value", widget=NumberWidget())

    class Meta:
        model = Measurement
        fields = ("kpi", "period", "value", "source")
        export_order = ("kpi", "period", "value", "source")
        import_id_fields = ("kpi", "period")
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True

    def __init__(self, user: User | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        queryset = kpis_writable_by(user) if user is not None else KPI.objects.none()
        self.fields["kpi"].widget = ScopedKPIWidget(queryset)
        self._seen: set[tuple[str, str]] = set()
        self._changed_kpis: set[int] = set()

    def before_import(self, dataset: Any, **kwargs: Any) -> None:
        self._seen = set()
        self._changed_kpis = set()
        missing = {"kpi", "period", "value"} - set(dataset.headers or ())
        if missing:
            raise ValidationError(
                f"The file lacks the column(s) {', '.join(sorted(missing))}; "
                "expected kpi, period, value and optionally source."
            )

    def before_import_row(self, row: Any, **kwargs: Any) -> None:
        pair = (str(row.get("kpi", "")).strip(), str(row.get("period", "")).strip())
        if pair in self._seen:
            raise ValidationError(
                f"KPI {pair[0]!r} has two rows for period {pair[1]}; keep one."
            )
        self._seen.add(pair)

    def after_save_instance(
        self, instance: Measurement, row: Any, **kwargs: Any
    ) -> None:
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

    def dehydrate_kpi(self, measurement: Measurement) -> str:
        return measurement.kpi.key
