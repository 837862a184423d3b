"""The KPI page: values against the goal's target and pace, goals with status, declared
links, the conflicts the reader may open, and who manages the KPI."""

import datetime as dt
import json
import re

import pytest
import time_machine

from metrics.models import Measurement
from tests import factories

pytestmark = pytest.mark.django_db

TODAY = dt.datetime(2027, 7, 10, 9, tzinfo=dt.UTC)


@pytest.fixture
def deals(silo_a, silo_b, manager_a):
    """Sales' monthly deals (a sum KPI): 2026 as the baseline year, 2027 to June."""
    cycle = factories.CycleFactory(name="FY2027", phase="committed")
    kpi = factories.KPIFactory(
        silo=silo_a, slug="deals", name="Deals", unit="deals", aggregation="sum"
    )
    backlog = factories.KPIFactory(
        silo=silo_b,
        slug="backlog",
        name="Backlog",
        unit="tickets",
        direction="lower_is_better",
        aggregation="last",
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
            Measurement(kpi=kpi, period=dt.date(2026, m, 1), value=100)
            for m in range(1, 13)
        ]
        + [
            Measurement(kpi=kpi, period=dt.date(2027, m, 1), value=110)
            for m in range(1, 7)
        ]
    )
    factories.ImpactLinkFactory(
        leader_kpi=kpi,
        affected_kpi=backlog,
        effect="hurts",
        lag=2,
        rationale="Every deal brings onboarding tickets.",
    )
    factories.ConflictFactory(leader_kpi=kpi, affected_kpi=backlog, lag=2)
    return kpi


def chart_spec(body, chart_id):
    match = re.search(
        rf'<script id="{chart_id}-data" type="application/json">(.*?)</script>', body
    )
    assert match, f"no {chart_id} data"
    return json.loads(match.group(1))


def test_the_kpi_page_shows_pace_status_links_conflicts_and_managers(
    client, deals, manager_b
):
    with time_machine.travel(TODAY, tick=False):
        # Inside the travel: a session from today would have expired by then.
        client.force_login(manager_b)
        response = client.get("/kpis/sales.deals/")

    assert response.status_code == 200
    body = response.content.decode()
    assert "<title>Deals (Sales) · KPI · ducttape</title>" in body
    assert "Latest value <strong>110 deals</strong> in Jun 2027." in body
    assert "Managed by manager_a." in body
    # 6 x 110 = 660 by June; pro rata half of 1200 and 1440 are due: (660 - 600) /
    # (1440 - 1200) = 25%, against 50% expected (last year was flat, so the seasonal
    # shape is linear too): 50% behind, at risk (off track only beyond 50%).
    assert (
        "<strong>25%</strong> attained, 50% expected by Jun 2027 (seasonal pace" in body
    )
    assert '<span class="badge status-at_risk">at risk</span>' in body
    assert "Every deal brings onboarding tickets." in body
    assert "Deals (Sales) → Backlog (Support)" in body  # manager_b's silo is affected
    running = chart_spec(body, "kpi-running")
    assert [s["name"] for s in running["series"]] == [
        "Running total",
        "On pace to the target",
        "At last year's level (baseline)",
    ]
    assert running["series"][0]["values"] == [
        110.0,
        220.0,
        330.0,
        440.0,
        550.0,
        660.0,
        None,
        None,
        None,
        None,
        None,
        None,
    ]
    assert running["series"][1]["values"][5] == pytest.approx(720.0)
    assert running["series"][2]["values"][5] == pytest.approx(600.0)
    values = chart_spec(body, "kpi-values")
    assert (values["labels"][0], values["labels"][-1]) == ("2026-01-01", "2027-12-01")
    # A sum goal's target is a total: the running-total chart carries it, not this one.
    assert [s["name"] for s in values["series"]] == ["Deals"]
    # The table alternative carries the same numbers.
    assert '<th scope="row">2027-06-01</th><td>660 deals</td>' in body


def test_a_level_goal_charts_its_target_and_pace_line(client, silo_b, manager_b):
    kpi = factories.KPIFactory(
        silo=silo_b,
        slug="resolution",
        name="Resolution",
        unit="days",
        direction="lower_is_better",
        aggregation="last",
    )
    factories.GoalFactory(
        cycle=factories.CycleFactory(name="FY2027"),
        kpi=kpi,
        baseline=10,
        target=4,
        period_start=dt.date(2027, 1, 1),
        period_end=dt.date(2027, 6, 1),
    )
    factories.MeasurementFactory(kpi=kpi, period=dt.date(2027, 1, 1), value=9)
    client.force_login(manager_b)

    body = client.get("/kpis/support.resolution/").content.decode()

    series = {s["name"]: s["values"] for s in chart_spec(body, "kpi-values")["series"]}
    assert series["Target"] == [4.0] * 6
    # From 10 towards 4 by a sixth a month: 9, 8, .. 4.
    assert series["On pace"] == pytest.approx([9.0, 8.0, 7.0, 6.0, 5.0, 4.0])
    assert series["Resolution"] == [9.0, None, None, None, None, None]


def test_conflicts_listed_are_those_the_reader_may_open(client, deals, silo_a):
    other = factories.silo_manager(
        factories.SiloFactory(slug="finance", name="Finance"), username="fin"
    )
    client.force_login(other)

    body = client.get("/kpis/sales.deals/").content.decode()

    assert "Deals (Sales) → Backlog (Support)" not in body
    assert "No conflict involving this KPI that you may open." in body


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("anonymous", 302),
        ("nobody", 403),
        ("manager_a", 200),
        ("cco", 200),
        ("reader", 200),
        ("superuser", 200),
    ],
)
def test_who_opens_the_kpi_page(client, deals, request, who, status):
    if who == "nobody":
        client.force_login(factories.UserFactory(username="nobody"))
    elif who != "anonymous":
        client.force_login(request.getfixturevalue(who))

    response = client.get("/kpis/sales.deals/")

    assert response.status_code == status
    if who == "anonymous":
        assert response["Location"] == "/admin/login/?next=/kpis/sales.deals/"


def test_an_unknown_kpi_is_404(client, reader):
    client.force_login(reader)
    assert client.get("/kpis/sales.nothing/").status_code == 404


def test_the_kpi_page_makes_the_same_queries_for_few_and_many_rows(
    client, deals, silo_b, cco, django_assert_num_queries
):
    client.force_login(cco)
    client.get("/kpis/sales.deals/")  # warm the session and the content types

    def more(count):
        for index in range(count):
            kpi = factories.KPIFactory(silo=silo_b, slug=f"hit_{index}")
            factories.ImpactLinkFactory(leader_kpi=deals, affected_kpi=kpi)
            factories.ConflictFactory(leader_kpi=deals, affected_kpi=kpi)
            factories.GoalFactory(
                cycle=factories.CycleFactory(
                    name=f"FY{2030 + index}",
                    start_date=dt.date(2030 + index, 1, 1),
                    end_date=dt.date(2030 + index, 12, 31),
                ),
                kpi=deals,
                baseline=1,
                target=2,
                period_start=dt.date(2030 + index, 1, 1),
                period_end=dt.date(2030 + index, 12, 1),
            )

    # Session and user, the user's groups, the KPI, its values, its goals, last year's
    # values for their pace, its links, the conflicts, the managers.
    with django_assert_num_queries(10):
        client.get("/kpis/sales.deals/")
    more(4)
    with django_assert_num_queries(10):
        body = client.get("/kpis/sales.deals/").content.decode()
    assert len(re.findall(r'href="/report/conflicts/\d+/"', body)) == 5
