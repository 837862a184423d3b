"""The planning cycle pages: the CCO team's whole view, and each silo manager's part.

The CCO team sees every silo's sign-off, the open conflicts of the cycle's goals, the
funding against the budget, the readiness check, the shared goals with their progress
trend, and moves the phase (the commit shows what blocks it). A silo manager sees the
parts of their own silos and signs off for them from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.generic import TemplateView

from core.roles import is_cco, is_silo_manager
from core.web import LoginThenRoleMixin
from cycles.models import Cycle
from metrics.models import Silo
from planning import readiness, services
from planning.selectors import CycleTotals, cycle_list, cycle_page

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

#: How many days of snapshots the trend chart shows.


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


class CycleListView(PlannersOnlyMixin, TemplateView):
    template_name = "planning/cycles.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["cycles"] = cycle_list().order_by("-start_date")
        return context


class CycleDetailView(PlannersOnlyMixin, TemplateView):
    template_name = "planning/cycle.html"

    def get_cycle(self) -> WithAnnotations[Cycle, CycleTotals]:
        return get_object_or_404(cycle_list(), pk=self.kwargs["pk"])

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        cycle = kwargs.get("cycle") or self.get_cycle()
        context.update(cycle_page(cycle=cycle, user=self.request.user))
        context.update(errors=kwargs.get("errors", {}))
        return context

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        cycle = self.get_cycle()
        action = request.POST.get("action", "")
        user = request.user
        try:
            if action == "phase":
                if not is_cco(user):
                    raise PermissionDenied("Only the CCO team moves the phase.")
                services.cycle_phase_move(
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
                    services.signoff_create(
                        cycle=cycle,
                        user=user,
                        silo=silo,
                        note=clean_text(request.POST, "note", 2000),
                    )
                    done = f"{silo.name} signed off {cycle}."
                else:
                    services.signoff_withdraw(cycle=cycle, user=user, silo=silo)
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
                services.readiness_answers_save(cycle=cycle, user=user, answers=answers)
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
