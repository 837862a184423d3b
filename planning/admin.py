"""Admin for planning cycles: priorities, RACI responsibilities, funding and sign-offs."""

from django.contrib import admin
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Sum
from django.http import HttpRequest

from metrics.admin import HistoryAdmin
from planning.models import (
    FundingAllocation,
    PlanningCycle,
    Priority,
    Responsibility,
    SignOff,
)


class PriorityInline(admin.TabularInline):
    model = Priority
    fields = ["rank", "title", "accountable_silo"]
    extra = 0
    show_change_link = True


class SignOffInline(admin.TabularInline):
    model = SignOff
    fields = ["silo", "user", "signed_at", "note"]
    readonly_fields = ["signed_at"]
    extra = 0


@admin.register(PlanningCycle)
class PlanningCycleAdmin(HistoryAdmin):
    list_display = [
        "name",
        "phase",
        "start_date",
        "end_date",
        "budget_display",
        "allocated_display",
        "sign_off_count",
    ]
    list_filter = ["phase"]
    search_fields = ["name"]
    filter_horizontal = ["silos"]
    inlines = [PriorityInline, SignOffInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[PlanningCycle]:
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
                sign_off_total=Subquery(
                    SignOff.objects.filter(cycle=OuterRef("pk"))
                    .order_by()
                    .values("cycle")
                    .annotate(total=Count("pk"))
                    .values("total"),
                    output_field=IntegerField(),
                ),
            )
        )

    @admin.display(description="Budget", ordering="budget")
    def budget_display(self, cycle: PlanningCycle) -> str:
        return f"{cycle.budget:,.2f} {cycle.currency}"

    @admin.display(description="Allocated", ordering="allocated")
    def allocated_display(self, cycle: PlanningCycle) -> str:
        return f"{cycle.allocated or 0:,.2f} {cycle.currency}"  # type: ignore[attr-defined]

    @admin.display(description="Sign-offs", ordering="sign_off_total")
    def sign_off_count(self, cycle: PlanningCycle) -> int:
        return cycle.sign_off_total or 0  # type: ignore[attr-defined]


class ResponsibilityInline(admin.TabularInline):
    model = Responsibility
    extra = 0


class FundingAllocationInline(admin.TabularInline):
    model = FundingAllocation
    extra = 0


@admin.register(Priority)
class PriorityAdmin(HistoryAdmin):
    list_display = ["title", "cycle", "rank", "accountable_silo"]
    list_filter = ["cycle", "accountable_silo"]
    search_fields = ["title", "description"]
    list_select_related = ["cycle", "accountable_silo"]
    inlines = [ResponsibilityInline, FundingAllocationInline]
