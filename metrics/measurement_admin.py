"""The measurements' admin: a scoped change list, CSV export, and the three-step CSV
import (upload, preview, confirm; see metrics.imports)."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from import_export.admin import ExportMixin

from core.csv import SpreadsheetSafeCSV
from core.roles import signed_in
from metrics import imports
from metrics.admin_mixins import SILO_FILTER, SiloScopedAdminMixin
from metrics.imports import MeasurementResource
from metrics.ingest import BulkValidationError
from metrics.models import Measurement, MeasurementImport
from metrics.signals import measurements_changed


def announce_changed_measurements(kpi_ids: list[int]) -> None:
    """Send measurements_changed for ``kpi_ids`` once the admin's transaction commits."""
    transaction.on_commit(
        lambda: measurements_changed.send(sender=Measurement, kpi_ids=kpi_ids),
        robust=True,
    )


class MeasurementImportForm(forms.Form):
    """The admin's upload form, refusing a file too large before reading it."""

    import_file = forms.FileField(
        label="CSV file",
        help_text="UTF-8, comma-, semicolon- or tab-separated, at most "
        f"{imports.MAX_BYTES // 1_048_576} MB and {imports.MAX_ROWS:,} rows.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,text/csv"}),
    )

    def clean_import_file(self) -> Any:
        upload = self.cleaned_data["import_file"]
        if upload.size > imports.MAX_BYTES:
            raise forms.ValidationError(imports.too_large_message(upload.size))
        return upload


