"""Goal knock-ons and contradictions (planning.consistency, planning.projections): the
arithmetic on exact numbers, and GET /api/v1/cycles/{id}/consistency/."""

import datetime as dt

import pytest

from planning import consistency
from planning.projections import cycle_knock_ons
from tests import factories

YEAR = (dt.date(2027, 1, 1), dt.date(2027, 12, 1))


def plan(direction, aggregation, baseline, target, period=YEAR):
    return consistency.GoalPlan(
        direction=direction,
        aggregation=aggregation,
        frequency="monthly",
        baseline=baseline,
        target=target,
        target_low=None,
        target_high=None,
        period_start=period[0],
        period_end=period[1],
    )


# Sales: 1,200 deals last year, 1,440 this year: 20 more a month.
DEALS = plan("higher_is_better", "sum", 1200.0, 1440.0)
# Support: 12,000 tickets last year, 10,800 this year (lower is better).
TICKETS = plan("lower_is_better", "sum", 12000.0, 10800.0)


def test_a_sum_goal_carries_its_monthly_gain_over_the_months_the_lag_reaches():
    # 0.8 tickets per extra deal a month later: February to December, 11 months of
    # 20 x 0.8 = 16 more tickets, 176 in all (0.5 to 1.1: 110 to 242). Support's
    # target plus 176 reads (12,000 - 10,976) / 1,200 = 85.3%: a 14.7-point drop.
    projection = consistency.project(
        DEALS, TICKETS, effect=0.8, effect_low=0.5, effect_high=1.1, lag=1
    )

    assert projection is not None
    assert projection.leader_change == 20.0
    assert projection.periods_reached == 11
    assert projection.knock_on == pytest.approx(176.0)
    assert (projection.knock_on_low, projection.knock_on_high) == pytest.approx(
        (110.0, 242.0)
    )
    assert projection.attainment_without == 1.0
    assert projection.attainment_with == pytest.approx(1024 / 1200)
    assert (
        projection.attainment_with_low,
        projection.attainment_with_high,
    ) == pytest.approx((958 / 1200, 1090 / 1200))
    assert not projection.contradicts()


def test_a_knock_on_past_the_margin_is_a_contradiction():
    # 2 tickets per deal: 440 more, (12,000 - 11,240) / 1,200 = 63.3%: 36.7 points.
    projection = consistency.project(
        DEALS, TICKETS, effect=2.0, effect_low=None, effect_high=None, lag=1
    )

    assert projection is not None
    assert projection.attainment_with == pytest.approx(760 / 1200)
    assert projection.contradicts()
    assert not projection.contradicts(margin=0.4)


def test_a_drop_of_exactly_the_margin_counts():
    # 300 more tickets take 1,200 of gain down by a quarter exactly.
    projection = consistency.project(
        plan("higher_is_better", "sum", 0.0, 300.0, (YEAR[0], YEAR[0])),
        plan("lower_is_better", "sum", 12000.0, 10800.0, (YEAR[0], YEAR[0])),
        effect=1.0,
        effect_low=None,
        effect_high=None,
        lag=0,
    )

    assert projection is not None
    assert projection.drop == pytest.approx(0.25)
    assert projection.contradicts(margin=0.25)


def test_a_level_goal_shifts_the_affected_level():
    # Operations cuts cost per order from 50 to 45 EUR (a level: -5); CSAT moves 0.4
    # points per EUR two months later: -2 points on a goal from 80 to 84, read 50%.
    cost = plan("lower_is_better", "mean", 50.0, 45.0)
    csat = plan("higher_is_better", "mean", 80.0, 84.0)

    projection = consistency.project(
        cost, csat, effect=0.4, effect_low=0.2, effect_high=0.6, lag=2
    )

    assert projection is not None
    assert (projection.leader_change, projection.knock_on) == pytest.approx((-5, -2))
    assert (projection.knock_on_low, projection.knock_on_high) == pytest.approx(
        (-3, -1)
    )
    assert projection.attainment_with == pytest.approx(0.5)
    assert (
        projection.attainment_with_low,
        projection.attainment_with_high,
    ) == pytest.approx((0.25, 0.75))
    assert projection.contradicts()


def test_a_lag_beyond_the_affected_goal_projects_nothing():
    december = (dt.date(2027, 12, 1), dt.date(2027, 12, 1))
    assert (
        consistency.project(
            plan("higher_is_better", "sum", 0.0, 10.0, december),
            plan("lower_is_better", "sum", 10.0, 5.0, december),
            effect=1.0,
            effect_low=None,
            effect_high=None,
            lag=1,
        )
        is None
    )


# --- the cycle, through the database and the API ------------------------------------


