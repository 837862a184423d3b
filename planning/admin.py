"""Admin for planning cycles: priorities, RACI responsibilities, funding and sign-offs."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypedDict

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.db.models import OuterRef, QuerySet, Subquery, Sum
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from cycles.models import Cycle
from goals.admin import LockedCycleAdminMixin
from metrics.admin_mixins import AdminMixinBase, HistoryAdmin
from planning.models import (
    FundingAllocation,
    Priority,
    ReadinessAnswer,
    Responsibility,
    SignOff,
    budget_problem,
    over_budget_message,
)
from planning.selectors import signoff_counts

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class PriorityInline(admin.TabularInline):
    model = Priority
    fields = ["rank", "title", "accountable_silo"]
    extra = 0
    show_change_link = True


class SignOffInline(admin.TabularInline):
    """Read-only: a silo's managers sign off on the cycle page (or the API) themselves;
    nobody signs for them here."""

    model = SignOff
    fields = ["silo", "user", "signed_at", "note"]
    readonly_fields = ["silo", "user", "signed_at", "note"]
    extra = 0

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadinessAnswerInline(admin.TabularInline):
    model = ReadinessAnswer
    fields = ["number", "answer", "note", "answered_by"]
    readonly_fields = ["answered_by"]
    extra = 0


class BudgetGuardMixin(AdminMixinBase):
    """Turn the database's budget trigger (two people allocating at once) into a
    message instead of a server error; nothing of the change is saved."""

    def changeform_view(
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, *args, **kwargs)
        except IntegrityError as error:
            if "exceeds its budget" not in str(error):
                raise
            self.message_user(
                request,
                "Nothing was saved: another change took the cycle's funding over its "
                "budget in the meantime. Check the allocations and try again.",
                level=messages.ERROR,
            )
            return HttpResponseRedirect(request.get_full_path())


class CycleForm(forms.ModelForm):
    """The cycle's own fields, with the workflow's rule that a budget never falls
    below what the cycle has already allocated."""

    class Meta:
        model = Cycle
        fields = ["name", "start_date", "end_date", "budget", "currency", "silos"]

    def clean_budget(self) -> Decimal | None:
        budget = self.cleaned_data.get("budget")
        problem = budget_problem(self.instance, budget)
        if problem:
            raise ValidationError(problem)
        return budget


class CycleAdminTotals(TypedDict):
    """What CycleAdmin's queryset annotates (None: no allocation)."""

    allocated: Decimal | None


@admin.register(Cycle)
class CycleAdmin(BudgetGuardMixin, LockedCycleAdminMixin, HistoryAdmin):
    list_display = [
        "name",
        "phase",
        "start_date",
        "end_date",
        "budget_display",
        "allocated_display",
        "sign_off_count",
    ]
    form = CycleForm
    list_filter = ["phase"]
    search_fields = ["name"]
    filter_horizontal = ["silos"]
    inlines = [PriorityInline, SignOffInline, ReadinessAnswerInline]
    # The phase moves through the workflow (the cycle page or the API), where the
    # commit gate and the reopening reason are enforced.
    readonly_fields = ["phase"]

    def cycle_of(self, obj: Cycle) -> Cycle:
        return obj

    def get_queryset(self, request: HttpRequest) -> QuerySet[Cycle]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                # Subqueries, not joins: joining allocations and sign-offs together
                # would multiply each sum by the other's row count.
                allocated=Subquery(
                    FundingAllocation.objects.filter(priority__cycle=OuterRef("pk"))
                    .order_by()
                    .values("priority__cycle")
                    .annotate(total=Sum("amount"))
                    .values("total")
                ),
            )
        )

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        # The page's cycles, counted as everywhere else (a voided sign-off does not
        # count): one selector, constant queries for the page. Iterating fills the
        # page's result cache, which the change list then renders.
        counts = signoff_counts(changelist.result_list)
        for cycle in changelist.result_list:
            cycle.sign_off_summary = counts[cycle.pk]
        return changelist

    @admin.display(description="Budget", ordering="budget")
    def budget_display(self, cycle: Cycle) -> str:
        return f"{cycle.budget:,.2f} {cycle.currency}"

    @admin.display(description="Allocated", ordering="allocated")
    def allocated_display(self, cycle: WithAnnotations[Cycle, CycleAdminTotals]) -> str:
        return f"{cycle.allocated or 0:,.2f} {cycle.currency}"

    @admin.display(description="Sign-offs")
    def sign_off_count(self, cycle: Cycle) -> str:
        count = getattr(cycle, "sign_off_summary", None)
        return str(count or signoff_counts([cycle])[cycle.pk])


class ResponsibilityInline(admin.TabularInline):
    model = Responsibility
    extra = 0


class FundingFormSet(BaseInlineFormSet):
    """Check the priority's allocations together against the cycle's budget: each
    form alone cannot see the others' new amounts, nor a new or moved priority's."""

    def clean(self) -> None:
        super().clean()
        priority = self.instance
        if priority.cycle_id is None:
            return
        cycle = priority.cycle
        # Everything else the cycle funds, then this priority as the forms leave it
        # (with any of its stored allocations the forms do not show).
        others = FundingAllocation.objects.filter(priority__cycle=cycle)
        if priority.pk is not None:
            others = others.exclude(priority=priority)
        other_total = others.aggregate(total=Sum("amount"))["total"] or Decimal("0")
        shown = {form.instance.pk for form in self.forms if form.instance.pk}
        hidden = (
            FundingAllocation.objects.filter(priority=priority).exclude(pk__in=shown)
            if priority.pk is not None
            else FundingAllocation.objects.none()
        )
        mine = sum(
            (
                form.cleaned_data.get("amount") or Decimal("0")
                for form in self.forms
                if hasattr(form, "cleaned_data")
                and form.cleaned_data
                and not form.cleaned_data.get("DELETE")
            ),
            Decimal("0"),
        ) + (hidden.aggregate(total=Sum("amount"))["total"] or Decimal("0"))
        if other_total + mine > cycle.budget:
            raise ValidationError(over_budget_message(cycle, other_total, mine))


class FundingAllocationInline(admin.TabularInline):
    model = FundingAllocation
    formset = FundingFormSet
    extra = 0


@admin.register(Priority)
class PriorityAdmin(BudgetGuardMixin, LockedCycleAdminMixin, HistoryAdmin):
    list_display = ["title", "cycle", "rank", "accountable_silo"]
    list_filter = ["cycle", "accountable_silo"]
    search_fields = ["title", "description"]
    list_select_related = ["cycle", "accountable_silo"]
    inlines = [ResponsibilityInline, FundingAllocationInline]
