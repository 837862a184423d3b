"""The conflict pages behind the login: the CCO team's report, register and its CSV,
and each conflict's page for whoever may read it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.views import View
from django.views.generic import TemplateView

from conflicts import services
from conflicts.api.serializers import REGISTER_COLUMNS
from conflicts.forms import TransitionForm
from conflicts.models import (
    Conflict,
    Status,
)
from conflicts.selectors import (
    conflict_page,
    conflicts_visible_to,
    register_filter,
    register_page,
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


class ConflictRegisterView(CCOOnlyMixin, TemplateView):
    """The whole register, filtered (silo, severity, status, kind, text), with tabs for
    the conflicts under review and the closed ones with their notes, and the CSV of
    the filtered view. A filter value it cannot read is a 400 that says which."""

    template_name = "conflicts/register.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        context = self.get_context_data(**kwargs)
        context.update(register_page(request.GET))
        return self.render_to_response(
            context, status=400 if context["errors"] else 200
        )


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
            owner=kwargs.get("owner", ""),
            due_date=kwargs.get("due_date", ""),
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
        form = TransitionForm(request.POST)
        status = request.POST.get("status", "")
        try:
            if not form.is_valid():
                raise ValidationError(
                    {name: list(problems) for name, problems in form.errors.items()}
                )
            services.conflict_transition(
                conflict=conflict,
                user=signed_in(request.user),
                status=form.cleaned_data["status"],
                note=form.cleaned_data["note"],
                owner=form.cleaned_data["owner"],
                due_date=form.cleaned_data["due_date"],
            )
        except ValidationError as error:
            context = self.get_context_data(
                conflict=conflict,
                note=request.POST.get("note", ""),
                owner=request.POST.get("owner", ""),
                due_date=request.POST.get("due_date", ""),
                errors=error.message_dict,
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
    """The register as CSV, filtered as the register page is (the same query), in
    its order; streamed, with the API's fields and who owns it, by when, overdue."""

    def get(self, request: HttpRequest) -> HttpResponseBase:
        filterset = register_filter(request.GET)
        if not filterset.is_valid():
            return HttpResponseBadRequest(
                "The register cannot be filtered so: "
                + " ".join(
                    f"{name}: {' '.join(problems)}"
                    for name, problems in filterset.errors.items()
                ),
                content_type="text/plain; charset=utf-8",
            )
        rows = filterset.qs.iterator(chunk_size=2000)

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
                        c.owner.get_username() if c.owner else "",
                        c.due_date.isoformat() if c.due_date else "",
                        # Annotated by conflicts.selectors.with_overdue.
                        str(c.overdue).lower(),
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
