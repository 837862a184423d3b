"""The product's pages across apps (see home.apps)."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from django.views.generic import TemplateView

from core.roles import has_role, signed_in
from core.web import LoginThenRoleMixin
from home.selectors import home_page, kpi_page
from home.services import home_visit_record
from metrics.models import KPI


class HomeView(LoginThenRoleMixin, TemplateView):
    """Each role's home (``/``): a section for every role the user holds (a silo
    manager's silos, the CCO team's company-wide view, a BI reader's sources).

    Anyone with a role opens it (superusers see the CCO team's part); anyone else
    gets 403. Opening it records the visit, for "new since your last visit".
    """

    template_name = "home/home.html"

    def test_func(self) -> bool:
        return has_role(self.request.user)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        user = signed_in(self.request.user)
        previous_visit = home_visit_record(user=user)
        context.update(home_page(user=user, previous_visit=previous_visit))
        return context


class KpiView(LoginThenRoleMixin, TemplateView):
    """One KPI: values over time against its goal's target and pace, its goals with
    status, declared links, the conflicts the reader may see, and who manages it.

    Every role reads every KPI (transparency across silos is the point, as in the API);
    the conflicts listed are those the reader may open (conflicts_visible_to).
    """

    template_name = "home/kpi.html"

    def test_func(self) -> bool:
        return has_role(self.request.user)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        kpi = get_object_or_404(KPI.objects.select_related("silo"), key=kwargs["key"])
        context.update(kpi_page(kpi, self.request.user))
        return context
