"""Each role's home (``/``): a silo manager's KPIs, goals, conflicts and what the cycle
needs; the CCO team's conflicts, cycles, shared goals and drivers; a BI reader's
sources and token. Exact values, who may open it, constant query counts."""

import datetime as dt
import re
from html import unescape

import pytest
import time_machine
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from goals.models import Guardrail, SharedGoalSnapshot
from home.models import HomeVisit
from metrics.models import Measurement
from planning.models import SignOff
from tests import factories

pytestmark = pytest.mark.django_db

TODAY = dt.datetime(2027, 7, 10, 9, tzinfo=dt.UTC)


def text(html: str) -> str:
    """The page's text: scripts (chart data) and tags dropped, entities decoded,
    spaces collapsed."""
    html = re.sub(r"<script.*?</script>", " ", html, flags=re.DOTALL)
    words = re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()
    return re.sub(r" ([.,:;])", r"\1", words)


def section(body: str, element_id: str) -> str:
    """The text of the element with ``element_id`` (up to its closing tag's kind)."""
    match = re.search(
        rf'<(\w+)[^>]*id="{element_id}"[^>]*>(.*?)</\1>', body, flags=re.DOTALL
    )
    assert match, f"no #{element_id}"
    return text(match.group(2))


@pytest.fixture
def firm(silo_a, silo_b, manager_a):
    """FY2027 (aligning, Sales and Support) with a Sales goal at risk, a Sales KPI
    without a goal, Support KPIs, a conflict Sales -> Support and one Support ->
    Finance (which the Sales manager may not read)."""
    cycle = factories.CycleFactory(name="FY2027", phase="aligning")
    cycle.silos.set([silo_a, silo_b])
    deals = factories.KPIFactory(
        silo=silo_a, slug="deals", name="Deals", unit="deals", aggregation="sum"
    )
    win_rate = factories.KPIFactory(
        silo=silo_a, slug="win_rate", name="Win rate", unit="%", aggregation="mean"
    )
    backlog = factories.KPIFactory(
        silo=silo_b,
        slug="backlog",
        name="Backlog",
        unit="tickets",
        direction="lower_is_better",
        aggregation="last",
    )
    csat = factories.KPIFactory(
        silo=silo_b, slug="csat", name="CSAT", unit="points", aggregation="mean"
    )
    goal = factories.GoalFactory(
        cycle=cycle,
        kpi=deals,
        baseline=1200,
        target=1440,
        period_start=dt.date(2027, 1, 1),
        period_end=dt.date(2027, 12, 1),
    )
    Measurement.objects.bulk_create(
        [
            Measurement(kpi=deals, period=dt.date(2026, m, 1), value=100)
            for m in range(1, 13)
        ]
        + [
            Measurement(kpi=deals, period=dt.date(2027, m, 1), value=110)
            for m in range(1, 7)
        ]
        + [Measurement(kpi=win_rate, period=dt.date(2027, 6, 1), value=31.5)]
        + [Measurement(kpi=backlog, period=dt.date(2027, 6, 1), value=80)]
    )
    hurts_support = factories.ConflictFactory(
        leader_kpi=deals, affected_kpi=backlog, severity="high"
    )
    finance = factories.SiloFactory(slug="finance", name="Finance", position=50)
    margin = factories.KPIFactory(silo=finance, slug="margin", name="Margin", unit="%")
    inside_support = factories.ConflictFactory(
        leader_kpi=csat, affected_kpi=margin, severity="medium"
    )
    return {
        "cycle": cycle,
        "goal": goal,
        "deals": deals,
        "backlog": backlog,
        "csat": csat,
        "hurts_support": hurts_support,
        "inside_support": inside_support,
    }


def get_home(client, user):
    with time_machine.travel(TODAY, tick=False):
        client.force_login(user)
        return client.get("/")


