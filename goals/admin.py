"""Admin for silo goals (scoped to each silo manager) and shared goals (CCO team)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import ValidationError
from django.db.models import ForeignKey, QuerySet
from django.forms import ModelChoiceField
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest

from core.admin import WrittenByCodeAdminMixin
from core.roles import is_bi_reader, is_cco, is_silo_manager
from cycles.models import LOCKED_PHASES, MANAGER_PHASES, cycle_is_locked
from goals.models import Contribution, Goal, Guardrail, RollupRun, SharedGoal
from goals.selectors import goal_list_with_actuals, goal_pace, with_pace
from metrics.admin_mixins import (
    SILO_FILTER,
    AdminMixinBase,
    HistoryAdmin,
    SiloScopedAdminMixin,
    human_number,
)


class LockedCycleAdminMixin(AdminMixinBase):
    """A committed or closed cycle's plan is read-only here (the CCO team reopens the
    cycle on its page to change it); ``cycle_of`` names an object's cycle."""

    def cycle_of(self, obj: Any) -> Any:
        return obj.cycle

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and cycle_is_locked(self.cycle_of(obj)):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and cycle_is_locked(self.cycle_of(obj)):
            return False
        return super().has_delete_permission(request, obj)


@admin.register(Goal)
class GoalAdmin(LockedCycleAdminMixin, SiloScopedAdminMixin, HistoryAdmin):
    silo_lookup = "kpi__silo_id"
    list_display = [
        "__str__",
        "silo",
        "cycle",
        "baseline_display",
        "target_display",
        "period_end",
        "actual_display",
        "progress",
        "expected_display",
        "status_display",
        "owner",
    ]
    list_filter = ["cycle", ("kpi__silo", SILO_FILTER), "kpi__direction"]
    search_fields = ["name", "kpi__key", "kpi__name", "notes"]
    autocomplete_fields = ["kpi"]
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["cycle", "kpi", "name", "owner"]}),
        (
            "Target",
            {
                "fields": ["baseline", "target", "target_low", "target_high"],
                "description": "A target-band KPI takes a band (low and high); "
                "other KPIs take a single target.",
            },
        ),
        ("Periods", {"fields": ["period_start", "period_end"]}),
        (None, {"fields": ["notes", "created_at", "updated_at"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Goal]:
        return goal_list_with_actuals(super().get_queryset(request))

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return PacedChangeList

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Silo managers change goals while the cycle is proposing or aligning.
        if (
            obj is not None
            and not is_cco(request.user)
            and obj.cycle.phase not in MANAGER_PHASES
        ):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if (
            obj is not None
            and not is_cco(request.user)
            and obj.cycle.phase not in MANAGER_PHASES
        ):
            return False
        return super().has_delete_permission(request, obj)

    def formfield_for_foreignkey(
        self, db_field: ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField[Any] | None:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "cycle" and field is not None:
            queryset = field.queryset
            assert queryset is not None  # a foreign key's field always has one
            if is_cco(request.user):
                field.queryset = queryset.exclude(phase__in=LOCKED_PHASES)
            else:
                field.queryset = queryset.filter(phase__in=MANAGER_PHASES)
        return field

    def get_changeform_initial_data(self, request: HttpRequest) -> dict:
        return {
            "owner": request.user.pk,
            **super().get_changeform_initial_data(request),
        }

    @admin.display(description="Silo", ordering="kpi__silo__position")
    def silo(self, goal: Goal) -> str:
        return goal.kpi.silo.name

    @admin.display(description="Baseline", ordering="baseline")
    def baseline_display(self, goal: Goal) -> str:
        return f"{human_number(goal.baseline)} {goal.kpi.unit}"

    @admin.display(description="Target")
    def target_display(self, goal: Goal) -> str:
        if goal.target is not None:
            return f"{human_number(goal.target)} {goal.kpi.unit}"
        # The database's check: a goal without a target has a band.
        assert goal.target_low is not None
        assert goal.target_high is not None
        low, high = human_number(goal.target_low), human_number(goal.target_high)
        return f"{low} to {high} {goal.kpi.unit}"

    @admin.display(description="Actual", ordering="actual")
    def actual_display(self, goal: Goal) -> str:
        actual = getattr(goal, "actual", None)
        return "-" if actual is None else f"{human_number(actual)} {goal.kpi.unit}"

    @admin.display(description="Progress")
    def progress(self, goal: Goal) -> str:
        value = goal_pace(goal).attainment
        if value is None and getattr(goal, "actual", None) is not None:
            # Data but no attainment: the goal no longer fits its KPI's direction.
            return "goal does not fit the KPI's direction"
        return "no data" if value is None else f"{value:.0%}"

    @admin.display(description="Expected by now")
    def expected_display(self, goal: Goal) -> str:
        pace = goal_pace(goal)
        if pace.expected is None or pace.as_of is None:
            return "-"
        return f"{pace.expected:.0%} by {pace.as_of:%b %Y} ({pace.shape})"

    @admin.display(description="Status")
    def status_display(self, goal: Goal) -> str:
        return goal_pace(goal).status_label


class PacedChangeList(ChangeList):
    """The goal list with each row's pace read once for the page (two queries more,
    whatever the number of rows), not once per row."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        self.result_list = with_pace(self.result_list)


class ContributionFormSet(BaseInlineFormSet):
    """Require contributions from at least two different silos: that is what makes it shared."""

    def clean(self) -> None:
        super().clean()
        silos = set()
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or form.cleaned_data.get("DELETE"):
                continue
            goal = form.cleaned_data.get("goal")
            if goal is None:
                continue
            # On "add" the shared goal is unsaved, so the model's own check cannot run.
            if goal.cycle_id != self.instance.cycle_id:
                raise ValidationError(
                    f"The goal {goal} belongs to another cycle than the shared goal."
                )
            silos.add(goal.kpi.silo_id)
        if len(silos) < 2:
            raise ValidationError(
                "A shared goal needs contributions from goals of at least two "
                "different silos."
            )


class ContributionInline(admin.TabularInline):
    model = Contribution
    formset = ContributionFormSet
    autocomplete_fields = ["goal"]
    extra = 2


class GuardrailInline(admin.TabularInline):
    model = Guardrail
    autocomplete_fields = ["kpi"]
    extra = 0


@admin.register(SharedGoal)
class SharedGoalAdmin(LockedCycleAdminMixin, HistoryAdmin):
    list_display = ["name", "cycle", "owner", "contribution_count"]
    list_filter = ["cycle"]
    search_fields = ["name", "description"]
    inlines = [ContributionInline, GuardrailInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[SharedGoal]:
        return (
            super()
            .get_queryset(request)
            .select_related("cycle", "owner")
            .prefetch_related("contributions")
        )

    def get_changeform_initial_data(self, request: HttpRequest) -> dict:
        return {
            "owner": request.user.pk,
            **super().get_changeform_initial_data(request),
        }

    @admin.display(description="Contributions")
    def contribution_count(self, shared_goal: SharedGoal) -> int:
        return len(shared_goal.contributions.all())


@admin.register(RollupRun)
class RollupRunAdmin(WrittenByCodeAdminMixin, admin.ModelAdmin):
    """Roll-up runs, read-only: what each did and, for a failed one, its error.

    Every role sees them, as in the API (reads are open to every role); runs are
    written by the job alone, so nobody adds, changes or deletes one here.
    """

    list_display = [
        "started_at",
        "reason",
        "status",
        "day",
        "shared_goals",
        "breached",
        "duration_seconds",
        "error_summary",
    ]
    list_filter = ["status", "reason"]
    date_hierarchy = "started_at"
    readonly_fields = [
        "reason",
        "status",
        "day",
        "shared_goals",
        "breached",
        "started_at",
        "finished_at",
        "duration_seconds",
        "error",
    ]

    @admin.display(description="Error")
    def error_summary(self, run: RollupRun) -> str:
        return run.error[:120] + ("..." if len(run.error) > 120 else "")

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        user = request.user
        return is_cco(user) or is_bi_reader(user) or is_silo_manager(user)
