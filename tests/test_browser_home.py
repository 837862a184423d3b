"""Real-browser checks of each role's home: a visitor opens ``/``, logs in and lands
there; axe-core finds no serious or critical violation and nothing scrolls sideways,
at 1280 and at 390 px wide. Screenshots go to test-artifacts/home-*.png."""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect

from goals.models import Guardrail, SharedGoalSnapshot
from metrics.models import Measurement
from tests import factories, test_browser
from tests.a11y import assert_accessible, assert_no_sideways_scroll
from tests.test_browser import PASSWORD, save_screenshot

browser = test_browser.browser
page = test_browser.page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def company(silo_a, silo_b, manager_a):
    """An aligning cycle with a Sales goal, KPIs with a year of values, a conflict,
    a shared goal with two roll-ups and a guardrail, and a detection run's drivers."""
    today = dt.date.today()
    cycle = factories.CycleFactory(
        name="FY-now",
        phase="aligning",
        start_date=today.replace(month=1, day=1),
        end_date=today.replace(month=12, day=31),
    )
    cycle.silos.set([silo_a, silo_b])
    deals = factories.KPIFactory(
        silo=silo_a, slug="deals_closed", name="Deals closed", unit="deals"
    )
    factories.KPIFactory(silo=silo_a, slug="a_very_long_key_name_for_the_win_rate")
    backlog = factories.KPIFactory(
        silo=silo_b,
        slug="backlog",
        name="Ticket backlog",
        unit="tickets",
        direction="lower_is_better",
        aggregation="last",
    )
    first = today.replace(day=1)
    months = [(first - dt.timedelta(days=31 * n)).replace(day=1) for n in range(14)]
    Measurement.objects.bulk_create(
        [
            Measurement(kpi=deals, period=month, value=100 + index)
            for index, month in enumerate(reversed(months))
        ]
        + [Measurement(kpi=backlog, period=months[1], value=80)]
    )
    goal = factories.GoalFactory(
        cycle=cycle,
        kpi=deals,
        baseline=1200,
        target=1440,
        period_start=cycle.start_date,
        period_end=cycle.end_date.replace(day=1),
    )
    factories.ConflictFactory(leader_kpi=deals, affected_kpi=backlog)
    shared = factories.SharedGoalFactory(cycle=cycle, name="Profitable growth")
    factories.ContributionFactory(shared_goal=shared, goal=goal)
    Guardrail.objects.create(shared_goal=shared, kpi=backlog, baseline=60, tolerance=10)
    for days_ago, value in [(14, 0.2), (7, 0.22), (0, 0.25)]:
        SharedGoalSnapshot.objects.create(
            shared_goal=shared,
            day=today - dt.timedelta(days=days_ago),
            progress=value,
            contributions_with_data=1,
            contributions_total=1,
            computed_at=dt.datetime.now(dt.UTC),
        )
    factories.DetectionRunFactory(
        drivers=[
            {
                "grid": "monthly",
                "number": 1,
                "share": 0.31,
                "silos": 2,
                "kpis": [
                    {"kpi": "Deals closed", "silo": "sales", "correlation": 0.8},
                    {"kpi": "Ticket backlog", "silo": "support", "correlation": 0.7},
                ],
            }
        ]
    )


@pytest.mark.parametrize(
    ("who", "title", "heading"),
    [
        ("manager_a", "Sales manager home · ducttape", "KPIs"),
        ("cco", "CCO team home · ducttape", "Shared goals"),
        ("reader", "BI reader home · ducttape", "Your API token"),
    ],
)
def test_each_role_logs_in_and_lands_on_its_home(
    page, live_server, request, company, who, title, heading
):
    user = request.getfixturevalue(who)
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(f"{live_server.url}/admin/login/?next=/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    expect(page).to_have_url(f"{live_server.url}/")
    expect(page).to_have_title(title)
    expect(page.get_by_role("heading", name=heading)).to_be_visible()
    expect(page.get_by_role("link", name="Home")).to_have_attribute(
        "aria-current", "page"
    )
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        # The charts redraw at the new width before anything is measured.
        page.wait_for_timeout(300)
        assert_accessible(page)
        assert_no_sideways_scroll(page)
        save_screenshot(page, f"home-{who}-{width}.png")