@admin.register(Measurement)
class MeasurementAdmin(SiloScopedAdminMixin, ExportMixin, admin.ModelAdmin):
    """Measurements, scoped to the user's silos, with a CSV import and export.

    The import (upload, read-only preview, confirm) is ``metrics.imports``; these views
    only check the permission, call it and render. Importing takes the permission to
    add measurements, and only the KPIs of silos the user may write; the export, a
    read, is open to whoever sees the change list.
    """

    silo_lookup = "kpi__silo_id"
    resource_classes = [MeasurementResource]
    # A source is free text: one starting with "=" must not run in a spreadsheet.
    export_formats = [SpreadsheetSafeCSV]
    import_export_change_list_template = (
        "admin/metrics/measurement/change_list_import_export.html"
    )
    list_display = ["kpi", "period", "value", "source", "updated_at"]
    list_filter = [("kpi__silo", SILO_FILTER), "kpi__frequency", "source"]
    search_fields = ["kpi__key", "kpi__name", "source"]
    date_hierarchy = "period"
    autocomplete_fields = ["kpi"]
    list_select_related = ["kpi", "kpi__silo"]
    readonly_fields = ["created_at", "updated_at"]
    list_per_page = 50

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        # Before the model's own URLs, whose "<path:object_id>/" would match these.
        return [
            path("import/", view(self.import_view), name=f"{name}_import"),
            path(
                "import/<int:import_id>/",
                view(self.import_preview_view),
                name=f"{name}_import_preview",
            ),
            path(
                "import/<int:import_id>/confirm/",
                view(self.import_confirm_view),
                name=f"{name}_import_confirm",
            ),
            path(
                "import/template/<slug:silo_slug>/",
                view(self.import_template_view),
                name=f"{name}_import_template",
            ),
            *super().get_urls(),
        ]

    def has_import_permission(self, request: HttpRequest) -> bool:
        """Importing adds measurements: it takes the add permission (not BI readers)."""
        return self.has_add_permission(request)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict | None = None
    ) -> HttpResponse:
        can_import = self.has_import_permission(request)
        return super().changelist_view(
            request,
            {
                **(extra_context or {}),
                "has_import_permission": can_import,
                "template_silos": (
                    list(imports.template_silos(request.user)) if can_import else []
                ),
            },
        )

    def import_context(self, request: HttpRequest, title: str, **extra: Any) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "has_view_permission": self.has_view_permission(request),
            **extra,
        }

    def import_view(self, request: HttpRequest) -> HttpResponse:
        """Show the upload form; store a file that parses and go to its preview."""
        if not self.has_import_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            form = MeasurementImportForm(request.POST, request.FILES)
            if form.is_valid():
                upload = form.cleaned_data["import_file"]
                try:
                    record = imports.measurement_import_create(
                        user=signed_in(request.user),
                        filename=upload.name or "measurements.csv",
                        content=upload.read(imports.MAX_BYTES + 1),
                    )
                except imports.ImportFileError as exc:
                    form.add_error("import_file", exc.message)
                else:
                    return HttpResponseRedirect(self.import_url("preview", record.pk))
        else:
            form = MeasurementImportForm()
        return TemplateResponse(
            request,
            "admin/metrics/measurement/import.html",
            self.import_context(
                request,
                "Import measurements",
                form=form,
                template_silos=imports.template_silos(request.user),
            ),
        )

    def import_preview_view(self, request: HttpRequest, import_id: int) -> HttpResponse:
        """Show what importing the stored file would do; read only."""
        if not self.has_import_permission(request):
            raise PermissionDenied
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        try:
            record = imports.measurement_import_get(
                user=signed_in(request.user), import_id=import_id
            )
        except imports.ImportNotFound:
            return self.import_gone(request)
        preview = imports.measurement_import_preview(user=request.user, record=record)
        return self.render_preview(request, preview)

    def import_confirm_view(self, request: HttpRequest, import_id: int) -> HttpResponse:
        """Import the stored file (all rows or none) and return to the change list."""
        if not self.has_import_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        try:
            outcome = imports.measurement_import_confirm(
                user=signed_in(request.user), import_id=import_id
            )
        except imports.ImportNotFound:
            return self.import_gone(request)
        except BulkValidationError:
            # Something changed since the preview: nothing was written; show why.
            try:
                record = imports.measurement_import_get(
                    user=signed_in(request.user), import_id=import_id
                )
            except imports.ImportNotFound:
                return self.import_gone(request)
            preview = imports.measurement_import_preview(
                user=request.user, record=record
            )
            messages.error(
                request,
                "Nothing was imported: the file is no longer valid (the data or your "
                "permissions changed since the preview). See the problems below.",
            )
            return self.render_preview(request, preview)
        LogEntry.objects.create(
            user_id=signed_in(request.user).pk,
            content_type=ContentType.objects.get_for_model(Measurement),
            object_repr=f"CSV import {outcome.filename}"[:200],
            action_flag=ADDITION,
            change_message=outcome.message(),
        )
        messages.success(request, outcome.message())
        return HttpResponseRedirect(reverse("admin:metrics_measurement_changelist"))

    def import_template_view(
        self, request: HttpRequest, silo_slug: str
    ) -> HttpResponse:
        """Download a CSV to fill in: the header and a row per active KPI of a silo."""
        if not self.has_import_permission(request):
            raise PermissionDenied
        found = imports.measurement_import_template(
            user=request.user, silo_slug=silo_slug
        )
        if found is None:
            raise Http404("No silo with this slug that you may import into.")
        silo, text = found
        response = HttpResponse(text, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="measurements-{silo.slug}.csv"'
        )
        return response

    def import_url(self, step: str, import_id: int) -> str:
        return reverse(f"admin:metrics_measurement_import_{step}", args=[import_id])

    def import_gone(self, request: HttpRequest) -> HttpResponse:
        messages.warning(
            request,
            "That import does not exist: it was imported already, or it expired "
            f"(imports are kept for {MeasurementImport.KEPT_FOR_HOURS} hours). Upload "
            "the file again.",
        )
        return HttpResponseRedirect(reverse("admin:metrics_measurement_changelist"))

    def render_preview(
        self, request: HttpRequest, preview: imports.ImportPreview
    ) -> TemplateResponse:
        return TemplateResponse(
            request,
            "admin/metrics/measurement/import_preview.html",
            self.import_context(
                request,
                "Preview of the import",
                preview=preview,
                confirm_url=self.import_url("confirm", preview.record.pk),
            ),
        )

    def save_model(
        self, request: HttpRequest, obj: Any, form: Any, change: bool
    ) -> None:
        super().save_model(request, obj, form, change)
        announce_changed_measurements([obj.kpi_id])

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        kpi_id = obj.kpi_id
        super().delete_model(request, obj)
        announce_changed_measurements([kpi_id])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        kpi_ids = sorted(set(queryset.values_list("kpi_id", flat=True)))
        super().delete_queryset(request, queryset)
        announce_changed_measurements(kpi_ids)

    def get_export_queryset(self, request: HttpRequest) -> QuerySet[Measurement]:
        return super().get_export_queryset(request).select_related("kpi")
