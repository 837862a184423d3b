"""Detection on data that looks like a real company's (issue 11), with exact expectations.

Each test stores a seeded company (tests/conflicts/messy.py) in PostgreSQL and runs
detection end to end (``detection_run_now``) with the drivers method, and, where it shows
the trap, the first (pairwise) method on the same data.
"""

import datetime as dt

import numpy as np
import pytest

from conflicts import engine, evidence, inputs
from conflicts import services as conflict_services
from conflicts.models import Conflict, DetectionRun
from metrics.detection import Association
from tests.conflicts.messy import clean_company, messy_company, small_company

pytestmark = pytest.mark.django_db


def register() -> set[tuple[str, str, int, str]]:
    """The observed conflicts as (leader key, affected key, lag, grid)."""
    return {
        (c.leader_kpi.key, c.affected_kpi.key, c.lag, c.grid)
        for c in Conflict.objects.filter(is_observed=True, stale=False).select_related(
            "leader_kpi", "affected_kpi"
        )
    }


def detect(method: str = "drivers") -> DetectionRun:
    return conflict_services.detection_run_now(method=method)


def test_a_common_driver_alone_makes_no_conflict_and_is_shown():
    small_company(3, effect=None, driver=True).save()

    pairwise = detect("pairwise")
    naive = register()
    run = detect()

    # Demand moves twelve KPIs of six silos: the first method takes its co-movement
    # for conflicts, the drivers method for what it is.
    assert len(naive) == pairwise.conflicts_found == 31
    assert register() == set()
    assert run.conflicts_found == 0
    assert [(d["grid"], d["silos"], len(d["kpis"])) for d in run.drivers] == [
        ("monthly", 6, 12)
    ]
    assert {entry["kpi"] for entry in run.drivers[0]["kpis"]} == {
        "sales.leader",
        "support.follower",
        "operations.volume",
        "operations.queue",
        "operations.overtime",
        "finance.revenue",
        "finance.cost",
        "finance.receivables",
        "marketing.sessions",
        "marketing.leads",
        "product.signups",
        "product.incidents",
    }


def test_a_conflict_between_two_kpis_the_driver_moves_is_still_found():
    company = small_company(1, effect=-1.5, driver=True)
    company.save()

    run = detect()

    assert register() == {("sales.leader", "support.follower", 1, "monthly")}
    conflict = Conflict.objects.get()
    assert conflict.effect_low <= -1.5 <= conflict.effect_high
    assert run.drivers[0]["silos"] == 6


def test_a_one_month_joint_jump_makes_no_conflict():
    small_company(2, effect=None, joint_jump=True, gaps=0.0).save()

    detect("pairwise")
    naive = register()
    detect()

    assert naive == {("marketing.jumper", "finance.jumped", 0, "monthly")}
    assert register() == set()


def test_a_typo_neither_makes_nor_hides_a_conflict():
    small_company(3, effect=-1.5, typo=True).save()

    detect("pairwise")
    naive = register()
    detect()

    # The value typed ten times too large hides the conflict from the first method.
    assert naive == set()
    assert register() == {("sales.leader", "support.follower", 1, "monthly")}


def test_a_trailing_average_follower_is_found_at_its_lag():
    small_company(3, effect=-2.0, lag=2, follower_window=3).save()

    detect("pairwise")
    naive = register()
    detect()

    assert naive == set()
    assert register() == {("sales.leader", "support.follower", 2, "monthly")}


def test_a_quarterly_follower_is_found_with_its_lag_in_quarters():
    company = messy_company(0)
    company.save()

    detect()

    planted = next(p for p in company.planted if p.grid == "quarterly")
    conflict = Conflict.objects.get(affected_kpi__key=planted.follower)
    assert (conflict.leader_kpi.key, conflict.lag, conflict.grid) == (
        "sales.quota_attainment",
        1,
        "quarterly",
    )
    assert conflict.effect_low <= planted.effect <= conflict.effect_high
    assert "one quarter later" in evidence.describe(conflict)


def test_a_messy_company_gives_exactly_its_planted_conflicts():
    company = messy_company(0)
    company.save()

    run = detect()

    assert register() == {
        (p.leader, p.follower, p.lag, p.grid) for p in company.planted
    }
    assert run.conflicts_found == 5
    # Demand and the season: one driver of the monthly grid (11 KPIs of five silos,
    # the weekly tickets among them) and its echo on the quarterly grid.
    assert [(d["grid"], d["silos"], len(d["kpis"])) for d in run.drivers] == [
        ("monthly", 5, 11),
        ("quarterly", 6, 11),
    ]
    assert "support.tickets_opened" in {e["kpi"] for e in run.drivers[0]["kpis"]}
    assert (
        run.parameters["tests"] == "one-sided, conflicts and synergies as two families"
    )


def test_the_first_method_falls_for_the_traps_of_the_same_company():
    company = messy_company(0)
    company.save()

    run = detect("pairwise")

    planted = {(p.leader, p.follower) for p in company.planted}
    false = {(a, b) for a, b, _, _ in register()} - planted
    assert run.method == "pairwise"
    assert len(false) == 22


def test_the_effect_is_said_in_the_affected_kpis_units():
    small_company(1, effect=-1.5, driver=True).save()
    detect()

    conflict = Conflict.objects.select_related(
        "leader_kpi", "affected_kpi", "leader_silo", "affected_silo", "last_run"
    ).get()

    step, effect = conflict.effect_step, conflict.effect
    assert step == 10.0
    assert evidence.describe(conflict).startswith(
        f"A rise of 10 units in Sales' leader in a month, beyond what the company-wide "
        f"drivers explain, comes with a fall of {abs(effect) * 10:.3g} points in "
        "Support's follower one month later (95% CI "
    )


@pytest.mark.parametrize("seed", [0, 1, 2, 4])
def test_a_clean_company_gives_exactly_its_planted_conflicts(seed):
    company = clean_company(seed)
    company.save()

    detect()

    assert register() == {
        (p.leader, p.follower, p.lag, "monthly") for p in company.planted
    }


def test_effect_sizes_recover_the_planted_effect_in_at_least_90_of_100_pairs():
    """A property of the estimator: its 95% interval holds the planted effect."""
    rng = np.random.default_rng(20261201)
    covered = 0
    for seed in range(100):
        effect = float(rng.uniform(-1.6, -0.6)) * (1 if seed % 2 else -1)
        lag = seed % 4
        direction = "higher_is_better" if effect < 0 else "lower_is_better"
        company = small_company(
            1000 + seed,
            effect=effect,
            lag=lag,
            follower_direction=direction,
            driver=seed % 3 == 0,
            months=int(rng.choice([36, 48, 60])),
        )
        series, keys = company.as_series()
        ids = {key: kpi_id for kpi_id, key in keys.items()}
        matrices = inputs.matrices_from(series, inputs.DRIVERS)
        pair = (ids["sales.leader"], ids["support.follower"])
        estimated = engine.effects_of(
            matrices,
            [Association(*pair, lag=lag, r=-0.5, p=0.0, q=0.0, n=0, kind="conflict")],
        )[pair]
        covered += estimated.low <= effect <= estimated.high
    assert covered >= 90


def test_periods_of_quarterly_evidence_are_quarters():
    company = messy_company(0)
    company.save()
    detect()

    conflict = Conflict.objects.get(grid="quarterly")

    assert conflict.periods == 16
    assert conflict.first_detected_at.date() == dt.date.today()