def test_a_silo_managers_home(client, firm, manager_a):
    response = get_home(client, manager_a)

    assert response.status_code == 200
    body = response.content.decode()
    assert "<title>Sales manager home · ducttape</title>" in body
    assert section(body, "kpis") == (
        "KPI Latest Last 12 values Goal status "
        "Deals 110 deals Jun 2027 at risk FY2027 "
        "Win rate 31.50 % Jun 2027 too few values no goal"
    )
    assert f'href="/kpis/{firm["deals"].key}/"' in body
    assert re.findall(r'id="spark-kpi-(\d+)-data"', body) == [str(firm["deals"].pk)]
    assert (
        'aria-label="Deals, last 12 values: from 100 deals in Jul 2026 to 110 deals in '
        'Jun 2027"' in body
    )
    assert section(body, "goals") == (
        "Goal Cycle Target Attainment Expected Status "
        "Deals FY2027 1440 deals 25% 50% by Jun 2027 at risk"
    )
    assert section(body, "my-conflicts") == (
        "Conflict Severity Status Deals (Sales) hurts Backlog (Support) High Open"
    )
    assert f'href="/report/conflicts/{firm["hurts_support"].pk}/"' in body
    assert f"/report/conflicts/{firm['inside_support'].pk}/" not in body
    page = f"/report/cycles/{firm['cycle'].pk}/"
    assert section(body, "needs") == (
        "What the cycle needs from you "
        "FY2027: 1 of Sales' KPIs has no goal yet (sales.win_rate). Enter the goals "
        "FY2027: Sales has not signed off the plan. Sign off"
    )
    assert f'href="{page}#goals"' in body
    assert f'href="{page}#sign-offs"' in body
    # One role: no CCO or BI reader section.
    assert 'id="cco"' not in body
    assert 'id="reader"' not in body


def test_a_sign_off_voided_by_a_plan_change_asks_to_sign_again(
    client, firm, silo_a, manager_a
):
    sign_off = SignOff.objects.create(cycle=firm["cycle"], silo=silo_a, user=manager_a)
    SignOff.objects.filter(pk=sign_off.pk).update(
        signed_at=dt.datetime(2027, 1, 2, 8, tzinfo=dt.UTC)
    )
    with time_machine.travel(dt.datetime(2027, 6, 1, 12, tzinfo=dt.UTC), tick=False):
        firm["goal"].target = 1500
        firm["goal"].save()

    body = get_home(client, manager_a).content.decode()

    assert section(body, "needs") == (
        "What the cycle needs from you "
        "FY2027: 1 of Sales' KPIs has no goal yet (sales.win_rate). Enter the goals "
        "FY2027: Sales' sign-off of 2027-01-02 (by manager_a) was voided when the plan "
        "changed on 2027-06-01 12:00 UTC. Sign off again"
    )


def test_a_current_sign_off_and_goals_leave_nothing_to_do(client, firm, manager_a):
    firm["deals"].silo.kpis.filter(slug="win_rate").update(is_active=False)
    SignOff.objects.create(cycle=firm["cycle"], silo=firm["deals"].silo, user=manager_a)

    body = get_home(client, manager_a).content.decode()

    assert section(body, "needs") == (
        "What the cycle needs from you Nothing: no cycle in proposing or aligning "
        "waits for your silos."
    )


@pytest.fixture
def cco_world(firm, silo_a, silo_b):
    """A shared goal of FY2027 with two roll-ups and a breached guardrail, and the
    last detection run's drivers."""
    shared = factories.SharedGoalFactory(cycle=firm["cycle"], name="Profitable growth")
    factories.ContributionFactory(shared_goal=shared, goal=firm["goal"])
    Guardrail.objects.create(
        shared_goal=shared, kpi=firm["backlog"], baseline=60, tolerance=10
    )
    for day, value in [(dt.date(2027, 6, 1), 0.2), (dt.date(2027, 7, 1), 0.25)]:
        SharedGoalSnapshot.objects.create(
            shared_goal=shared,
            day=day,
            progress=value,
            contributions_with_data=1,
            contributions_total=1,
            computed_at=TODAY,
        )
    factories.DetectionRunFactory(status="failed")
    factories.DetectionRunFactory(
        status="succeeded",
        drivers=[
            {
                "grid": "monthly",
                "number": 1,
                "share": 0.31,
                "silos": 2,
                "kpis": [
                    {"kpi": "Deals", "silo": "sales", "correlation": 0.8},
                    {"kpi": "Backlog", "silo": "support", "correlation": 0.7},
                ],
            }
        ],
    )
    factories.DetectionRunFactory(status="failed")
    return shared


