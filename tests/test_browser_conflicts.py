"""Real-browser journeys of issue 13's conflict pages: the CCO team filters the register
and opens a heatmap cell; a silo manager reads a conflict on a 390 px phone. Every page
is checked with axe-core (no serious or critical violation) and for sideways scrolling
at 1280 and 390 px, and screenshotted to test-artifacts/.
"""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import Page, expect

from tests import factories, test_browser
from tests.a11y import assert_accessible, assert_no_sideways_scroll
from tests.test_browser import log_in, save_screenshot

# The browser fixtures of tests/test_browser.py: one Chromium per module, a fresh
# context per test, a screenshot when a test fails.
browser = test_browser.browser
page = test_browser.page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

WIDE = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def build_register(sales, support):
    """Sales, Finance and Support with four conflicts, KPI values over 2024 for the
    chart, and a comment on the first."""
    finance = factories.SiloFactory(slug="finance", name="Finance", position=30)
    deals = factories.KPIFactory(
        silo=sales, slug="deals_closed", name="Deals closed", unit="deals"
    )
    discount = factories.KPIFactory(
        silo=sales, slug="discount", name="Discount rate", unit="%"
    )
    backlog = factories.KPIFactory(
        silo=support,
        slug="backlog",
        name="Ticket backlog",
        unit="tickets",
        direction="lower_is_better",
    )
    margin = factories.KPIFactory(
        silo=finance, slug="margin", name="Gross margin", unit="%"
    )
    for month in range(1, 13):
        period = dt.date(2024, month, 1)
        factories.MeasurementFactory(kpi=deals, period=period, value=40 + 3 * month)
        factories.MeasurementFactory(
            kpi=backlog, period=period, value=200 + 9 * month + (month % 3) * 4
        )
    conflicts = {
        "deals_backlog": factories.ConflictFactory(
            leader_kpi=deals,
            affected_kpi=backlog,
            effect=2.5,
            effect_low=1.5,
            effect_high=3.5,
            effect_step=4.0,
            grid="monthly",
        ),
        "discount_backlog": factories.ConflictFactory(
            leader_kpi=discount, affected_kpi=backlog, severity="low"
        ),
        "discount_margin": factories.ConflictFactory(
            leader_kpi=discount,
            affected_kpi=margin,
            severity="medium",
            kind="confirmed",
            is_declared=True,
        ),
        "deals_margin": factories.ConflictFactory(
            leader_kpi=deals,
            affected_kpi=margin,
            severity="medium",
            status="accepted_tradeoff",
            note="Growth first this year; Finance agreed in the planning meeting.",
        ),
    }
    return conflicts


def settle(page: Page) -> None:
    """Let the page lay itself out at its new size: Chart.js resizes a chart on the
    next animation frames after its box changes, not at once."""
    page.evaluate(
        "() => new Promise(done => requestAnimationFrame(() =>"
        " requestAnimationFrame(() => setTimeout(done, 100))))"
    )


def check_page(page: Page, name: str) -> None:
    """Check the page at 1280 and at 390 px: axe-core and no sideways scroll, with a
    screenshot of each."""
    for label, size in (("wide", WIDE), ("phone", PHONE)):
        page.set_viewport_size(size)
        settle(page)
        assert_no_sideways_scroll(page)
        assert_accessible(page)
        save_screenshot(page, f"{name}-{label}.png")
    page.set_viewport_size(WIDE)


