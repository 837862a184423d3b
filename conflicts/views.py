"""The CCO team's conflict report: web pages behind the login, for the CCO team only."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin, UserPassesTestMixin
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.views import View
from django.views.generic import TemplateView

from conflicts import charts, services
from conflicts.api.serializers import REGISTER_COLUMNS
from conflicts.models import (
    CLOSED_STATUSES,
    SEVERITY_RANK,
    TRANSITIONS,
    Conflict,
    DetectionRun,
    Status,
)
from conflicts.selectors import conflict_list, severity_rank
from core.csv import stream_csv
from goals.models import Goal
from goals.selectors import goal_attainment, goal_list_with_actuals
from metrics.models import Silo
from metrics.roles import is_cco

#: Statuses still being worked: what "open conflicts" means on the report.
WORKING = (Status.OPEN, Status.ACKNOWLEDGED)

#: The workflow buttons say what they do.
ACTION_LABELS = {
    Status.OPEN: "Reopen",
    Status.ACKNOWLEDGED: "Acknowledge",
    Status.ACCEPTED_TRADEOFF: "Accept as trade-off",
    Status.RESOLVED: "Mark resolved",
    Status.DISMISSED: "Dismiss",
}

CSV_FIELDS = REGISTER_COLUMNS


class LoginThenRoleMixin(LoginRequiredMixin, UserPassesTestMixin):
    """Anonymous visitors go to the login page; signed-in users that ``test_func``
    refuses get 403 (not a login page they could do nothing with)."""

    def handle_no_permission(self) -> HttpResponse:
        if self.request.user.is_authenticated:
            self.raise_exception = True
        return super().handle_no_permission()


class CCOOnlyMixin(LoginThenRoleMixin):
    """The CCO team only."""

    def test_func(self) -> bool:
        return is_cco(self.request.user)


class ConflictReportView(CCOOnlyMixin, TemplateView):
    """Open conflicts grouped by silo pair, most severe first, and the silo heatmap."""

    template_name = "conflicts/report.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        working = (
            conflict_list()
            .filter(status__in=WORKING, stale=False)
            .annotate(rank=severity_rank())
            .order_by("rank", "leader_silo__position", "affected_silo__position", "id")
        )
        groups: dict[tuple[int, int], dict[str, Any]] = {}
        for conflict in working:
            conflict.sentence = services.describe(conflict)
            group = groups.setdefault(
                (conflict.leader_silo_id, conflict.affected_silo_id),
                {
                    "leader": conflict.leader_silo,
                    "affected": conflict.affected_silo,
                    "conflicts": [],
                },
            )
            group["conflicts"].append(conflict)
        for group in groups.values():
            items = group["conflicts"]
            group["worst"] = max(SEVERITY_RANK[c.severity] for c in items)
            group["worst_label"] = items[0].get_severity_display()
            group["high"] = sum(1 for c in items if c.severity == "high")
        ordered = sorted(
            groups.values(),
            key=lambda g: (
                -g["worst"],
                -g["high"],
                -len(g["conflicts"]),
                g["leader"].position,
                g["affected"].position,
            ),
        )
        counts = {
            (row["leader_silo"], row["affected_silo"]): (row["total"], row["high"])
            for row in Conflict.objects.filter(status__in=WORKING, stale=False)
            .values("leader_silo", "affected_silo")
            .annotate(total=Count("id"), high=Count("id", filter=Q(severity="high")))
        }
        silos = list(Silo.objects.order_by("position", "name"))
        context.update(
            groups=ordered,
            silos=silos,
            heatmap=charts.heatmap(silos, counts),
            open_total=sum(len(g["conflicts"]) for g in ordered),
            closed_total=Conflict.objects.filter(status__in=CLOSED_STATUSES).count(),
            stale_total=Conflict.objects.filter(stale=True).count(),
            last_run=DetectionRun.objects.order_by("-id").first(),
        )
        return context


class ConflictDetailView(CCOOnlyMixin, TemplateView):
    """One conflict: evidence in words, the aligned-changes chart, the declared link,
    the goals involved, its history and the workflow form."""

    template_name = "conflicts/detail.html"

    def get_conflict(self) -> Conflict:
        return get_object_or_404(
            conflict_list().select_related("link", "last_run"), pk=self.kwargs["pk"]
        )

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        conflict = kwargs.get("conflict") or self.get_conflict()
        goals = list(
            goal_list_with_actuals(
                Goal.objects.filter(
                    kpi__in=[conflict.leader_kpi_id, conflict.affected_kpi_id]
                ).exclude(cycle__phase=services.CLOSED_PHASE)
            ).order_by("cycle__start_date", "kpi__key")
        )
        for goal in goals:
            goal.attainment_value = goal_attainment(goal)
        chart = charts.change_chart(
            conflict.leader_kpi, conflict.affected_kpi, conflict.lag or 0
        )
        values = charts.values_chart(conflict.leader_kpi, conflict.affected_kpi)
        context.update(
            conflict=conflict,
            sentence=services.describe(conflict),
            chart=chart,
            values_chart=values,
            unit_name=services.unit_of(conflict),
            effect_rate=services.effect_rate(conflict),
            goals=goals,
            transitions=conflict.transitions.select_related("user", "run"),
            next_statuses=[
                (value, ACTION_LABELS[value]) for value in TRANSITIONS[conflict.status]
            ],
            note=kwargs.get("note", ""),
            errors=kwargs.get("errors", {}),
            unit=services.unit_of(conflict),
        )
        return context

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        conflict = self.get_conflict()
        status = request.POST.get("status", "")
        note = request.POST.get("note", "")
        try:
            services.transition(
                conflict=conflict, user=request.user, status=status, note=note
            )
        except ValidationError as error:
            context = self.get_context_data(
                conflict=conflict, note=note, errors=error.message_dict
            )
            return self.render_to_response(context, status=400)
        messages.success(
            request, f"Conflict {conflict.pk} is now {Status(status).label.lower()}."
        )
        return redirect("conflicts:detail", pk=conflict.pk)


class ConflictCSVView(CCOOnlyMixin, View):
    """The whole register as CSV (streamed; the same fields as the API)."""

    def get(self, request: HttpRequest) -> StreamingHttpResponse:
        rows = conflict_list().order_by("id").iterator(chunk_size=2000)

        def chunks():  # type: ignore[no-untyped-def]
            for c in rows:
                yield [
                    [
                        c.pk,
                        c.kind,
                        c.leader_kpi.key,
                        c.affected_kpi.key,
                        c.leader_silo.slug,
                        c.affected_silo.slug,
                        "" if c.lag is None else c.lag,
                        "" if c.correlation is None else repr(c.correlation),
                        "" if c.p_value is None else repr(c.p_value),
                        "" if c.q_value is None else repr(c.q_value),
                        "" if c.periods is None else c.periods,
                        c.grid,
                        "" if c.effect is None else repr(c.effect),
                        "" if c.effect_low is None else repr(c.effect_low),
                        "" if c.effect_high is None else repr(c.effect_high),
                        c.severity,
                        c.status,
                        c.first_detected_at.isoformat(),
                        c.last_detected_at.isoformat(),
                        c.note,
                        str(c.stale).lower(),
                        str(c.contradicted).lower(),
                        str(c.goal_at_risk).lower(),
                    ]
                ]

        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        response = StreamingHttpResponse(
            stream_csv(CSV_FIELDS, chunks()), content_type="text/csv"
        )
        response["Content-Disposition"] = (
            f'attachment; filename="ducttape-conflicts-{stamp}.csv"'
        )
        return response
