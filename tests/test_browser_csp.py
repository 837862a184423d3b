"""Real-browser checks of issue 10: the Content-Security-Policy and Permissions-Policy
block nothing the pages need (point 8), and the lockout page (point 4).

A headless Chromium opens one page of every kind (the admin's login, index, a change
form with its widgets, the measurement export with its inline handler, the conflict
report and a conflict's chart, a cycle page, the browsable API, Swagger UI trying an
operation) and the lockout page, and listens for ``securitypolicyviolation`` events,
console errors and warnings, and uncaught page errors: there must be none. A control at
the end injects an inline script, which the policy must block and the listener see, so
the listener cannot pass by hearing nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Response, expect

from conflicts import services
from conflicts.models import Conflict
from tests import factories, test_browser
from tests.conflicts.company import standard_company
from tests.test_browser import PASSWORD, log_in, save_screenshot
from tests.test_security_web import (
    EXPECTED_CSP,
    EXPECTED_PERMISSIONS_POLICY,
    csp_directives,
)

# The browser fixtures of tests/test_browser.py: one Chromium per module, a fresh
# context per test, a screenshot when a test fails.
browser = test_browser.browser
page = test_browser.page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

#: Collects ``securitypolicyviolation`` events of every document the page loads.
LISTEN_FOR_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportViolation({
    directive: event.effectiveDirective,
    blocked: event.blockedURI,
    source: event.sourceFile,
    line: event.lineNumber,
    sample: event.sample,
    page: document.location.href,
  });
});
"""


@dataclass
class Watch:
    """What the browser reported while the test drove it."""

    violations: list[dict[str, Any]] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)

    def complaints(self) -> list[str]:
        return [
            *(f"CSP violation: {v}" for v in self.violations),
            *(f"console: {m}" for m in self.console),
            *(f"page error: {e}" for e in self.errors),
        ]


def watch(page: Page) -> Watch:
    """Listen on ``page`` for policy violations, console errors and warnings, uncaught
    errors, and the responses of its documents."""
    seen = Watch()
    page.expose_binding(
        "reportViolation", lambda _source, violation: seen.violations.append(violation)
    )
    page.add_init_script(LISTEN_FOR_VIOLATIONS)

    def on_console(message: ConsoleMessage) -> None:
        # Chromium reports a blocked resource and a header it cannot parse (an unknown
        # Permissions-Policy feature, say) as console errors or warnings.
        source = message.location.get("url", "")
        # The site has no /favicon.ico, which Chromium asks for on its own.
        if source.endswith("/favicon.ico"):
            return
        if message.type in ("error", "warning"):
            seen.console.append(
                f"{message.type}: {message.text} ({source} on {page.url})"
            )

    page.on("console", on_console)
    page.on("pageerror", lambda error: seen.errors.append(f"{error} ({page.url})"))
    page.on(
        "response",
        lambda response: (
            seen.responses.append(response)
            if response.request.resource_type == "document"
            else None
        ),
    )
    return seen


def assert_both_policies(response: Response | None) -> None:
    assert response is not None
    headers = response.headers
    assert csp_directives(headers["content-security-policy"]) == EXPECTED_CSP
    assert headers["permissions-policy"] == EXPECTED_PERMISSIONS_POLICY


def visit(page: Page, url: str) -> None:
    """Open ``url``, check that it answered 200 with both policies, and let it settle."""
    response = page.goto(url)
    assert response is not None
    assert response.status == 200, url
    assert_both_policies(response)
    page.wait_for_load_state("networkidle")


