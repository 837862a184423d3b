"""Every page of the app in a real browser, as the CCO team (who may open them all): axe-core
finds no serious or critical violation and nothing scrolls sideways, at 1280 and 390 px.

The journeys of each role (tests/test_browser*.py) check what the pages do; this one is the
net under all of them, so that a page added later is checked by adding its URL here.
"""

import datetime as dt

import pytest
from playwright.sync_api import expect

from conflicts.models import Conflict
from metrics.models import Measurement
from tests import factories, test_browser
from tests.a11y import assert_accessible, assert_no_sideways_scroll

pytestmark = test_browser.pytestmark

browser = test_browser.browser
page = test_browser.page


@pytest.fixture
def company(silo_a, silo_b, manager_a, manager_b, cco):
    cycle = factories.CycleFactory(name="FY2027", phase="aligning")
    cycle.silos.set([silo_a, silo_b])
    deals = factories.KPIFactory(
        silo=silo_a, slug="deals", name="Deals", unit="deals", aggregation="sum"
    )
    backlog = factories.KPIFactory(
        silo=silo_b,
        slug="backlog",
        name="Ticket backlog",
        unit="tickets",
        direction="lower_is_better",
        aggregation="last",
    )
    for kpi, target in ((deals, 1300.0), (backlog, 50.0)):
        factories.GoalFactory(
            cycle=cycle,
            kpi=kpi,
            baseline=1200 if kpi == deals else 60,
            target=target,
            period_start=dt.date(2027, 1, 1),
            period_end=dt.date(2027, 12, 1),
        )
    Measurement.objects.bulk_create(
        Measurement(
            kpi=kpi, period=dt.date(2026 + (m > 12), (m - 1) % 12 + 1, 1), value=v
        )
        for m in range(1, 19)
        for kpi, v in ((deals, 100.0 + m), (backlog, 60.0 + m % 5))
    )
    # The declared link makes a declared conflict when the transaction commits.
    factories.ImpactLinkFactory(leader_kpi=deals, affected_kpi=backlog, lag=1)
    return cycle


def test_every_page_of_the_app_is_accessible_and_fits_a_phone(
    page, live_server, company
):
    test_browser.log_in(page, live_server.url, "cco")
    conflict = Conflict.objects.get()
    goal = company.goals.order_by("pk").first()
    pages = [
        "/",
        "/kpis/sales.deals/",
        "/kpis/support.backlog/",
        "/report/conflicts/",
        "/report/conflicts/register/",
        "/report/conflicts/register/?tab=closed",
        f"/report/conflicts/{conflict.pk}/",
        "/report/cycles/",
        f"/report/cycles/{company.pk}/",
        f"/report/cycles/{company.pk}/phase/committed/",
        f"/report/cycles/{company.pk}/priorities/new/",
        f"/report/cycles/{company.pk}/roles/new/",
        f"/report/cycles/{company.pk}/funding/new/",
        f"/report/cycles/{company.pk}/goals/new/",
        f"/report/cycles/{company.pk}/goals/{goal.pk}/",
        f"/report/cycles/{company.pk}/goals/{goal.pk}/remove/",
        "/account/token/",
    ]
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        for path in pages:
            response = page.goto(f"{live_server.url}{path}")
            assert response is not None
            assert response.status == 200, path
            expect(page.locator("main h1")).to_be_visible()
            assert_accessible(page)
            assert_no_sideways_scroll(page)
