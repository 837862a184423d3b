"""The planning cycle pages: the CCO team's whole view, and each silo manager's part.

The CCO team sees every silo's sign-off, the open conflicts of the cycle's goals, the
funding against the budget, the readiness check, the shared goals with their progress
trend, and moves the phase (the commit shows what blocks it). A silo manager sees the
parts of their own silos and signs off for them from here.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.views.generic import TemplateView

from conflicts import services as conflict_services
from conflicts.models import Severity
from conflicts.models import Status as ConflictStatus
from conflicts.selectors import conflict_list, severity_rank
from conflicts.views import LoginThenRoleMixin
from goals.models import Goal, Guardrail, SharedGoalSnapshot
from goals.selectors import (
    goal_attainment,
    goal_list_with_actuals,
    shared_goals_with_progress,
)
from metrics.models import Silo
from metrics.roles import is_cco, is_silo_manager
from planning import charts, readiness, services
from planning.api.views import readiness_view
from planning.models import Answer, Phase, PlanningCycle
from planning.selectors import cycle_list

#: How many days of snapshots the trend chart shows.
TREND_DAYS = 120


def clean_text(data: Any, name: str, limit: int) -> str:
    """Return a posted text field, refusing NUL characters and overlong values (400)."""
    value = data.get(name, "")
    if not services.storable_text(value, limit):
        raise ValidationError(
            {name: f"At most {limit} characters, without NUL characters."}
        )
    return value


class PlannersOnlyMixin(LoginThenRoleMixin):
    """The CCO team and silo managers; BI readers and others get 403."""

    def test_func(self) -> bool:
        user = self.request.user
        return is_cco(user) or is_silo_manager(user)


def my_silo_ids(user: Any) -> set[int] | None:
    """Return the silos whose part ``user`` sees (None: every silo, the CCO team)."""
    if is_cco(user):
        return None
    return set(user.managed_silos.values_list("pk", flat=True))


class CycleListView(PlannersOnlyMixin, TemplateView):
    template_name = "planning/cycles.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["cycles"] = cycle_list().order_by("-start_date")
        return context


class CycleDetailView(PlannersOnlyMixin, TemplateView):
    template_name = "planning/cycle.html"

    def get_cycle(self) -> PlanningCycle:
        return get_object_or_404(cycle_list(), pk=self.kwargs["pk"])

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        cycle = kwargs.get("cycle") or self.get_cycle()
        user = self.request.user
        mine = my_silo_ids(user)
        cco = mine is None

        participants = list(cycle.silos.all())
        signable = services.silo_ids_managed_by(user)
        signed = {sign_off.silo_id: sign_off for sign_off in cycle.sign_offs.all()}
        changed = services.plan_changed_at(cycle)
        sign_off_rows = [
            {
                "silo": silo,
                "sign_off": signed.get(silo.pk),
                "current": silo.pk in signed
                and (changed is None or signed[silo.pk].signed_at >= changed),
                "can_sign": silo.pk in signable,
            }
            for silo in participants
            if cco or silo.pk in mine
        ]

        goals = goal_list_with_actuals(
            Goal.objects.filter(cycle=cycle).order_by("kpi__silo__position", "kpi__key")
        )
        if not cco:
            goals = goals.filter(kpi__silo_id__in=mine)
        goal_rows = [(goal, goal_attainment(goal)) for goal in goals]

        kpis = Goal.objects.filter(cycle=cycle).values("kpi_id")
        conflicts = (
            conflict_list()
            .filter(
                Q(leader_kpi__in=kpis) | Q(affected_kpi__in=kpis),
                stale=False,
                status__in=[ConflictStatus.OPEN, ConflictStatus.ACKNOWLEDGED],
            )
            .annotate(rank=severity_rank())
            .order_by("rank", "id")
        )
        if not cco:
            conflicts = conflicts.filter(
                Q(leader_silo_id__in=mine) | Q(affected_silo_id__in=mine)
            )
        conflict_rows = [(c, conflict_services.describe(c)) for c in conflicts]

        priorities = list(cycle.priorities.all())
        funding_rows = []
        for priority in priorities:
            allocations = [
                a for a in priority.allocations.all() if cco or a.silo_id in mine
            ]
            responsibilities = [
                r for r in priority.responsibilities.all() if cco or r.silo_id in mine
            ]
            funding_rows.append(
                {
                    "priority": priority,
                    "allocations": allocations,
                    "responsibilities": responsibilities,
                    "total": sum((a.amount for a in allocations), Decimal("0")),
                }
            )

        shared = list(
            shared_goals_with_progress()
            .filter(cycle=cycle)
            .prefetch_related(
                Prefetch(
                    "guardrails", queryset=Guardrail.objects.select_related("kpi")
                ),
                "contributions__goal__kpi__silo",
            )
            .order_by("name")
        )
        history: dict[int, list[tuple[str, float | None]]] = {}
        since = timezone.localdate() - dt.timedelta(days=TREND_DAYS)
        for shared_goal_id, day, progress in (
            SharedGoalSnapshot.objects.filter(
                shared_goal__in=[s.pk for s in shared], day__gte=since
            )
            .order_by("shared_goal_id", "day")
            .values_list("shared_goal_id", "day", "progress")
        ):
            history.setdefault(shared_goal_id, []).append((day.isoformat(), progress))
        shared_rows = [
            {
                "shared_goal": s,
                "trend": charts.progress_trend(history.get(s.pk, [])),
                "silos": sorted({c.goal.kpi.silo.name for c in s.contributions.all()}),
            }
            for s in shared
            if cco or any(c.goal.kpi.silo_id in mine for c in s.contributions.all())
        ]

        # The commit gate is the CCO team's view; a manager sees their own part.
        blockers = (
            services.commit_blockers(cycle, changed=changed)
            if cco and cycle.phase == Phase.ALIGNING
            else []
        )
        next_phase = services.FORWARD.get(cycle.phase)
        context.update(
            cycle=cycle,
            cco=cco,
            my_silos=Silo.objects.filter(pk__in=mine or ()).order_by("position")
            if not cco
            else [],
            sign_off_rows=sign_off_rows,
            signed_count=sum(1 for row in sign_off_rows if row["current"]),
            goal_rows=goal_rows,
            conflict_rows=conflict_rows,
            high_conflicts=sum(
                1 for c, _ in conflict_rows if c.severity == Severity.HIGH
            ),
            funding_rows=funding_rows,
            budget_left=cycle.budget - cycle.allocated,
            readiness=readiness_view(cycle),
            answer_choices=Answer.choices,
            shared_rows=shared_rows,
            blockers=blockers,
            next_phase=next_phase,
            next_phase_label=Phase(next_phase).label if next_phase else "",
            can_reopen=cycle.phase == Phase.COMMITTED,
            errors=kwargs.get("errors", {}),
            phases=Phase.choices,
            statements=readiness.STATEMENTS,
        )
        return context

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        cycle = self.get_cycle()
        action = request.POST.get("action", "")
        user = request.user
        try:
            if action == "phase":
                if not is_cco(user):
                    raise PermissionDenied("Only the CCO team moves the phase.")
                services.move_phase(
                    cycle=cycle,
                    user=user,
                    phase=clean_text(request.POST, "phase", 20),
                    reason=clean_text(request.POST, "reason", 2000),
                )
                done = "The cycle moved on."
            elif action in ("sign_off", "withdraw"):
                silo = get_object_or_404(
                    Silo, slug=clean_text(request.POST, "silo", 40)
                )
                if action == "sign_off":
                    services.sign_off(
                        cycle=cycle,
                        user=user,
                        silo=silo,
                        note=clean_text(request.POST, "note", 2000),
                    )
                    done = f"{silo.name} signed off {cycle}."
                else:
                    services.withdraw_sign_off(cycle=cycle, user=user, silo=silo)
                    done = f"{silo.name}'s sign-off was withdrawn."
            elif action == "readiness":
                if not is_cco(user):
                    raise PermissionDenied(
                        "Only the CCO team answers the readiness check."
                    )
                answers = [
                    {
                        "number": number,
                        "answer": clean_text(request.POST, f"answer_{number}", 6),
                        "note": clean_text(request.POST, f"note_{number}", 2000),
                    }
                    for number in range(1, len(readiness.STATEMENTS) + 1)
                    if request.POST.get(f"answer_{number}")
                ]
                services.save_readiness(cycle=cycle, user=user, answers=answers)
                done = "The readiness answers are saved."
            else:
                raise ValidationError({"action": f"Unknown action {action!r}."})
        except ValidationError as error:
            errors = (
                error.message_dict
                if hasattr(error, "error_dict")
                else {"__all__": error.messages}
            )
            context = self.get_context_data(cycle=self.get_cycle(), errors=errors)
            return self.render_to_response(context, status=400)
        messages.success(request, done)
        return redirect("planning:cycle", pk=cycle.pk)
