"""The KPI page in a real browser: the charts draw (Chart.js, values on hover), the
table alternative opens, axe-core finds no serious violation, and nothing scrolls
sideways on a phone."""

import datetime as dt

import pytest
from playwright.sync_api import expect

from metrics.models import Measurement
from tests import factories, test_browser
from tests.a11y import assert_accessible, assert_no_sideways_scroll

pytestmark = test_browser.pytestmark

browser = test_browser.browser
page = test_browser.page


@pytest.fixture
def deals(silo_a, silo_b, manager_a):
    cycle = factories.CycleFactory(name="FY2027", phase="committed")
    kpi = factories.KPIFactory(
        silo=silo_a, slug="deals", name="Deals", unit="deals", aggregation="sum"
    )
    factories.GoalFactory(
        cycle=cycle,
        kpi=kpi,
        baseline=1200,
        target=1440,
        period_start=dt.date(2027, 1, 1),
        period_end=dt.date(2027, 12, 1),
    )
    Measurement.objects.bulk_create(
        [
            Measurement(kpi=kpi, period=dt.date(2026, m, 1), value=90 + m)
            for m in range(1, 13)
        ]
        + [
            Measurement(kpi=kpi, period=dt.date(2027, m, 1), value=105 + m)
            for m in range(1, 7)
        ]
    )
    backlog = factories.KPIFactory(silo=silo_b, slug="backlog", name="Backlog")
    factories.ImpactLinkFactory(leader_kpi=kpi, affected_kpi=backlog, lag=2)
    return kpi


@pytest.mark.parametrize("width", [1280, 390])
def test_a_manager_reads_a_kpi_page(page, live_server, deals, manager_a, width):
    page.set_viewport_size({"width": width, "height": 900})
    test_browser.log_in(page, live_server.url, "manager_a")

    page.goto(f"{live_server.url}/kpis/sales.deals/")

    expect(page).to_have_title("Deals (Sales) · KPI · ducttape")
    canvases = page.locator("canvas[data-chart]")
    expect(canvases).to_have_count(2)
    # Chart.js drew on both: a drawn canvas has a non-zero backing size.
    page.wait_for_function(
        "() => [...document.querySelectorAll('canvas[data-chart]')]"
        ".every(c => window.Chart && window.Chart.getChart(c))"
    )
    tooltip = page.evaluate(
        "() => { const chart = Chart.getChart(document.querySelector("
        "'canvas[data-chart=\"kpi-running-data\"]'));"
        " chart.tooltip.setActiveElements([{datasetIndex: 0, index: 5}], {x: 0, y: 0});"
        " chart.update(); return chart.tooltip.body.map(b => b.lines).flat(); }"
    )
    # 106 + 107 + .. + 111 by June.
    assert tooltip[0] == "Running total: 651 deals"
    page.locator("#kpi-running-figure summary").click()
    expect(page.locator("#kpi-running-figure table")).to_contain_text("651 deals")
    assert_accessible(page)
    assert_no_sideways_scroll(page)
    test_browser.save_screenshot(page, f"kpi-page-{width}.png")