@pytest.fixture
def cycle(silo_a, silo_b):
    cycle = factories.CycleFactory(name="FY2027", phase="aligning")
    cycle.silos.set([silo_a, silo_b])
    deals = factories.KPIFactory(silo=silo_a, slug="deals", unit="deals")
    tickets = factories.KPIFactory(
        silo=silo_b, slug="tickets", unit="tickets", direction="lower_is_better"
    )
    for kpi, (baseline, target) in ((deals, (1200, 1440)), (tickets, (12000, 10800))):
        factories.GoalFactory(
            cycle=cycle,
            kpi=kpi,
            baseline=baseline,
            target=target,
            period_start=YEAR[0],
            period_end=YEAR[1],
        )
    return cycle


@pytest.mark.django_db
def test_the_consistency_endpoint_projects_a_registered_conflict(cycle, api, reader):
    conflict = factories.ConflictFactory(
        leader_kpi=cycle.goals.get(kpi__slug="deals").kpi,
        affected_kpi=cycle.goals.get(kpi__slug="tickets").kpi,
        lag=1,
        effect=2.0,
        effect_low=1.5,
        effect_high=2.5,
    )
    api.force_authenticate(reader)

    body = api.get(f"/api/v1/cycles/{cycle.pk}/consistency/").json()

    (row,) = body["projections"]
    assert body["margin"] == 0.25
    assert body["contradictions"] == [row]
    assert row["source"] == {
        "kind": "conflict",
        "id": conflict.pk,
        "effect": 2.0,
        "effect_low": 1.5,
        "effect_high": 2.5,
        "lag": 1,
    }
    assert (row["leader"]["kpi"], row["affected"]["kpi"]) == (
        "sales.deals",
        "support.tickets",
    )
    assert (row["knock_on"], row["knock_on_low"], row["knock_on_high"]) == (
        440.0,
        330.0,
        550.0,
    )
    assert row["attainment_with"] == pytest.approx(760 / 1200)
    assert row["contradiction"] is True
    assert row["message"] == (
        "If Sales reaches its Deals goal, Support's Tickets is expected to move by "
        "+440 tickets (between +330 and +550), which takes its goal from 100% to 63% "
        "attained. Adjust a target, cover the pair with a shared goal's guardrail, or "
        "accept it as a trade-off with a note."
    )


@pytest.mark.django_db
def test_a_declared_links_expected_effect_projects_where_no_conflict_is_observed(
    cycle, django_assert_num_queries
):
    deals = cycle.goals.get(kpi__slug="deals").kpi
    tickets = cycle.goals.get(kpi__slug="tickets").kpi
    link = factories.ImpactLinkFactory(
        leader_kpi=deals, affected_kpi=tickets, lag=1, expected_effect=0.8
    )
    dismissed = factories.ConflictFactory(
        leader_kpi=deals, affected_kpi=tickets, effect=5.0, status="dismissed"
    )

    with django_assert_num_queries(3):
        (knock_on,) = cycle_knock_ons(cycle)

    assert (knock_on.source.kind, knock_on.source.id) == ("link", link.pk)
    assert knock_on.projection.knock_on == pytest.approx(176.0)
    assert knock_on.contradiction is False
    # Reopened, the observed effect wins over the declared one.
    dismissed.status = "open"
    dismissed.save()
    (knock_on,) = cycle_knock_ons(cycle)
    assert (knock_on.source.kind, knock_on.projection.knock_on) == ("conflict", 1100.0)


@pytest.mark.django_db
def test_the_cycle_page_lists_the_knock_ons_with_the_contradictions_marked(
    cycle, client, cco, manager_b
):
    factories.ConflictFactory(
        leader_kpi=cycle.goals.get(kpi__slug="deals").kpi,
        affected_kpi=cycle.goals.get(kpi__slug="tickets").kpi,
        lag=1,
        effect=2.0,
        effect_low=1.5,
        effect_high=2.5,
    )
    outsider = factories.silo_manager(
        factories.SiloFactory(slug="finance", name="Finance"), username="fin"
    )
    cycle.silos.add(outsider.managed_silos.get())

    pages = {}
    for user in (cco, manager_b, outsider):
        client.force_login(user)
        pages[user.username] = client.get(
            f"/report/cycles/{cycle.pk}/"
        ).content.decode()

    row = (
        '<tr><th scope="row">Deals (Sales)</th>\n'
        "      <td>Tickets (Support)</td>\n"
        '      <td>440 tickets <span class="muted">(330 to 550)</span></td>\n'
        '      <td>63% <span class="muted">instead of 100%</span></td>\n'
        '      <td><span class="badge sev-high">contradiction</span>'
    )
    assert row in pages["cco"]
    assert row in pages["manager_b"]  # Support's manager: their goal is hurt
    assert row not in pages["fin"]
    assert (
        "No effect is known between two goals of this cycle that involves your silos."
        in pages["fin"]
    )
