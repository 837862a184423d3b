"""The services that cause each event dispatch it, with the data the issue names."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from conflicts import services as conflict_services
from conflicts.models import Conflict
from goals.rollups import shared_goals_rollup
from metrics.models import Measurement
from notifications.digest import digest_send
from notifications.models import Event
from planning import services as planning_services
from planning.models import SignOff
from tests import factories
from tests.conflicts.test_register import SUMMARY, association
from tests.goals.rollup_world import MAR, build

pytestmark = pytest.mark.django_db


def events(name):
    return list(Event.objects.filter(name=name).order_by("pk"))


def test_a_run_dispatches_conflict_new_and_conflict_high_with_both_kpis_and_silos(
    silo_a, silo_b, django_capture_on_commit_callbacks
):
    deals = factories.KPIFactory(silo=silo_a, slug="deals_closed", name="Deals closed")
    backlog = factories.KPIFactory(
        silo=silo_b,
        slug="ticket_backlog",
        name="Ticket backlog",
        direction="lower_is_better",
    )
    factories.GoalFactory(kpi=backlog, baseline=50, target=30)  # at risk: high
    run = factories.DetectionRunFactory(status="running")

    with django_capture_on_commit_callbacks(execute=True):
        conflict_services.detection_run_finish(
            run,
            [],
            [association(deals, backlog, r=-0.71, lag=1, q=0.001, n=40)],
            summary=SUMMARY,
            tests=8,
            blocks=1,
        )

    conflict = Conflict.objects.get()
    (new,) = events("conflict.new")
    assert new.key == f"conflict.new:{conflict.pk}:run-{run.pk}"
    assert (
        new.title == "New conflict (high): sales.deals_closed → support.ticket_backlog"
    )
    assert new.silo_ids == sorted([silo_a.pk, silo_b.pk])
    data = dict(new.data)
    assert data.pop("summary").startswith("When Sales' deals closed improves")
    assert data == {
        "conflict_id": conflict.pk,
        "leader_kpi": "sales.deals_closed",
        "affected_kpi": "support.ticket_backlog",
        "leader_silo": "sales",
        "affected_silo": "support",
        "severity": "high",
        "kind": "observed",
        "lag": 1,
        "grid": "monthly",
        "status": "open",
        "correlation": -0.71,
        "q_value": 0.001,
        "effect": None,
        "effect_low": None,
        "effect_high": None,
        "reopened": False,
        "url": f"http://127.0.0.1:8000/report/conflicts/{conflict.pk}/",
    }
    (high,) = events("conflict.high")
    assert (
        high.title
        == "High-severity conflict to review: sales.deals_closed → support.ticket_backlog"
    )


def test_a_workflow_step_dispatches_conflict_status_changed(cco):
    conflict = factories.ConflictFactory()

    conflict_services.conflict_transition(
        conflict=conflict,
        user=cco,
        status="acknowledged",
        note="Seen, on it.",
        owner=cco,
        due_date=dt.date(2099, 12, 31),
    )

    (event,) = events("conflict.status_changed")
    assert event.title.endswith(": open → acknowledged")
    assert {
        k: event.data[k]
        for k in ("from_status", "to_status", "changed_by", "note", "owner", "due_date")
    } == {
        "from_status": "open",
        "to_status": "acknowledged",
        "changed_by": "cco",
        "note": "Seen, on it.",
        "owner": "cco",
        "due_date": "2099-12-31",
    }
    assert event.silo_ids == sorted(
        [conflict.leader_silo_id, conflict.affected_silo_id]
    )


def test_a_refused_workflow_step_dispatches_nothing(cco):
    conflict = factories.ConflictFactory()
    with pytest.raises(ValidationError, match="cannot move to resolved"):
        conflict_services.conflict_transition(
            conflict=conflict, user=cco, status="resolved", note="Skipping a step."
        )
    assert events("conflict.status_changed") == []


def test_a_phase_move_dispatches_cycle_phase_changed(cco, silo_a):
    cycle = factories.CycleFactory(name="FY2027", phase="draft")
    cycle.silos.set([silo_a])

    planning_services.cycle_phase_move(
        cycle=cycle, user=cco, phase="proposing", reason="Kick-off"
    )

    (event,) = events("cycle.phase_changed")
    assert (event.title, event.url) == (
        "FY2027: draft → proposing",
        f"http://127.0.0.1:8000/report/cycles/{cycle.pk}/",
    )
    assert event.data == {
        "cycle_id": cycle.pk,
        "cycle": "FY2027",
        "from_phase": "draft",
        "to_phase": "proposing",
        "moved_by": "cco",
        "reason": "Kick-off",
        "url": f"http://127.0.0.1:8000/report/cycles/{cycle.pk}/",
    }
    assert event.silo_ids == [silo_a.pk]


def test_a_plan_change_voids_each_sign_off_once(
    silo_a, silo_b, manager_a, manager_b, cco
):
    cycle = factories.CycleFactory(name="FY2027", phase="aligning")
    cycle.silos.set([silo_a, silo_b])
    kpi = factories.KPIFactory(silo=silo_a, slug="deals")
    signed = planning_services.signoff_create(cycle=cycle, user=manager_a, silo=silo_a)
    assert events("signoff.voided") == []

    factories.GoalFactory(cycle=cycle, kpi=kpi)
    factories.PriorityFactory(cycle=cycle, accountable_silo=silo_a)

    (event,) = events("signoff.voided")
    assert event.key == f"signoff.voided:{signed.pk}"
    assert event.title == "The sign-off of Sales for FY2027 no longer counts"
    assert (event.data["silo"], event.data["signed_by"]) == ("sales", "manager_a")
    assert event.silo_ids == [silo_a.pk]

    # Signing again and changing the plan again voids the new sign-off, once.
    again = planning_services.signoff_create(cycle=cycle, user=manager_a, silo=silo_a)
    factories.PriorityFactory(cycle=cycle, accountable_silo=silo_b)
    assert [e.key for e in events("signoff.voided")] == [
        f"signoff.voided:{signed.pk}",
        f"signoff.voided:{again.pk}",
    ]
    assert SignOff.objects.count() == 1


def test_a_guardrail_breached_by_a_rollup_is_told_once(silo_a, silo_b):
    world = build(silo_a, silo_b)
    day = dt.date(2027, 3, 2)
    shared_goals_rollup(reason="command", day=day)
    assert events("guardrail.breached") == []

    Measurement.objects.create(kpi=world["csat"], period=MAR, value=80.0)
    shared_goals_rollup(reason="command", day=day)
    shared_goals_rollup(reason="command", day=day + dt.timedelta(days=1))

    (event,) = events("guardrail.breached")
    assert event.title == "Guardrail breached: Profitable growth"
    assert event.text == (
        "support.csat worsened by 4 against a tolerance of 2 (baseline 84, now 80)."
    )
    assert event.silo_ids == sorted([silo_a.pk, silo_b.pk, world["margin"].silo_id])
    assert [g["kpi"] for g in event.data["guardrails"]] == ["support.csat"]


def test_the_digest_lists_open_conflicts_goals_off_pace_and_cycles_waiting(
    silo_a, silo_b, manager_a
):
    aligning = factories.CycleFactory(name="FY2027", phase="aligning")
    aligning.silos.set([silo_a, silo_b])
    planning_services.signoff_create(cycle=aligning, user=manager_a, silo=silo_a)
    kpi = factories.KPIFactory(silo=silo_a, slug="deals", aggregation="sum")
    factories.GoalFactory(
        cycle=factories.CycleFactory(name="FY2026", phase="committed"),
        kpi=kpi,
        baseline=0,
        target=120,
        period_start=dt.date(2026, 1, 1),
        period_end=dt.date(2026, 12, 1),
    )
    Measurement.objects.create(kpi=kpi, period=dt.date(2026, 1, 1), value=10)
    factories.ConflictFactory(severity="high")

    event = digest_send(dt.datetime(2026, 7, 6, 8, tzinfo=dt.UTC))

    lines = event.text.splitlines()
    assert lines[0:2] == [
        "Goals off pace: 1",
        # Only January came in: by June, the last complete month, half the year's
        # 120 deals were due (linear: no 2025 values for a seasonal shape).
        "- sales.deals (FY2026): 8% attained, 50% expected by Jun 2026 (off track)",
    ]
    assert lines[2:4] == [
        "Cycles waiting for sign-offs: 1",
        "- FY2027: waiting for Support",
    ]
    assert lines[4:] == ["Open conflicts: 1", "- high: 1"]
    assert event.key == "digest:2026-W28"
