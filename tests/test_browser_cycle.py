"""Real-browser test of the cycle workspace on the seeded demo: the CCO team and the
managers the demo seeds take FY2026 from aligning to committed through the pages
alone, as ``make run`` leaves it (seed_demo, then conflict detection).

Every page on the way is checked with axe-core (no serious or critical violation) and
for sideways scrolling, at 1280 px and, for the workspace's own pages, at 390 px.
"""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from playwright.sync_api import Page, expect

from conflicts import services as conflict_services
from conflicts.models import Conflict
from cycles.models import Cycle
from planning import selectors
from planning.demo.data import DEMO_PASSWORD
from tests import test_browser
from tests.a11y import assert_accessible, assert_no_sideways_scroll
from tests.test_browser import ARTIFACTS, save_screenshot

browser = test_browser.browser
page = test_browser.page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

MANAGERS = {
    "marketing_manager": "Marketing",
    "sales_manager": "Sales",
    "operations_manager": "Operations & Delivery",
    "support_manager": "Customer Support",
    "finance_manager": "Finance",
    "product_manager": "Product & Engineering",
}


def log_in_as(page: Page, base_url: str, username: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{base_url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("input[type=submit]")
    expect(page).to_have_url(f"{base_url}/admin/")


def check(
    page: Page, name: str, *, phone: bool = False, sections: tuple[str, ...] = ()
) -> None:
    """Screenshot the page, run axe-core and the sideways check at 1280 px and, with
    ``phone``, at 390 px too (with a screenshot of each of ``sections`` there, which a
    long page's full screenshot shrinks past reading)."""
    assert_accessible(page)
    assert_no_sideways_scroll(page)
    save_screenshot(page, f"{name}.png")
    if phone:
        page.set_viewport_size({"width": 390, "height": 844})
        try:
            assert_accessible(page)
            assert_no_sideways_scroll(page)
            save_screenshot(page, f"{name}-phone.png")
            for section in sections:
                page.locator(f"#{section}").screenshot(
                    path=ARTIFACTS / f"{name}-phone-{section}.png"
                )
        finally:
            page.set_viewport_size({"width": 1280, "height": 900})


def test_the_demo_cycle_goes_from_aligning_to_committed_through_the_pages(
    page, live_server
):
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    conflict_services.detection_run_now()
    cycle = Cycle.objects.get(name="FY2026")
    cycle_url = f"{live_server.url}/report/cycles/{cycle.pk}/"
    high = list(Conflict.objects.filter(severity="high", status="open").order_by("pk"))
    assert len(high) == 4

    # The CCO team: every blocker says who can act, and links to where.
    log_in_as(page, live_server.url, "cco")
    page.goto(cycle_url)
    expect(page).to_have_title("Planning cycle FY2026 · ducttape")
    expect(page.locator("#sign-off-count")).to_have_text("2 of 6 silos")
    expect(page.locator("#blockers .blocker-action")).to_have_text(
        [
            "Marketing's managers (marketing_manager) can sign off here.",
            "Operations & Delivery's managers (operations_manager) can sign off here.",
            "Finance's managers (finance_manager) can sign off here.",
            "Product & Engineering's managers (product_manager) can sign off here.",
            *["The CCO team does it on the conflict's page."] * 4,
        ]
    )
    expect(page.locator("#move")).to_be_disabled()
    check(
        page,
        "cycle-workspace-cco",
        phone=True,
        sections=("workflow", "sign-offs", "goals", "funding"),
    )

    # A funding change voids the two sign-offs: the page says so first.
    page.get_by_role("link", name="Edit the funding of Sales for priority 3").click()
    expect(page).to_have_title(re.compile(r"^Change funding allocation .* FY2026"))
    page.get_by_label("Amount").fill("9999999")
    page.get_by_role("button", name="Save the funding allocation").click()
    expect(page.locator("#id_amount_error")).to_contain_text(
        "over its budget of EUR 2,500,000.00"
    )
    check(page, "cycle-workspace-funding-error", phone=True)
    page.get_by_label("Amount").fill("350000")
    page.get_by_role("button", name="Save the funding allocation").click()
    expect(page.locator("#voids")).to_contain_text(
        "Saving this will void the sign-offs of Sales (sales_manager) and Customer "
        "Support (support_manager)."
    )
    check(page, "cycle-workspace-voids", phone=True)
    page.get_by_role("button", name="Save and void these sign-offs").click()
    expect(page.locator(".messages li")).to_have_text(
        "The funding allocation Sales: EUR 350,000.00 is saved."
    )
    expect(page.locator("#sign-off-count")).to_have_text("0 of 6 silos")
    expect(page.locator("#allocated")).to_have_text("EUR 1,650,000.00")

    # Each open high conflict: its blocker links to its page, where the CCO team
    # accepts it as a trade-off.
    for conflict in high:
        page.goto(cycle_url)
        page.locator(f'#blockers a[href="/report/conflicts/{conflict.pk}/"]').click()
        expect(page).to_have_url(f"{live_server.url}/report/conflicts/{conflict.pk}/")
        page.fill("#note", "Seen in the planning meeting.")
        # Acknowledging gives the conflict an owner and a due date.
        page.select_option("#owner", "cco")
        page.fill("#due_date", "2099-03-31")
        page.click("#workflow button[value=acknowledged]")
        page.fill("#note", "Accepted for FY2026: both silos plan for it.")
        page.click("#workflow button[value=accepted_tradeoff]")
        expect(page.locator(".messages li")).to_contain_text("accepted")

    # A manager changes their own goal on the cycle page, then every manager signs.
    log_in_as(page, live_server.url, "sales_manager")
    page.goto(cycle_url)
    page.get_by_role("link", name="Edit Close 12% more deals").click()
    check(page, "cycle-workspace-goal-form", phone=True)
    page.get_by_label("Notes").fill("Paced with Operations' onboarding capacity.")
    page.get_by_role("button", name="Save the goal").click()
    expect(page.locator(".messages li")).to_have_text(
        "The goal Close 12% more deals is saved."
    )
    check(page, "cycle-workspace-manager", phone=True)
    for username, silo in MANAGERS.items():
        log_in_as(page, live_server.url, username)
        page.goto(cycle_url)
        page.get_by_role("button", name=f"Sign off for {silo}").click()
        expect(page.locator(".messages li")).to_have_text(f"{silo} signed off FY2026.")

    # The commit asks for confirmation on its own page.
    log_in_as(page, live_server.url, "cco")
    page.goto(cycle_url)
    expect(page.locator("#ready")).to_be_visible()
    expect(page.locator("#sign-off-count")).to_have_text("6 of 6 silos")
    page.click("#move")
    expect(page).to_have_title("Commit FY2026 · ducttape")
    expect(page.locator("#sign-off-count")).to_have_text("6 of 6")
    check(page, "cycle-workspace-commit-confirm", phone=True)
    cycle.refresh_from_db()
    assert cycle.phase == "aligning"
    page.get_by_role("button", name="Commit the plan").click()

    expect(page.locator(".messages li")).to_have_text("FY2026 is now committed.")
    expect(page.locator("#phase")).to_have_text("Committed")
    check(page, "cycle-workspace-committed")
    cycle.refresh_from_db()
    assert cycle.phase == "committed"
    assert str(selectors.signoff_counts([cycle])[cycle.pk]) == "6 of 6"