def assert_the_listener_hears_a_blocked_script(page: Page, seen: Watch) -> None:
    """The control: an injected inline script is blocked, and reported."""
    before = len(seen.violations)
    ran = page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.injectedScriptRan = true";
          document.body.append(script);
          return window.injectedScriptRan === true;
        }"""
    )
    # The event reaches the test asynchronously: give it up to five seconds.
    for _ in range(50):
        if len(seen.violations) > before:
            break
        page.wait_for_timeout(100)
    assert ran is False
    control = seen.violations[before:]
    assert [v["directive"] for v in control] == ["script-src-elem"]
    del seen.violations[before:]
    # The console names the refusal too; it is the control's, not a page's.
    seen.console[:] = [m for m in seen.console if "Content Security Policy" not in m]


def test_every_kind_of_page_works_under_both_policies(
    page, live_server, cco, manager_a
):
    company = standard_company()
    company.save()
    run = services.detection_run_now()
    assert run.conflicts_found == 1
    conflict = Conflict.objects.get()
    cycle = factories.CycleFactory(name="FY2027", phase="aligning")
    cycle.silos.set([manager_a.managed_silos.get()])
    base = live_server.url
    seen = watch(page)

    # The admin: its login, and where it leads.
    visit(page, f"{base}/admin/login/")
    log_in(page, base, "cco")
    assert_both_policies(seen.responses[-1])

    # A change form with its widgets (select2, the calendar): the admin's scripts run.
    visit(page, f"{base}/admin/goals/goal/add/")
    expect(page.locator(".field-kpi .select2-selection")).to_be_visible()
    assert page.evaluate("typeof window.django.jQuery") == "function"
    page.click(".field-kpi .select2-selection")
    expect(
        page.locator(".select2-container--open .select2-search__field")
    ).to_be_visible()

    # The measurement export: django-import-export's "select all" box, the one inline
    # handler, allowed by its hash.
    visit(page, f"{base}/admin/metrics/measurement/export/")
    fields = page.locator('.selectable-field-export-row input[type="checkbox"]')
    assert fields.count() > 1
    page.uncheck("input.select-toggle")
    assert page.evaluate(
        """() => [...document.querySelectorAll(
            '.selectable-field-export-row input[type="checkbox"]')].every(b => !b.checked)"""
    )
    page.check("input.select-toggle")
    assert page.evaluate(
        """() => [...document.querySelectorAll(
            '.selectable-field-export-row input[type="checkbox"]')].every(b => b.checked)"""
    )

    # The report pages: the heatmap, a conflict's chart, a cycle.
    visit(page, f"{base}/report/conflicts/")
    expect(page.locator("table.heatmap tr")).to_have_count(5)
    visit(page, f"{base}/report/conflicts/{conflict.pk}/")
    page.wait_for_function(
        "() => window.Chart && Chart.getChart("
        "document.querySelector('#values-chart-figure canvas')) !== undefined"
    )
    visit(page, f"{base}/report/cycles/{cycle.pk}/")
    expect(page.locator("#phase")).to_have_text("Aligning")

    # The browsable API: its stylesheet and scripts load.
    visit(page, f"{base}/api/v1/silos/")
    expect(page.locator(".page-header h1")).to_have_text("Silo List")
    assert page.evaluate("typeof window.jQuery") == "function"
    assert page.evaluate(
        "getComputedStyle(document.querySelector('.navbar')).backgroundColor"
    ) not in ("", "rgba(0, 0, 0, 0)")

    # Swagger UI: every operation of the schema, and one tried out with the session.
    schema = page.request.get(f"{base}/api/schema/?format=json").json()
    operations = sum(
        method in ("get", "post", "put", "patch", "delete")
        for item in schema["paths"].values()
        for method in item
    )
    visit(page, f"{base}/api/docs/")
    expect(page.locator(".opblock")).to_have_count(operations)
    silos_list = schema["paths"]["/api/v1/silos/"]["get"]
    silos = page.locator(
        f"#operations-{silos_list['tags'][0]}-{silos_list['operationId']}"
    )
    silos.locator(".opblock-summary").click()
    silos.locator("button.try-out__btn").click()
    silos.locator("button.execute").click()
    expect(
        silos.locator(".live-responses-table tr.response .response-col_status")
    ).to_have_text("200")
    save_screenshot(page, "csp-swagger-ui.png")

    assert seen.complaints() == []
    assert_the_listener_hears_a_blocked_script(page, seen)
    assert seen.complaints() == []


def test_the_lockout_page_says_when_to_retry_and_an_admin_unlocks(
    page, browser: Browser, live_server, superuser, settings
):
    # The defaults of .env.example, whatever a local .env says.
    settings.AXES_FAILURE_LIMIT = limit = 10
    settings.AXES_COOLOFF_TIME = dt.timedelta(minutes=30)
    support = factories.SiloFactory(slug="support", name="Support", position=40)
    factories.silo_manager(support, username="support_manager")
    base = live_server.url
    seen = watch(page)

    # A report page sends the visitor to the login, which remembers where to return.
    page.goto(f"{base}/report/cycles/")
    expect(page).to_have_url(f"{base}/admin/login/?next=/report/cycles/")
    for _ in range(limit):
        page.fill("#id_username", "support_manager")
        page.fill("#id_password", "not-the-password")
        with page.expect_response(f"{base}/admin/login/?next=/report/cycles/") as sent:
            page.click("input[type=submit]")
    locked = sent.value
    assert locked.status == 429
    assert locked.headers["retry-after"] == str(
        int(settings.AXES_COOLOFF_TIME.total_seconds())
    )
    assert_both_policies(locked)
    expect(page.locator("h1")).to_have_text("Too many failed logins")
    expect(page.locator(".lockout .errornote")).to_have_text(
        "Logins as support_manager from your address are blocked after "
        f"{limit} failed attempts."
    )
    expect(page.locator(".lockout p").nth(1)).to_contain_text(
        "UTC, 30 minutes after the last attempt. "
        "Each attempt before then starts the wait again."
    )
    expect(page.locator(".lockout p").nth(2)).to_have_text(
        "If you cannot wait, ask a superuser or a member of the CCO team to unlock "
        "the account in the admin (Axes, Access attempts)."
    )
    save_screenshot(page, "lockout-1280.png")
    page.set_viewport_size({"width": 390, "height": 844})
    save_screenshot(page, "lockout-390.png")
    # Nothing wider than the phone's screen: no sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.set_viewport_size({"width": 1280, "height": 900})

    # Back to the login page: the right password is refused while the lock holds.
    page.click("text=Back to the login page")
    page.fill("#id_username", "support_manager")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("h1")).to_have_text("Too many failed logins")

    # A superuser unlocks in the admin, in a browser of their own.
    admin_context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        admin_page = admin_context.new_page()
        admin_seen = watch(admin_page)
        log_in(admin_page, base, "root")
        visit(admin_page, f"{base}/admin/axes/accessattempt/")
        rows = admin_page.locator("#result_list tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.locator("td.field-username")).to_have_text("support_manager")
        expect(rows.locator("td.field-status")).to_have_text("Locked Out")
        save_screenshot(admin_page, "lockout-admin-attempts.png")
        rows.locator("input.action-select").check()
        admin_page.select_option("select[name=action]", "delete_selected")
        admin_page.click("button[name=index]")
        admin_page.click("input[type=submit]")  # "Yes, I'm sure"
        expect(admin_page.locator(".messagelist .success")).to_have_text(
            "Successfully deleted 1 access attempt."
        )
        expect(rows).to_have_count(0)
        assert admin_seen.complaints() == []
    finally:
        admin_context.close()

    # Now the right password works, and the login returns to the page first asked for.
    page.goto(f"{base}/admin/login/?next=/report/cycles/")
    page.fill("#id_username", "support_manager")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page).to_have_url(f"{base}/report/cycles/")
    expect(page.locator("h1")).to_have_text("Planning cycles")

    # Chromium logs the two lockout answers (the tenth failure and the refused right
    # password) as failed loads, for their status 429; nothing else was reported.
    refusals = [message for message in seen.console if "status of 429" in message]
    assert len(refusals) == 2
    assert all("/admin/login/?next=/report/cycles/ on" in m for m in refusals)
    seen.console[:] = [m for m in seen.console if m not in refusals]
    assert seen.complaints() == []
