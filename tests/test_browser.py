"""Real-browser tests: a headless Chromium drives the admin through Playwright.

CI needs Debian's Chromium (``apt-get install -y chromium``); the PyPI ``playwright``
package brings the driver. Screenshots go to ``test-artifacts/`` at the repository
root, which CI keeps as a build artifact (the directory is git-ignored).
"""

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import DEFAULT_DB_ALIAS, connections
from playwright.sync_api import Browser, Page, expect, sync_playwright

from goals.models import Goal
from metrics.models import Direction
from tests import factories
from tests.a11y import assert_accessible, assert_no_sideways_scroll

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PASSWORD = "pw-for-tests-1"  # what tests.factories.UserFactory sets
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TIMEOUT_MS = 15_000

pytestmark = [
    pytest.mark.browser,
    # live_server answers from another thread, so the data must be committed. The
    # role groups come from a data migration, which a transactional test's flush
    # deletes: serialized_rollback restores them whatever ran before this test.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Launch one headless Chromium for the module."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} not found: browser tests need Debian's Chromium "
            "(apt-get update && apt-get install -y chromium).",
            pytrace=False,
        )
    expect.set_options(timeout=TIMEOUT_MS)
    with pytest.MonkeyPatch.context() as monkeypatch:
        # Playwright's sync API runs an event loop in this thread; without this,
        # Django refuses ORM calls made from the test while the loop is up.
        monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        # Django's connections are context-local, and Playwright's event loop gives this
        # thread another context: the connection seen from here on lacks the snapshot
        # that serialized rollback restores from (and that stops the flush from
        # re-creating content types with new ids). Hand it over.
        snapshot = getattr(
            connections[DEFAULT_DB_ALIAS], "_test_serialized_contents", None
        )
        with sync_playwright() as playwright:
            if snapshot is not None:
                connections[DEFAULT_DB_ALIAS]._test_serialized_contents = snapshot
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
            )
            try:
                yield browser
            finally:
                browser.close()
                # Otherwise dropping the test database fails ("being accessed by
                # other users").
                connections.close_all()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """Open a fresh browser context (no cookies); screenshot it if the test fails."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    failures_before = request.session.testsfailed
    try:
        yield page
    finally:
        # The call phase's report is counted before fixtures are torn down.
        if request.session.testsfailed > failures_before:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(
                path=ARTIFACTS / f"failure-{request.node.name}.png", full_page=True
            )
        context.close()
        connections.close_all()


def save_screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot to test-artifacts/ and check it is a real PNG."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    path.unlink(missing_ok=True)
    page.screenshot(path=path, full_page=True)
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE), f"{path} is not a PNG"
    assert len(data) > 1_000, f"{path} is nearly empty ({len(data)} bytes)"
    return path


def log_in(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page).to_have_url(f"{base_url}/admin/")
    expect(page.locator("#user-tools")).to_contain_text(username)


def test_silo_manager_adds_a_goal_and_sees_only_own_silo(page, live_server, manager_a):
    sales = manager_a.managed_silos.get()
    deals_closed = factories.KPIFactory(
        silo=sales,
        slug="deals_closed",
        name="Deals closed",
        direction=Direction.HIGHER_IS_BETTER,
    )
    factories.KPIFactory(
        silo=sales,
        slug="discount_rate",
        name="Discount rate",
        unit="%",
        direction=Direction.LOWER_IS_BETTER,
        aggregation="mean",
    )
    support = factories.SiloFactory(slug="support", name="Support", position=40)
    csat = factories.KPIFactory(
        silo=support,
        slug="csat",
        name="Customer satisfaction",
        unit="%",
        aggregation="mean",
    )
    cycle = factories.CycleFactory(name="FY2027")
    base_url = live_server.url

    log_in(page, base_url, "manager_a")

    # The KPI change list holds the manager's own silo only.
    page.goto(f"{base_url}/admin/metrics/kpi/")
    expect(page.locator("#result_list th.field-key")).to_have_text(
        ["sales.deals_closed", "sales.discount_rate"]
    )
    expect(page.locator("p.paginator")).to_contain_text("2 KPIs")
    assert "support.csat" not in page.content()
    save_screenshot(page, "admin-kpi-list-manager.png")

    # Another silo's KPI, opened by id, does not exist for this manager.
    page.goto(f"{base_url}/admin/metrics/kpi/{csat.pk}/change/")
    expect(page).to_have_url(f"{base_url}/admin/")
    # Django's own wording, typographic quotes included.
    expect(page.locator(".messagelist .warning")).to_have_text(
        f"KPI with ID “{csat.pk}” doesn’t exist. Perhaps it was deleted?"  # noqa: RUF001
    )
    expect(page.locator("#kpi_form")).to_have_count(0)
    assert "support.csat" not in page.content()

    # The autocomplete endpoint behind the KPI widget answers from the same scope.
    autocomplete = (
        f"{base_url}/admin/autocomplete/?app_label=goals&model_name=goal"
        "&field_name=kpi&term="
    )
    for term, expected in [
        ("", {"sales.deals_closed", "sales.discount_rate"}),
        ("csat", set()),
        ("support", set()),
    ]:
        response = page.request.get(autocomplete + term)
        assert response.status == 200
        texts = {result["text"].split(" ")[0] for result in response.json()["results"]}
        assert texts == expected, term

    # Add a goal for the manager's own silo through the add form.
    page.goto(f"{base_url}/admin/goals/goal/add/")
    page.select_option("#id_cycle", label="FY2027")
    page.click(".field-kpi .select2-selection")
    search = page.locator(".select2-container--open .select2-search__field")
    results = page.locator("#select2-id_kpi-results > li")
    search.fill("deals")
    expect(results).to_have_text(["sales.deals_closed (Deals closed)"])
    search.fill("csat")
    expect(results).to_have_text(["No results found"])
    search.fill("deals")
    expect(results).to_have_text(["sales.deals_closed (Deals closed)"])
    save_screenshot(page, "admin-goal-kpi-autocomplete.png")
    results.filter(has_text="sales.deals_closed").click()
    expect(page.locator("#id_kpi")).to_have_value(str(deals_closed.pk))
    page.fill("#id_name", "Close more deals")
    page.fill("#id_baseline", "100")
    page.fill("#id_target", "150")
    page.fill("#id_period_start", "2027-01-01")
    page.fill("#id_period_end", "2027-12-01")
    page.click("input[name=_save]")

    expect(page).to_have_url(f"{base_url}/admin/goals/goal/")
    expect(page.locator(".messagelist .success")).to_have_text(
        "The goal “Close more deals” was added successfully."
    )
    save_screenshot(page, "admin-goal-saved.png")

    goal = Goal.objects.select_related("kpi").get()
    assert goal.kpi.key == "sales.deals_closed"
    assert goal.cycle_id == cycle.pk
    assert goal.name == "Close more deals"
    assert goal.baseline == 100.0
    assert goal.target == 150.0
    assert (goal.target_low, goal.target_high) == (None, None)
    assert (goal.period_start, goal.period_end) == (
        dt.date(2027, 1, 1),
        dt.date(2027, 12, 1),
    )
    assert goal.owner == manager_a
    assert goal.history.count() == 1
    record = goal.history.first()
    assert record.history_type == "+"
    assert record.history_user == manager_a


def test_cco_reviews_a_conflict_in_the_report(page, live_server, cco, manager_a):
    from conflicts import services
    from tests.conflicts.company import standard_company

    company = standard_company()
    company.save()
    run = services.detection_run_now()
    assert run.conflicts_found == 1
    base_url = live_server.url

    log_in(page, base_url, "cco")
    page.goto(f"{base_url}/report/conflicts/")

    expect(page.locator("h1")).to_have_text("Where one silo's success hurts another")
    # The heatmap: Sales (row) hurts Support (column) once; silos in value-chain order.
    header = page.locator("table.heatmap tr").first.locator("th")
    expect(header).to_have_text(
        ["leader ↓ / affected →", "Sales", "Support", "Finance", "Operations"]
    )
    # Each cell says its worst severity in words; the others say "none" to a screen
    # reader only.
    sales_row = page.locator("table.heatmap tr").nth(1).locator("td")
    expect(sales_row).to_have_text(["· same silo", "1 worst medium", "none", "none"])
    expect(page.locator("section.card h2")).to_have_text(
        ["Sales → Support worst: medium 1 conflict"]
    )
    save_screenshot(page, "report-conflicts.png")

    page.click("text=Deals closed → Ticket backlog")
    conflict = run_conflict()
    expect(page).to_have_url(f"{base_url}/report/conflicts/{conflict.pk}/")
    low, high = (abs(conflict.effect_low) * 0.5, abs(conflict.effect_high) * 0.5)
    # The headline says it in words; r and q wait in "What the numbers mean".
    expect(page.locator("#evidence")).to_have_text(
        "When Sales' deals closed rises by 0.5, Support's ticket backlog rises by "
        f"{abs(conflict.effect) * 0.5:.3g} 2 months later "
        f"(95% interval {min(low, high):.3g} to {max(low, high):.3g})."
    )
    expect(page.locator("#numbers")).to_contain_text(
        f"Correlation r = {conflict.correlation:.2f}"
    )
    # Chart.js drew both KPIs on the canvas.
    expect(page.locator("#values-chart-figure canvas")).to_have_count(1)
    page.wait_for_function(
        "() => window.Chart && Chart.getChart("
        "document.querySelector('#values-chart-figure canvas')) !== undefined"
    )
    assert (
        page.evaluate(
            "Chart.getChart(document.querySelector('#values-chart-figure canvas'))"
            ".data.datasets.length"
        )
        == 2
    )
    save_screenshot(page, "report-conflict-detail.png")

    # The note is required: the browser refuses an empty one, the server too; so
    # are the owner and the due date when acknowledging.
    page.fill("#note", "Raised with Sales and Support; review in the planning meeting.")
    page.select_option("#owner", "manager_a")
    page.fill("#due_date", "2099-12-31")
    page.click("#workflow button[value=acknowledged]")
    expect(page.locator(".messages li")).to_have_text(
        f"Conflict {conflict.pk} is now acknowledged."
    )
    expect(page.locator("#workflow button")).to_have_text(
        ["Accept as trade-off", "Mark resolved", "Dismiss"]
    )
    expect(page.locator("table").last.locator("tr").nth(1)).to_contain_text("cco")
    expect(page.locator("#owner-due")).to_have_text("Owner: manager_a, due 2099-12-31")
    conflict.refresh_from_db()
    assert (conflict.status, conflict.owner, conflict.due_date) == (
        "acknowledged",
        manager_a,
        dt.date(2099, 12, 31),
    )
    save_screenshot(page, "report-conflict-acknowledged.png")

    # A silo manager is refused the report.
    page.context.clear_cookies()
    log_in(page, base_url, "manager_a")
    response = page.goto(f"{base_url}/report/conflicts/")
    assert response is not None
    assert response.status == 403

    # ... but reads the conflict their silo leads, and comments on it.
    page.goto(f"{base_url}/report/conflicts/{conflict.pk}/")
    expect(page.locator("#workflow")).to_have_count(0)
    # No link to the CCO report, which would refuse them.
    expect(page.get_by_role("link", name="← All conflicts")).to_have_count(0)
    page.get_by_label("Your comment").fill("Sales will pace the Q3 push with Support.")
    page.get_by_role("button", name="Add the comment").click()
    expect(page.locator(".messages li")).to_have_text("Your comment is added.")
    expect(page.locator("#comments .comment")).to_contain_text(
        ["Sales will pace the Q3 push with Support."]
    )
    assert list(conflict.comments.values_list("author__username", flat=True)) == [
        "manager_a"
    ]
    save_screenshot(page, "report-conflict-manager-comment.png")


def run_conflict():
    from conflicts.models import Conflict

    return Conflict.objects.select_related("leader_kpi", "affected_kpi").get()


def test_cycle_page_for_the_cco_team_and_a_manager_signing_off(
    page, live_server, cco, manager_a, manager_b
):
    import datetime as dt

    from goals import rollups
    from metrics.models import Measurement
    from tests.goals.rollup_world import MAR, build

    sales = manager_a.managed_silos.get()
    support = manager_b.managed_silos.get()
    world = build(sales, support)
    cycle = world["cycle"]
    cycle.silos.set([sales, support])
    # Two days of roll-ups draw the trend.
    rollups.shared_goals_rollup(day=dt.date(2027, 4, 1))
    Measurement.objects.filter(kpi=world["deals"], period=MAR).update(value=110.0)
    rollups.shared_goals_rollup(day=dt.date(2027, 4, 2))
    base_url = live_server.url

    log_in(page, base_url, "cco")
    page.goto(f"{base_url}/report/cycles/{cycle.pk}/")
    expect(page.locator("#phase")).to_have_text("Aligning")
    expect(page.locator("#blockers li")).to_have_text(
        [
            "Sales has not signed off. Sales' managers (manager_a) can sign off here.",
            "Support has not signed off. Support's managers (manager_b) can sign off "
            "here.",
        ]
    )
    expect(page.locator("#move")).to_be_disabled()
    expect(page.locator("#shared-goals .progress")).to_have_text(["87%"])
    # The trend: a chart of the charting library, with its values as a table.
    expect(page.locator("#shared-goals canvas[data-chart]")).to_have_count(1)
    expect(page.locator("#shared-goals .chart-table tbody tr")).to_have_count(2)
    save_screenshot(page, "cycle-page-cco.png")

    page.context.clear_cookies()
    log_in(page, base_url, "manager_a")
    page.goto(f"{base_url}/report/cycles/{cycle.pk}/")
    expect(page.locator("#sign-offs tr")).to_have_count(2)  # the header and Sales
    page.fill("#sign-offs input[name=note]", "Sales agrees.")
    page.click("#sign-offs button.sign")
    expect(page.locator(".messages li")).to_have_text("Sales signed off FY2027.")
    expect(page.locator("#sign-offs")).to_contain_text("Signed by manager_a")
    save_screenshot(page, "cycle-page-manager.png")


def test_a_bi_reader_creates_and_revokes_a_token_on_a_phone(page, live_server, reader):
    from rest_framework.authtoken.models import Token

    log_in(page, live_server.url, reader.username)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/account/token/")
    expect(page).to_have_title("Your API token · ducttape")
    expect(page.locator("main")).to_contain_text("You have no token.")

    page.get_by_role("button", name="Create a token").click()

    key = Token.objects.get(user=reader).key
    expect(page.get_by_label("Token")).to_have_value(key)
    # Usable on a phone: nothing scrolls sideways at 390 px; axe-core clean.
    assert_no_sideways_scroll(page)
    assert_accessible(page)
    save_screenshot(page, "token-page-phone.png")

    page.get_by_role("button", name="Revoke it").click()

    expect(page.locator("main")).to_contain_text("Your token is revoked")
    assert not Token.objects.filter(user=reader).exists()