def test_the_cco_teams_home(client, firm, cco_world, cco):
    response = get_home(client, cco)

    assert response.status_code == 200
    body = response.content.decode()
    assert "<title>CCO team home · ducttape</title>" in body
    assert section(body, "by-severity") == "High 1 · Medium 1 · Low 0 Open the register"
    assert section(body, "new-since") == (
        "Your first visit: 2 open conflicts to look at:"
    )
    assert section(body, "pairs") == (
        "Silo that improves Silo that is hurt High Medium Low "
        "Sales Support 1 0 0 Support Finance 0 1 0"
    )
    cycle = firm["cycle"]
    assert section(body, f"cycle-{cycle.pk}") == (
        "FY2027 Aligning: 3 things block the commit "
        "Sales has not signed off. Sales' managers (manager_a) can sign off here. "
        "Support has not signed off. Support has no manager: assign one in the admin. "
        f"High-severity conflict {firm['hurts_support'].pk} is open: sales.deals hurts "
        "support.backlog. Resolve it, dismiss it, or accept it as a trade-off with a "
        "note. The CCO team does it on the conflict's page."
    )
    assert f'href="/report/cycles/{cycle.pk}/"' in body
    shared = section(body, "shared-goals")
    assert shared == (
        "Shared goals Shared goals with their progress and guardrails "
        "Shared goal Progress Trend Guardrails "
        "Profitable growth FY2027 25% 01 Jul "
        "Backlog: 80 against baseline 60 ± 10 tickets breached"
    )
    assert (
        'aria-label="Profitable growth, progress over the last 2 roll-ups: from 20% on '
        '01 Jun 2027 to 25% on 01 Jul 2027"' in body
    )
    drivers = section(body, "drivers")
    assert "Found by detection run #" in drivers
    assert drivers.endswith(
        "Driver 1 (monthly, 31% of the variation): 2 KPIs of 2 silos — Deals, Backlog."
    )
    assert 'id="manager"' not in body


def test_new_since_last_visit_counts_only_what_the_user_has_not_seen(client, firm, cco):
    get_home(client, cco)
    with time_machine.travel(TODAY + dt.timedelta(hours=1), tick=False):
        fresh = factories.ConflictFactory(
            leader_kpi=firm["csat"], affected_kpi=firm["deals"], severity="low"
        )
    with time_machine.travel(TODAY + dt.timedelta(hours=2), tick=False):
        client.force_login(cco)
        second = client.get("/").content.decode()
        third = client.get("/").content.decode()

    assert section(second, "new-since") == (
        "1 new since your last visit (2027-07-10 09:00 UTC):"
    )
    assert f'href="/report/conflicts/{fresh.pk}/"' in second
    assert section(third, "new-since") == (
        "0 new since your last visit (2027-07-10 11:00 UTC)."
    )
    # Stored in the database: it survives a logout and another browser.
    assert HomeVisit.objects.get(user=cco).seen_at == TODAY + dt.timedelta(hours=2)


def test_a_bi_readers_home(client, reader):
    body = get_home(client, reader).content.decode()

    assert "<title>BI reader home · ducttape</title>" in body
    assert section(body, "sources") == (
        "Data sources you may read Source What it holds "
        "Goal figures (JSON) Every goal with actual, attainment, expected and status, "
        "filtered and paged. /api/v1/figures/ "
        "Goal figures (CSV) The same table as one streamed CSV, for a spreadsheet or a "
        "BI tool. /api/v1/figures/?format=csv "
        "API root Every collection of the API: silos, KPIs, measurements, goals, "
        "conflicts, cycles. /api/v1/ "
        "OpenAPI schema The machine-readable description of every endpoint. "
        "/api/schema/ "
        "API documentation Try every endpoint in the browser with your session. "
        "/api/docs/"
    )
    assert section(body, "token") == (
        "Your API token You have no token yet. Create one to pull from a script."
    )
    assert 'href="/account/token/"' in body


def test_a_bi_reader_with_a_token_sees_since_when(client, reader):
    with time_machine.travel(TODAY - dt.timedelta(days=3), tick=False):
        Token.objects.create(user=reader)

    body = get_home(client, reader).content.decode()

    assert section(body, "token") == (
        "Your API token You have a token, created 2027-07-07 09:00 UTC. Its key was "
        "shown once; replace or revoke it."
    )


def test_a_user_with_several_roles_sees_each_roles_section(client, firm, silo_a):
    user = factories.silo_manager(silo_a, username="both")
    user.groups.add(factories.role_group("BI readers"))

    body = get_home(client, user).content.decode()

    assert "<title>Home · ducttape</title>" in body
    assert "You hold several roles: a section for each." in body
    assert 'id="manager"' in body
    assert 'id="reader"' in body
    assert 'id="cco"' not in body


# --- Who may open it ----------------------------------------------------------------


def test_anonymous_visitors_are_asked_to_log_in(client):
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/"


def test_a_user_without_a_role_gets_403(client):
    client.force_login(factories.UserFactory(username="staff"))

    assert client.get("/").status_code == 403


