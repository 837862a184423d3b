"""The CCO team's conflict report: web pages behind the login, for the CCO team only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.views import View
from django.views.generic import TemplateView

from conflicts import services
from conflicts.api.serializers import REGISTER_COLUMNS
from conflicts.models import (
    Conflict,
    Status,
)
from conflicts.selectors import (
    conflict_list,
    conflict_page,
    conflicts_visible_to,
    report_page,
)
from core.csv import stream_csv
from core.roles import is_bi_reader, is_cco, is_silo_manager, signed_in
from core.web import CCOOnlyMixin, LoginThenRoleMixin

CSV_FIELDS = REGISTER_COLUMNS


class ConflictReportView(CCOOnlyMixin, TemplateView):
    """Open conflicts grouped by silo pair, most severe first, and the silo heatmap."""

    template_name = "conflicts/report.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(report_page())
        return context


class ConflictDetailView(LoginThenRoleMixin, TemplateView):
    """One conflict: evidence in words, the aligned-changes chart, the declared link,
    the goals involved, its history and, for the CCO team, the workflow form.

    Whoever may read the conflict (conflicts_visible_to: the CCO team, BI readers, the
    managers of its two silos) opens the page; another silo's conflict is a 404. Only
    the CCO team moves it.
    """

    template_name = "conflicts/detail.html"

    def test_func(self) -> bool:
        user = self.request.user
        if self.request.method == "POST" and "comment" not in self.request.POST:
            return is_cco(user)
        return is_cco(user) or is_bi_reader(user) or is_silo_manager(user)

    def get_conflict(self) -> Conflict:
        return get_object_or_404(
            conflicts_visible_to(self.request.user).select_related("link", "last_run"),
            pk=self.kwargs["pk"],
        )

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        conflict = kwargs.get("conflict") or self.get_conflict()
        context.update(conflict_page(conflict))
        # The workflow is the CCO team's; the others read it and comment.
        context["may_review"] = is_cco(self.request.user)
        context.update(
            note=kwargs.get("note", ""),
            errors=kwargs.get("errors", {}),
            comment=kwargs.get("comment", ""),
            comment_errors=kwargs.get("comment_errors", []),
            may_comment=is_cco(self.request.user) or is_silo_manager(self.request.user),
        )
        return context

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        conflict = self.get_conflict()
        if "comment" in request.POST:
            return self.comment(request, conflict)
        status = request.POST.get("status", "")
        note = request.POST.get("note", "")
        try:
            services.conflict_transition(
                conflict=conflict,
                user=signed_in(request.user),
                status=status,
                note=note,
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

    def comment(self, request: HttpRequest, conflict: Conflict) -> HttpResponse:
        body = request.POST.get("comment", "")
        try:
            services.conflict_comment_create(
                conflict=conflict, user=signed_in(request.user), body=body
            )
        except ValidationError as error:
            context = self.get_context_data(
                conflict=conflict,
                comment=body,
                comment_errors=error.message_dict.get("body", []),
            )
            return self.render_to_response(context, status=400)
        messages.success(request, "Your comment is added.")
        return redirect(f"{request.path}#comments")


class ConflictCSVView(CCOOnlyMixin, View):
    """The whole register as CSV (streamed; the same fields as the API)."""

    def get(self, request: HttpRequest) -> StreamingHttpResponse:
        rows = conflict_list().order_by("id").iterator(chunk_size=2000)

        def chunks() -> Iterator[list[list[Any]]]:
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