def test_the_cco_team_filters_the_register_and_opens_a_heatmap_cell(
    page, live_server, cco, silo_a, silo_b
):
    conflicts = build_register(silo_a, silo_b)
    base = live_server.url
    log_in(page, base, "cco")

    page.goto(f"{base}/report/conflicts/")
    expect(page).to_have_title("Conflict report · ducttape")
    # Sales (row) -> Support (column): 2 open, the worst high, in words too.
    sales_row = page.locator("table.heatmap tr").nth(1).locator("td")
    expect(sales_row).to_have_text(["· same silo", "1 worst medium", "2 worst high"])
    check_page(page, "conflicts-report")

    page.get_by_role("link", name="2 worst high").click()

    expect(page).to_have_url(
        f"{base}/report/conflicts/register/?leader_silo=sales&affected_silo=support"
        "&status=open&status=acknowledged&stale=false"
    )
    expect(page.locator("#register-count")).to_contain_text("2 conflicts")
    expect(page.locator("#register tbody tr td:nth-child(2) a")).to_have_text(
        ["Deals closed → Ticket backlog", "Discount rate → Ticket backlog"]
    )
    expect(page.locator("#id_leader_silo")).to_have_value("sales")
    check_page(page, "conflicts-register-cell")

    # Narrow it down with the form: high only.
    page.get_by_label("High").check()
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#register tbody tr")).to_have_count(1)
    expect(page.locator("#register tbody tr").first).to_contain_text(
        "Deals closed → Ticket backlog"
    )
    href = page.locator("#download-csv").get_attribute("href")
    assert href is not None
    assert href.startswith("/report/conflicts.csv?")
    assert "severity=high" in href
    assert "leader_silo=sales" in href
    download = page.request.get(f"{base}{href}")
    assert download.status == 200
    lines = download.text().strip().splitlines()
    assert len(lines) == 2
    assert lines[1].startswith(f"{conflicts['deals_backlog'].pk},observed,")

    # The closed ones and their notes.
    page.get_by_role("link", name="Clear the filters").first.click()
    page.get_by_role("link", name="Closed and accepted trade-offs").click()
    expect(page.locator("#register tbody tr")).to_have_count(1)
    expect(page.locator("#register tbody tr").first).to_contain_text(
        "Growth first this year; Finance agreed in the planning meeting."
    )
    check_page(page, "conflicts-register-closed")

    # Free text, and a bad value said plainly.
    page.goto(f"{base}/report/conflicts/register/")
    page.get_by_label("Text in a KPI or a note").fill("discount")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#register tbody tr")).to_have_count(2)
    response = page.goto(f"{base}/report/conflicts/register/?severity=urgent")
    assert response is not None
    assert response.status == 400
    expect(page.locator("#filter-errors")).to_contain_text(
        "severity: Select a valid choice. urgent is not one of the available choices."
    )
    check_page(page, "conflicts-register-bad-filter")


def test_a_manager_reads_a_conflict_on_a_phone(page, live_server, manager_a, silo_b):
    conflicts = build_register(manager_a.managed_silos.get(), silo_b)
    conflict = conflicts["deals_backlog"]
    base = live_server.url
    log_in(page, base, "manager_a")
    page.set_viewport_size(PHONE)

    page.goto(f"{base}/report/conflicts/{conflict.pk}/")

    expect(page).to_have_title(
        f"Conflict {conflict.pk}: Deals closed → Ticket backlog · ducttape"
    )
    expect(page.locator("#evidence")).to_have_text(
        "When Sales' deals closed rises by 4 deals, Support's ticket backlog rises "
        "by 10 tickets one month later (95% interval 6 to 14)."
    )
    expect(page.locator("#verdict")).to_have_text(
        "That is bad for Support: a lower ticket backlog is better."
    )
    # The workflow is the CCO team's; the chart is drawn by Chart.js.
    expect(page.locator("#workflow")).to_have_count(0)
    page.wait_for_function(
        "() => window.Chart && Chart.getChart("
        "document.querySelector('#values-chart-figure canvas')) !== undefined"
    )
    assert (
        page.evaluate(
            "Chart.getChart(document.querySelector('#values-chart-figure canvas'))"
            ".options.scales.y2.position"
        )
        == "right"
    )
    assert_no_sideways_scroll(page)
    assert_accessible(page)
    save_screenshot(page, "conflict-manager-phone.png")

    # What the numbers mean, and the values as a table, opened.
    page.get_by_text("What the numbers mean").click()
    expect(page.locator("#numbers")).to_contain_text("Correlation r = -0.71")
    page.get_by_text("Values as a table").click()
    expect(page.locator(".chart-table tbody tr")).to_have_count(12)
    expect(page.locator(".chart-table tbody tr").first.locator("th, td")).to_have_text(
        ["Jan 2024", "43 deals", "213 tickets"]
    )
    assert_no_sideways_scroll(page)
    assert_accessible(page)
    save_screenshot(page, "conflict-manager-phone-open.png")

    page.get_by_label("Your comment").fill("Sales will pace the Q3 push with Support.")
    page.get_by_role("button", name="Add the comment").click()
    expect(page.locator(".messages li")).to_have_text("Your comment is added.")
    check_page(page, "conflict-manager-commented")
