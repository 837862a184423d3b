"""Detection end to end on synthetic companies: planted effects found, traps not.

Each test stores a company through the ORM, runs detection like the command does, and
states the exact register it expects.
"""

import pytest

from conflicts import services
from conflicts.models import Conflict, DetectionRun
from tests.conflicts.company import Company, standard_company

pytestmark = pytest.mark.django_db


def register() -> set[tuple[str, str, int, str]]:
    return {
        (c.leader_kpi.key, c.affected_kpi.key, c.lag, c.kind)
        for c in Conflict.objects.select_related("leader_kpi", "affected_kpi")
    }


def run() -> DetectionRun:
    return services.detection_run_now()


def test_planted_lagged_conflict_is_found_at_its_lag_and_traps_are_not():
    company = standard_company()
    company.save()

    detection = run()

    # Only the planted cross-silo conflict: not the opposite trends (finance.revenue
    # vs operations.quality), not the synergy (on_time -> csat), not the trade-off
    # inside sales, not the KPI with 10 months, not the noise.
    assert register() == {
        ("sales.deals_closed", "support.ticket_backlog", 2, "observed")
    }
    conflict = Conflict.objects.get()
    assert conflict.periods == company.paired_changes(
        "sales.deals_closed", "support.ticket_backlog", 2
    )
    assert conflict.periods < 45  # the backlog's gaps removed pairs
    assert conflict.correlation < -0.8
    assert conflict.q_value < 0.05
    assert conflict.p_value <= conflict.q_value
    assert conflict.leader_silo.slug == "sales"
    assert conflict.affected_silo.slug == "support"
    assert detection.status == "succeeded"
    assert detection.conflicts_found == 1
    assert detection.new_conflicts == 1
    # 16 KPIs with data; the synergy is reported on the run, not registered.
    assert detection.kpis == 16
    synergy_pairs = {(s["leader_kpi"], s["affected_kpi"]) for s in detection.synergies}
    assert ("operations.on_time", "support.csat") in synergy_pairs
    assert detection.synergies_found == len(detection.synergies)


def test_lower_is_better_leader_improving_by_falling_is_a_conflict():
    company = Company(months=40, seed=3)
    company.silo("operations", 0)
    company.silo("support", 1)
    # Cost per order is lower-is-better: it improves by falling, and CSAT (higher is
    # better) falls a month after it does.
    company.kpi("operations.cost_per_order", direction="lower_is_better")
    company.kpi("support.csat")
    company.kpi("support.noise")
    company.plant("operations.cost_per_order", "support.csat", lag=1, coefficient=-0.8)
    company.save()

    run()

    assert register() == {("operations.cost_per_order", "support.csat", 1, "observed")}


def test_both_lower_is_better_moving_together_is_a_conflict():
    # Handle time falls (improves) and the backlog rises (worsens): raw values move in
    # opposite directions, direction-adjusted changes are negatively associated.
    company = Company(months=40, seed=5)
    company.silo("support", 0)
    company.silo("operations", 1)
    company.kpi("support.handle_time", direction="lower_is_better")
    company.kpi("operations.backlog", direction="lower_is_better")
    company.plant("support.handle_time", "operations.backlog", lag=0, coefficient=-0.8)
    company.save()

    run()

    assert register() == {("support.handle_time", "operations.backlog", 0, "observed")}


def test_too_few_paired_changes_means_no_test_at_all():
    company = Company(months=12, seed=9)  # 11 changes: below the minimum of 12
    company.silo("sales", 0)
    company.silo("support", 1)
    company.kpi("sales.deals")
    company.kpi("support.backlog", direction="lower_is_better")
    company.plant("sales.deals", "support.backlog", lag=0, coefficient=-0.95)
    company.save()

    detection = run()

    assert register() == set()
    assert detection.tests == 0
    assert detection.kpis == 2


def test_pure_noise_company_has_no_conflict():
    company = Company(months=48, seed=11)
    for position, slug in enumerate(["sales", "support", "finance"]):
        company.silo(slug, position)
        for index in range(6):
            company.kpi(f"{slug}.kpi_{index}")
    company.save()

    detection = run()

    assert register() == set()
    # 18 KPIs, 3 silos of 6: 216 cross-silo ordered pairs at lags 1-3, 108 at lag 0.
    assert detection.tests == 3 * 216 + 108
    assert detection.conflicts_found == 0


def test_rerun_on_the_same_data_changes_no_evidence_and_adds_no_row():
    standard_company().save()
    first = run()
    before = list(
        Conflict.objects.values_list(
            "id",
            "kind",
            "lag",
            "correlation",
            "p_value",
            "q_value",
            "periods",
            "severity",
            "status",
            "first_detected_at",
        )
    )

    second = run()

    after = list(
        Conflict.objects.values_list(
            "id",
            "kind",
            "lag",
            "correlation",
            "p_value",
            "q_value",
            "periods",
            "severity",
            "status",
            "first_detected_at",
        )
    )
    assert after == before
    assert second.new_conflicts == 0
    assert second.tests == first.tests
    assert Conflict.objects.get().last_run_id == second.pk