@pytest.mark.parametrize(
    ("who", "sections"),
    [
        ("manager_a", ["manager"]),
        ("cco", ["cco"]),
        ("reader", ["reader"]),
        ("superuser", ["cco"]),
    ],
)
def test_each_role_opens_its_home(client, request, who, sections):
    body = get_home(client, request.getfixturevalue(who)).content.decode()

    shown = [name for name in ("manager", "cco", "reader") if f'id="{name}"' in body]
    assert shown == sections


def test_the_header_links_home_first(client, cco):
    body = get_home(client, cco).content.decode()

    nav = re.search(r'<nav aria-label="Main">(.*?)</nav>', body, flags=re.DOTALL)
    assert nav
    assert re.findall(r">([^<]+)</a>", nav.group(1))[0] == "Home"
    assert '<a href="/" aria-current="page">Home</a>' in body


# --- Constant query counts ------------------------------------------------------------


def seed(count, silo_a, silo_b):
    """``count`` of everything a home lists: KPIs with values and goals, conflicts,
    proposing cycles, shared goals with snapshots and guardrails; one aligning cycle."""
    aligning = factories.CycleFactory(name="Aligning", phase="aligning")
    aligning.silos.set([silo_a, silo_b])
    for index in range(count):
        proposing = factories.CycleFactory(name=f"Proposing {index}")
        proposing.silos.set([silo_a])
        kpi = factories.KPIFactory(silo=silo_a, slug=f"sales_{index}")
        other = factories.KPIFactory(silo=silo_b, slug=f"support_{index}")
        Measurement.objects.bulk_create(
            [
                Measurement(kpi=kpi, period=dt.date(2027, m, 1), value=m)
                for m in (1, 2, 3)
            ]
        )
        goal = factories.GoalFactory(cycle=aligning, kpi=kpi)
        factories.ConflictFactory(leader_kpi=kpi, affected_kpi=other)
        shared = factories.SharedGoalFactory(cycle=aligning)
        factories.ContributionFactory(shared_goal=shared, goal=goal)
        Guardrail.objects.create(shared_goal=shared, kpi=other, baseline=1, tolerance=1)
        for day in (1, 2):
            SharedGoalSnapshot.objects.create(
                shared_goal=shared,
                day=dt.date(2027, 7, day),
                progress=0.1 * day,
                contributions_with_data=1,
                contributions_total=1,
                computed_at=TODAY,
            )
    run = factories.DetectionRunFactory()
    return run


def home_queries(client, user):
    with time_machine.travel(TODAY, tick=False):
        client.force_login(user)
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/").status_code == 200
    return len(queries)


@pytest.mark.parametrize("who", ["manager_a", "cco", "reader"])
def test_each_home_costs_the_same_queries_for_1_and_5_of_everything(
    request, who, silo_a, silo_b
):
    user = request.getfixturevalue(who)
    counts = {}
    for count in (1, 5):
        with transaction.atomic():
            seed(count, silo_a, silo_b)
            counts[count] = home_queries(Client(), user)
            transaction.set_rollback(True)
    assert counts[1] == counts[5], counts
    assert counts[1] == EXPECTED_QUERIES[who]


#: Whatever the rows: the session, user, groups and the visit's read and upsert; the
#: manager's (up to) 9 for the aligning cycle's last plan change and the CCO team's 12 for its
#: commit check (with who can act on each blocker, and the funding against the
#: budget) are per aligning cycle (the seed has one).
EXPECTED_QUERIES = {"manager_a": 23, "cco": 25, "reader": 6}


@pytest.mark.parametrize(
    ("who", "few", "many"),
    # The CCO home checks the commit of the CHECKED_CYCLES (3) latest aligning cycles
    # only; a manager's needs read every cycle's last plan change at once.
    [("cco", 3, 6), ("manager_a", 1, 5)],
)
def test_the_homes_cost_does_not_grow_with_the_aligning_cycles(
    request, who, few, many, silo_a, silo_b
):
    user = request.getfixturevalue(who)
    counts = {}
    for cycles in (few, many):
        with transaction.atomic():
            for index in range(cycles):
                cycle = factories.CycleFactory(
                    name=f"FY{2030 + index}",
                    phase="aligning",
                    start_date=dt.date(2030 + index, 1, 1),
                    end_date=dt.date(2030 + index, 12, 31),
                )
                cycle.silos.set([silo_a, silo_b])
                factories.GoalFactory(
                    cycle=cycle,
                    kpi=factories.KPIFactory(silo=silo_a, slug=f"k{index}"),
                    period_start=dt.date(2030 + index, 1, 1),
                    period_end=dt.date(2030 + index, 12, 1),
                )
            counts[cycles] = home_queries(Client(), user)
            transaction.set_rollback(True)
    assert counts[few] == counts[many], counts
