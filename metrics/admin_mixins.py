"""What every app's admin shares: history that records who, silo scoping for silo managers,
numbers for people."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db.models import ForeignKey, QuerySet
from django.forms import ModelChoiceField
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
)
from simple_history.admin import SimpleHistoryAdmin

from metrics.models import KPI, Silo
from metrics.selectors import (
    admin_silo_scope,
    kpis_writable_by,
    scope_by_silo,
    silos_writable_by,
    users_assignable_by,
)


def human_number(value: float) -> str:
    """Format a KPI value for a person: thousands separated, at most 4 significant digits."""
    if abs(value) >= 10_000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


# A silo manager's filters list only the silos (and KPIs) of rows they can see.
SILO_FILTER = admin.RelatedOnlyFieldListFilter

if TYPE_CHECKING:

    class AdminMixinBase(admin.ModelAdmin[Any]):
        """What an admin mixin's ``super()`` reaches: Django's ModelAdmin, and the check
        simple-history's admin (which has no type information) adds to it."""

        def has_view_history_or_change_history_permission(
            self, request: HttpRequest, obj: Any = None
        ) -> bool: ...

else:
    # At run time a mixin is a plain class: the admin it is mixed into supplies these.
    AdminMixinBase = object


class HistoryAdmin(SimpleHistoryAdmin):
    """simple-history's admin with its "revert" form made read-only.

    The library saves a POST to an old version's form after checking only view or change
    permission on that old version, which would let a reader write, or a manager move an
    object back into their silo. History here is a record: it is viewed, never replayed.
    """

    def history_form_view(
        self,
        request: HttpRequest,
        object_id: str,
        version_id: str,
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            raise PermissionDenied
        model = self.model
        if (
            model._default_manager.filter(pk=object_id).exists()
            and not self.get_queryset(request).filter(pk=object_id).exists()
        ):
            raise Http404
        return super().history_form_view(request, object_id, version_id, extra_context)


class SiloScopedAdminMixin(AdminMixinBase):
    """Confine an admin to the silos a user may work on (see ``admin_silo_scope``).

    Every path goes through the scope: the change list and bulk actions (the queryset),
    change and history views of a single object (the permission checks, so a guessed id
    is refused too), and foreign-key choices (a KPI or silo outside the user's silos is
    not offered, and the form rejects one posted anyway).
    """

    #: Lookup from the model to its silo's id, e.g. ``"silo_id"`` or ``"kpi__silo_id"``.
    silo_lookup: str

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        return scope_by_silo(queryset, admin_silo_scope(request.user), self.silo_lookup)

    def object_silo_id(self, obj: Any) -> int:
        value = obj
        for part in self.silo_lookup.split("__"):
            try:
                value = getattr(value, part)
            except ObjectDoesNotExist:
                # A deleted object's history can outlive its KPI: ask the KPI's history.
                kpi_id = getattr(value, f"{part}_id")
                return KPI.history.filter(id=kpi_id).latest().silo_id
        return value

    def in_scope(self, request: HttpRequest, obj: Any) -> bool:
        if obj is None:
            return True
        scope = admin_silo_scope(request.user)
        return scope is None or self.object_silo_id(obj) in scope

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_view_permission(request, obj) and self.in_scope(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and self.in_scope(
            request, obj
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_delete_permission(request, obj) and self.in_scope(
            request, obj
        )

    def has_view_history_or_change_history_permission(
        self, request: HttpRequest, obj: Any = None
    ) -> bool:
        # simple-history falls back to the last historical copy of an object the
        # queryset does not hold (to show deleted objects), so scope it explicitly.
        return super().has_view_history_or_change_history_permission(
            request, obj
        ) and self.in_scope(request, obj)

    def formfield_for_foreignkey(
        self, db_field: ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField[Any] | None:
        if db_field.related_model is KPI:
            kwargs["queryset"] = kpis_writable_by(request.user).select_related("silo")
        elif db_field.related_model is Silo:
            kwargs["queryset"] = silos_writable_by(request.user)
        elif db_field.related_model is get_user_model():
            kwargs["queryset"] = users_assignable_by(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
