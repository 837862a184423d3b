"""The planning cycle pages: the CCO team's whole view, and each silo manager's part.

The CCO team sees every silo's sign-off, the open conflicts of the cycle's goals, the
funding against the budget, the readiness check, the shared goals with their progress
trend, and moves the phase (the commit shows what blocks it). A silo manager sees the
parts of their own silos and signs off for them from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.generic import TemplateView

from core.roles import User, is_cco, is_silo_manager
from core.services import trial_write
from core.web import LoginThenRoleMixin
from cycles.models import Cycle, Phase
from goals.services import goal_delete, goal_save
from metrics.models import Silo
from planning import readiness, selectors, services
from planning.forms import (
    FundingAllocationForm,
    GoalForm,
    PriorityForm,
    ResponsibilityForm,
    ServiceForm,
    add_service_errors,
)
from planning.models import SignOff, money
from planning.selectors import CycleTotals, cycle_list, cycle_page

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

#: The moves that ask for confirmation first: each locks or ends the plan.
CONFIRMED_PHASES = (Phase.COMMITTED, Phase.CLOSED)


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
        context["cycle_rows"] = selectors.cycle_list_rows()
        return context


class CycleDetailView(PlannersOnlyMixin, TemplateView):
    template_name = "planning/cycle.html"

    def get_cycle(self) -> WithAnnotations[Cycle, CycleTotals]:
        return get_object_or_404(cycle_list(), pk=self.kwargs["pk"])

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        cycle = kwargs.get("cycle") or self.get_cycle()
        context.update(cycle_page(cycle=cycle, user=self.request.user))
        context.update(
            errors=kwargs.get("errors", {}), confirmed_phases=CONFIRMED_PHASES
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
                phase = clean_text(request.POST, "phase", 20)
                if phase in CONFIRMED_PHASES:
                    return redirect("planning:phase", pk=cycle.pk, phase=phase)
                services.cycle_phase_move(
                    cycle=cycle,
                    user=user,
                    phase=phase,
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


# --- The plan's edit pages ------------------------------------------------------------


@dataclass(frozen=True)
class PlanPart:
    """One kind of row of the plan that the cycle page edits: who may, what the form
    chooses from, and the services that write it."""

    noun: str
    section: str  # its section of the cycle page
    cco_only: bool
    form_class: type[ServiceForm]
    objects: Callable[[Cycle, User], QuerySet[Any]]
    choices: Callable[[Cycle, User], dict[str, Any]]
    save: Callable[..., Any]
    delete: Callable[..., None]
    label: Callable[[Any], str] = str


def _silos_and_priorities(cycle: Cycle, user: User) -> dict[str, Any]:
    return {
        "silos": selectors.participants_of(cycle),
        "priorities": selectors.priorities_of(cycle),
    }


def _save_priority(*, user: User, cycle: Cycle, instance: Any, data: dict) -> Any:
    return services.priority_save(user=user, cycle=cycle, priority=instance, **data)


def _save_role(*, user: User, cycle: Cycle, instance: Any, data: dict) -> Any:
    fields = dict(data)
    return services.responsibility_save(
        user=user, priority=fields.pop("priority"), responsibility=instance, **fields
    )


def _save_funding(*, user: User, cycle: Cycle, instance: Any, data: dict) -> Any:
    fields = dict(data)
    return services.funding_allocation_save(
        user=user, priority=fields.pop("priority"), allocation=instance, **fields
    )


def _save_goal(*, user: User, cycle: Cycle, instance: Any, data: dict) -> Any:
    # A new goal is owned by whoever enters it, as in the admin.
    owner = {} if instance is not None else {"owner": user}
    return goal_save(user=user, goal=instance, cycle=cycle, **data, **owner)


PLAN_PARTS: dict[str, PlanPart] = {
    "priorities": PlanPart(
        noun="priority",
        section="funding",
        cco_only=True,
        form_class=PriorityForm,
        objects=lambda cycle, user: selectors.priorities_of(cycle),
        choices=lambda cycle, user: {"silos": selectors.participants_of(cycle)},
        save=_save_priority,
        delete=lambda *, user, instance: services.priority_delete(
            user=user, priority=instance
        ),
    ),
    "roles": PlanPart(
        noun="RACI role",
        section="funding",
        cco_only=True,
        form_class=ResponsibilityForm,
        objects=lambda cycle, user: selectors.responsibilities_of(cycle),
        choices=_silos_and_priorities,
        save=_save_role,
        delete=lambda *, user, instance: services.responsibility_delete(
            user=user, responsibility=instance
        ),
    ),
    "funding": PlanPart(
        noun="funding allocation",
        section="funding",
        cco_only=True,
        form_class=FundingAllocationForm,
        objects=lambda cycle, user: selectors.allocations_of(cycle),
        choices=_silos_and_priorities,
        save=_save_funding,
        delete=lambda *, user, instance: services.funding_allocation_delete(
            user=user, allocation=instance
        ),
        label=lambda allocation: (
            f"{allocation.silo}: "
            + money(allocation.amount, allocation.priority.cycle.currency)
        ),
    ),
    "goals": PlanPart(
        noun="goal",
        section="goals",
        cco_only=False,
        form_class=GoalForm,
        objects=selectors.goals_editable_in,
        choices=lambda cycle, user: {"kpis": selectors.goal_kpis_for(cycle, user)},
        save=_save_goal,
        delete=lambda *, user, instance: goal_delete(user=user, goal=instance),
    ),
}


def voided_ids(sign_offs: list[SignOff]) -> str:
    """The sign-offs a confirmation step listed, as the form carries them back."""
    return ",".join(str(sign_off.pk) for sign_off in sign_offs)


class PlanPartMixin(PlannersOnlyMixin):
    """A plan edit page: the part named in the URL, for the roles it allows, of a
    cycle (404 when there is none) and, when the URL names one, a row of it (404 when
    the user may not change it)."""

    part: PlanPart
    cycle: Cycle
    kwargs: dict[str, Any]

    def test_func(self) -> bool:
        # An unknown part is "not found", but only once the role allows the pages.
        part = PLAN_PARTS.get(self.kwargs["kind"])
        if not super().test_func():
            return False
        if part is None:
            raise Http404("No such part of the plan.")
        self.part = part
        return not part.cco_only or is_cco(self.request.user)

    def load(self) -> Any:
        """Load the cycle and the row the URL names (None: a new one)."""
        self.cycle = get_object_or_404(Cycle, pk=self.kwargs["pk"])
        if "part_id" not in self.kwargs:
            self.stored_label = ""
            return None
        instance = get_object_or_404(
            self.part.objects(self.cycle, self.request.user), pk=self.kwargs["part_id"]
        )
        # As stored: a refused or trial write leaves its values on the instance.
        self.stored_label = self.part.label(instance)
        return instance

    def cycle_url(self) -> str:
        return reverse("planning:cycle", args=[self.cycle.pk]) + f"#{self.part.section}"

    def confirmed(self) -> bool:
        """Whether the user saw exactly the sign-offs this write would void now (a
        sign-off given since the confirmation page asks again)."""
        voids = selectors.signoffs_voided_by_change(self.cycle)
        self.voids = voids
        return not voids or self.request.POST.get("voids") == voided_ids(voids)


class PlanPartEditView(PlanPartMixin, TemplateView):
    """Add or change a priority, a RACI role, a funding allocation or a goal."""

    template_name = "planning/plan_edit.html"

    def make_form(self, instance: Any, data: Any = None) -> ServiceForm:
        initial = {}
        if instance is None and self.request.GET.get("priority", "").isdigit():
            initial["priority"] = int(self.request.GET["priority"])
        return self.part.form_class(
            data,
            instance=instance,
            initial=initial,
            **self.part.choices(self.cycle, self.request.user),
        )

    def page(self, form: ServiceForm, instance: Any, status: int = 200) -> HttpResponse:
        verb = "Change" if instance is not None else "Add"
        return self.render_to_response(
            {
                "cycle": self.cycle,
                "form": form,
                "instance": instance,
                "part": self.part,
                "title": f"{verb} {self.part.noun} {self.stored_label}".strip(),
                "voids": getattr(self, "voids", []),
                "voids_ids": voided_ids(getattr(self, "voids", [])),
                "asking": getattr(self, "asking", False),
                "cycle_url": self.cycle_url(),
            },
            status=status,
        )

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        instance = self.load()
        return self.page(self.make_form(instance), instance)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        instance = self.load()
        form = self.make_form(instance, request.POST)
        if not form.is_valid():
            return self.page(form, instance, status=400)

        def write() -> Any:
            return self.part.save(
                user=request.user,
                cycle=self.cycle,
                instance=instance,
                data=dict(form.cleaned_data),
            )

        try:
            if not self.confirmed():
                # Ask first, but only about a write that would succeed.
                trial_write(write)
                self.asking = True
                return self.page(form, instance)
            saved = write()
        except ValidationError as error:
            add_service_errors(form, error)
            return self.page(form, instance, status=400)
        messages.success(
            request, f"The {self.part.noun} {self.part.label(saved)} is saved."
        )
        return redirect(self.cycle_url())


class PlanPartRemoveView(PlanPartMixin, TemplateView):
    """Confirm, then remove, a priority, a RACI role, a funding allocation or a goal."""

    template_name = "planning/plan_remove.html"

    def page(self, instance: Any, errors: list[str], status: int = 200) -> HttpResponse:
        return self.render_to_response(
            {
                "cycle": self.cycle,
                "instance": instance,
                "label": self.stored_label,
                "part": self.part,
                "errors": errors,
                "voids": self.voids,
                "voids_ids": voided_ids(self.voids),
                "cycle_url": self.cycle_url(),
            },
            status=status,
        )

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        instance = self.load()
        self.voids = selectors.signoffs_voided_by_change(self.cycle)
        return self.page(instance, [])

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        instance = self.load()
        if not self.confirmed():
            return self.page(instance, [])
        name = self.part.label(instance)
        try:
            self.part.delete(user=request.user, instance=instance)
        except ValidationError as error:
            return self.page(instance, error.messages, status=400)
        messages.success(request, f"The {self.part.noun} {name} is removed.")
        return redirect(self.cycle_url())


class PhaseConfirmView(PlannersOnlyMixin, TemplateView):
    """Ask the CCO team to confirm a commit or a close, then move the phase."""

    template_name = "planning/phase_confirm.html"

    def test_func(self) -> bool:
        return is_cco(self.request.user)

    def page(self, errors: list[str], status: int = 200) -> HttpResponse:
        cycle = get_object_or_404(Cycle, pk=self.kwargs["pk"])
        phase = self.kwargs["phase"]
        if phase not in CONFIRMED_PHASES:
            raise Http404("Only commits and closes ask for confirmation.")
        return self.render_to_response(
            {
                **selectors.phase_confirmation(cycle=cycle, phase=phase),
                "errors": errors,
            },
            status=status,
        )

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self.page([])

    def post(self, request: HttpRequest, pk: int, phase: str) -> HttpResponse:
        cycle = get_object_or_404(Cycle, pk=pk)
        if phase not in CONFIRMED_PHASES:
            raise Http404("Only commits and closes ask for confirmation.")
        try:
            services.cycle_phase_move(cycle=cycle, user=request.user, phase=phase)
        except ValidationError as error:
            return self.page(error.messages, status=400)
        messages.success(request, f"{cycle} is now {Phase(phase).label.lower()}.")
        return redirect("planning:cycle", pk=cycle.pk)
