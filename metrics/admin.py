"""Admin for silos, KPIs, measurements and declared links, scoped to each silo manager."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db import transaction
from django.db.models import Count, QuerySet
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
from simple_history.admin import SimpleHistoryAdmin

from core.csv import SpreadsheetSafeCSV
from metrics import imports
from metrics.imports import MeasurementResource
from metrics.ingest import BulkValidationError
from metrics.models import KPI, ImpactLink, Measurement, MeasurementImport, Silo
from metrics.selectors import (
    admin_silo_scope,
    kpi_list_with_latest,
    kpis_writable_by,
    links_touching,
    scope_by_silo,
    silos_writable_by,
    users_assignable_by,
)
from metrics.signals import measurements_changed


def human_number(value: float) -> str:
    """Format a KPI value for a person: thousands separated, at most 4 significant digits."""
    if abs(value) >= 10_000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


# A silo manager's filters list only the silos (and KPIs) of rows they can see.
SILO_FILTER = admin.RelatedOnlyFieldListFilter


class HistoryAdmin(SimpleHistoryAdmin):
    """simple-history's admin with its "revert" form made read-only.

    The library saves a POST to an old version's form after checking only view or change
    permission on that old version, which would let a reader write, or a manager move an
    object back into their silo. History here is a record: it is viewed, never replayed.
    """

    def history_form_view(
        self, request: HttpRequest, object_id: str, version_id: str, extra_context=None
    ) -> HttpResponse:  # type: ignore[no-untyped-def]
        if request.method not in ("GET", "HEAD"):
            raise PermissionDenied
        model = self.model
        if (
            model._default_manager.filter(pk=object_id).exists()
            and not self.get_queryset(request).filter(pk=object_id).exists()
        ):
            raise Http404
        return super().history_form_view(request, object_id, version_id, extra_context)


class SiloScopedAdminMixin:
    """Confine an admin to the silos a user may work on (see ``admin_silo_scope``).

    Every path goes through the scope: the change list and bulk actions (the queryset),
    change and history views of a single object (the permission checks, so a guessed id
    is refused too), and foreign-key choices (a KPI or silo outside the user's silos is
    not offered, and the form rejects one posted anyway).
    """

    #: Lookup from the model to its silo's id, e.g. ``"silo_id"`` or ``"kpi__silo_id"``.
    silo_lookup: str

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)  # type: ignore[misc]
        return scope_by_silo(queryset, admin_silo_scope(request.user), self.silo_lookup)

    def object_silo_id(self, obj: Any) -> int:
        value = obj
        for part in self.silo_lookup.split("__"):
            try:
                value = getattr(value, part)
            except ObjectDoesNotExist:
                # A deleted object's history can outlive its KPI: ask the KPI's history.
                kpi_id = getattr(value, f"{part}_id")
                return KPI.history.filter(id=kpi_id).latest().silo_id  # type: ignore[attr-defined]
        return value

    def in_scope(self, request: HttpRequest, obj: Any) -> bool:
        if obj is None:
            return True
        scope = admin_silo_scope(request.user)
        return scope is None or self.object_silo_id(obj) in scope

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_view_permission(request, obj) and self.in_scope(request, obj)  # type: ignore[misc]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and self.in_scope(  # type: ignore[misc]
            request, obj
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_delete_permission(request, obj) and self.in_scope(  # type: ignore[misc]
            request, obj
        )

    def has_view_history_or_change_history_permission(
        self, request: HttpRequest, obj: Any = None
    ) -> bool:
        # simple-history falls back to the last historical copy of an object the
        # queryset does not hold (to show deleted objects), so scope it explicitly.
        return super().has_view_history_or_change_history_permission(  # type: ignore[misc]
            request, obj
        ) and self.in_scope(request, obj)

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):  # type: ignore[no-untyped-def]
        if db_field.related_model is KPI:
            kwargs["queryset"] = kpis_writable_by(request.user).select_related("silo")
        elif db_field.related_model is Silo:
            kwargs["queryset"] = silos_writable_by(request.user)
        elif db_field.related_model is get_user_model():
            kwargs["queryset"] = users_assignable_by(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]


@admin.register(Silo)
class SiloAdmin(HistoryAdmin):
    list_display = ["name", "slug", "position", "kpi_count", "manager_list"]
    list_editable = ["position"]
    search_fields = ["name", "slug", "description"]
    filter_horizontal = ["managers"]
    ordering = ["position", "name"]
    # Not the class attribute prepopulated_fields: simple-history's history form reads
    # that one directly, and the slug is not on the form once the silo has KPIs.
    SLUG_FROM_NAME = {"slug": ["name"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Silo]:
        return (
            super()
            .get_queryset(request)
            .annotate(kpi_count=Count("kpis", distinct=True))
            .prefetch_related("managers")
        )

    def get_readonly_fields(
        self, request: HttpRequest, obj: Silo | None = None
    ) -> list[str]:
        # KPI keys start with the silo's slug and never change, so neither may the slug.
        if obj is not None and obj.kpis.exists():
            return ["slug"]
        return []

    def get_prepopulated_fields(
        self, request: HttpRequest, obj: Silo | None = None
    ) -> dict:
        return {} if obj is not None and obj.kpis.exists() else self.SLUG_FROM_NAME

    @admin.display(description="KPIs", ordering="kpi_count")
    def kpi_count(self, silo: Silo) -> int:
        return silo.kpi_count  # type: ignore[attr-defined]

    @admin.display(description="Managers")
    def manager_list(self, silo: Silo) -> str:
        return ", ".join(user.get_username() for user in silo.managers.all()) or "-"


@admin.register(KPI)
class KPIAdmin(SiloScopedAdminMixin, HistoryAdmin):
    silo_lookup = "silo_id"
    list_display = [
        "key",
        "name",
        "silo",
        "unit",
        "direction",
        "frequency",
        "latest",
        "is_active",
    ]
    list_filter = [
        ("silo", SILO_FILTER),
        "direction",
        "frequency",
        "aggregation",
        "is_active",
    ]
    search_fields = ["key", "name", "description"]
    list_select_related = ["silo"]
    readonly_fields = ["key", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["silo", "slug", "key", "name", "unit", "description"]}),
        (
            "Behaviour",
            {
                "fields": [
                    "direction",
                    "band_low",
                    "band_high",
                    "frequency",
                    "aggregation",
                ]
            },
        ),
        (None, {"fields": ["is_active", "created_at", "updated_at"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[KPI]:
        return kpi_list_with_latest(super().get_queryset(request))

    def get_readonly_fields(
        self, request: HttpRequest, obj: KPI | None = None
    ) -> list[str]:
        # The key is public (API, imports, BI reports): silo and slug freeze once created.
        if obj is not None:
            return [*self.readonly_fields, "silo", "slug"]
        return list(self.readonly_fields)

    @admin.display(description="Latest value", ordering="latest_period")
    def latest(self, kpi: KPI) -> str:
        if kpi.latest_period is None:  # type: ignore[attr-defined]
            return "-"
        value = human_number(kpi.latest_value)  # type: ignore[attr-defined]
        return f"{value} {kpi.unit} ({kpi.latest_period:%Y-%m-%d})"  # type: ignore[attr-defined]  # type: ignore[attr-defined]


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
                        user=request.user,
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
                user=request.user, import_id=import_id
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
                user=request.user, import_id=import_id
            )
        except imports.ImportNotFound:
            return self.import_gone(request)
        except BulkValidationError:
            # Something changed since the preview: nothing was written; show why.
            try:
                record = imports.measurement_import_get(
                    user=request.user, import_id=import_id
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
            user_id=request.user.pk,
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


@admin.register(ImpactLink)
class ImpactLinkAdmin(HistoryAdmin):
    list_display = ["leader_kpi", "effect", "affected_kpi", "lag", "declared_by"]
    list_filter = ["effect", "leader_silo", "affected_silo"]
    search_fields = ["leader_kpi__key", "affected_kpi__key", "rationale"]
    autocomplete_fields = ["leader_kpi", "affected_kpi"]
    readonly_fields = ["leader_silo", "affected_silo", "declared_by", "created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ImpactLink]:
        # Managers see the links that touch their own silos; the CCO team sees all.
        return links_touching(admin_silo_scope(request.user))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The history view falls back to a link's last copy: scope it like the list.
        allowed = super().has_view_permission(request, obj)
        if obj is None or not allowed:
            return allowed
        scope = admin_silo_scope(request.user)
        return scope is None or bool({obj.leader_silo_id, obj.affected_silo_id} & scope)

    def save_model(
        self, request: HttpRequest, obj: ImpactLink, form, change: bool
    ) -> None:  # type: ignore[no-untyped-def]
        if not change:
            obj.declared_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)
