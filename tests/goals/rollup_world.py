"""A small company with one shared goal, for the roll-up tests."""

import datetime as dt

from goals.models import Contribution, Guardrail, SharedGoal
from metrics.models import Measurement
from tests import factories

JAN, FEB, MAR = dt.date(2027, 1, 1), dt.date(2027, 2, 1), dt.date(2027, 3, 1)


def build(silo_a, silo_b):
    """Sales' deals (sum) and Finance's margin (mean) feed "Profitable growth" with
    weights 2 and 1; Support's CSAT (last) is its guardrail: baseline 84, tolerance 2.

    deals 40 + 50 + 60 = 150 from 100 to 200: attainment 0.5; margin mean 36 from 30 to
    40: 0.6; progress (2 x 0.5 + 1 x 0.6) / 3 = 0.5333...; CSAT 83 worsened by 1.
    """
    finance = factories.SiloFactory(slug="finance", name="Finance", position=30)
    cycle = factories.CycleFactory(name="FY2027", phase="aligning")
    deals = factories.KPIFactory(silo=silo_a, slug="deals", aggregation="sum")
    margin = factories.KPIFactory(silo=finance, slug="margin", aggregation="mean")
    csat = factories.KPIFactory(silo=silo_b, slug="csat", aggregation="last")
    goal_deals = factories.GoalFactory(
        cycle=cycle,
        kpi=deals,
        baseline=100,
        target=200,
        period_start=JAN,
        period_end=MAR,
    )
    goal_margin = factories.GoalFactory(
        cycle=cycle,
        kpi=margin,
        baseline=30,
        target=40,
        period_start=JAN,
        period_end=MAR,
    )
    shared = SharedGoal.objects.create(cycle=cycle, name="Profitable growth")
    Contribution.objects.create(shared_goal=shared, goal=goal_deals, weight=2.0)
    Contribution.objects.create(shared_goal=shared, goal=goal_margin, weight=1.0)
    guardrail = Guardrail.objects.create(
        shared_goal=shared, kpi=csat, baseline=84.0, tolerance=2.0
    )
    rows = [
        (deals, JAN, 40.0),
        (deals, FEB, 50.0),
        (deals, MAR, 60.0),
        (margin, JAN, 35.0),
        (margin, FEB, 36.0),
        (margin, MAR, 37.0),
        (csat, JAN, 84.0),
        (csat, FEB, 83.0),
    ]
    Measurement.objects.bulk_create(
        [
            Measurement(kpi=kpi, period=period, value=value)
            for kpi, period, value in rows
        ]
    )
    return {
        "cycle": cycle,
        "shared": shared,
        "deals": deals,
        "margin": margin,
        "csat": csat,
        "goal_deals": goal_deals,
        "goal_margin": goal_margin,
        "guardrail": guardrail,
    }
