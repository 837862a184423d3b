"""The conflict register: declared, observed, confirmed, contradicted and stale
conflicts, severity, the review workflow, the reopening rule and the alert mail."""

import datetime as dt
import threading

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection

from conflicts import services
from conflicts.models import Conflict, ConflictTransition, DetectionRun
from metrics.detection import Association
from metrics.models import Measurement
from tests import factories
from tests.conflicts.company import Company, standard_company

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair(silo_a, silo_b):
    """Sales' deals closed and Support's ticket backlog, with a declared hurts link."""
    deals = factories.KPIFactory(silo=silo_a, slug="deals_closed", name="Deals closed")
    backlog = factories.KPIFactory(
        silo=silo_b,
        slug="ticket_backlog",
        name="Ticket backlog",
        direction="lower_is_better",
    )
    link = factories.ImpactLinkFactory(leader_kpi=deals, affected_kpi=backlog, lag=1)
    return deals, backlog, link


def association(leader, follower, *, r=-0.7, lag=1, q=0.001, n=40):
    return Association(
        leader=leader.pk,
        follower=follower.pk,
        lag=lag,
        r=r,
        p=q / 10,
        q=q,
        n=n,
        kind="conflict" if r < 0 else "synergy",
    )


def reconcile_run(*associations):
    run = factories.DetectionRunFactory(status="running")
    services.reconcile(run=run, associations=list(associations))
    return run


# --- declared conflicts -------------------------------------------------------------


def test_declared_conflict_appears_when_the_goal_is_saved_before_any_data(
    pair, django_capture_on_commit_callbacks
):
    deals, backlog, link = pair
    cycle = factories.CycleFactory(phase="proposing")
    assert Conflict.objects.count() == 0

    with django_capture_on_commit_callbacks(execute=True):
        factories.GoalFactory(cycle=cycle, kpi=deals, baseline=100, target=150)

    conflict = Conflict.objects.get()
    assert (conflict.kind, conflict.leader_kpi, conflict.affected_kpi) == (
        "declared",
        deals,
        backlog,
    )
    assert conflict.link == link
    assert conflict.status == "open"
    assert conflict.correlation is None
    # No goal on the backlog: nothing at risk, so low.
    assert (conflict.severity, conflict.goal_at_risk) == ("low", False)
    assert Measurement.objects.count() == 0

    with django_capture_on_commit_callbacks(execute=True):
        factories.GoalFactory(cycle=cycle, kpi=backlog, baseline=50, target=30)

    conflict.refresh_from_db()
    # The backlog's goal has no data yet (attainment unknown): at risk -> medium.
    assert (conflict.severity, conflict.goal_at_risk) == ("medium", True)
    assert Conflict.objects.count() == 1


@pytest.mark.parametrize(
    ("phase", "baseline", "target", "effect", "declared"),
    [
        ("proposing", 100, 150, "hurts", True),
        ("committed", 100, 150, "hurts", True),
        ("closed", 100, 150, "hurts", False),  # the cycle is over
        ("proposing", 100, 100, "hurts", False),  # the goal asks for no improvement
        ("proposing", 100, 150, "helps", False),  # a helps link is no conflict
    ],
)
def test_declared_needs_a_hurts_link_and_an_improving_goal_in_an_open_cycle(
    pair, phase, baseline, target, effect, declared
):
    deals, _, link = pair
    link.effect = effect
    link.save()
    cycle = factories.CycleFactory(phase=phase)
    factories.GoalFactory(cycle=cycle, kpi=deals, baseline=baseline, target=target)

    services.reconcile()

    assert Conflict.objects.filter(kind="declared").exists() is declared


def test_removing_the_goal_makes_a_declared_conflict_stale_not_deleted(pair):
    deals, _, _ = pair
    goal = factories.GoalFactory(kpi=deals)
    services.reconcile()
    goal.delete()

    services.reconcile()

    conflict = Conflict.objects.get()
    assert conflict.stale is True
    assert conflict.stale_since is not None
    assert conflict.kind == "declared"


# --- observed, confirmed, contradicted ------------------------------------------------


def test_declared_and_observed_is_confirmed_in_the_same_row(pair):
    deals, backlog, _ = pair
    factories.GoalFactory(kpi=deals)
    factories.GoalFactory(kpi=backlog, baseline=50, target=30)
    services.reconcile()
    declared_id = Conflict.objects.get().pk

    run = reconcile_run(association(deals, backlog, r=-0.72, lag=1, q=0.002, n=38))

    conflict = Conflict.objects.get()
    assert conflict.pk == declared_id
    assert conflict.kind == "confirmed"
    assert (conflict.lag, conflict.correlation, conflict.q_value, conflict.periods) == (
        1,
        -0.72,
        0.002,
        38,
    )
    assert conflict.last_run == run
    assert conflict.severity == "high"  # strong effect, backlog goal at risk


def test_declared_link_contradicted_by_a_positive_association_is_flagged(pair):
    deals, backlog, _ = pair
    factories.GoalFactory(kpi=deals)
    services.reconcile()

    reconcile_run(association(deals, backlog, r=0.65, lag=1))

    conflict = Conflict.objects.get()
    assert conflict.kind == "declared"
    assert conflict.contradicted is True
    assert conflict.correlation == 0.65
    assert conflict.severity == "low"


def test_synergy_alone_never_enters_the_register(pair):
    deals, backlog, link = pair
    link.delete()

    reconcile_run(association(deals, backlog, r=0.8))

    assert Conflict.objects.count() == 0


def test_lag_zero_association_follows_a_link_declared_the_other_way(pair):
    deals, backlog, _ = pair
    # Tested as backlog -> deals at lag 0 (a symmetric test): the declared link names
    # it deals -> backlog, so the register does too.
    reconcile_run(association(backlog, deals, r=-0.7, lag=0))

    conflict = Conflict.objects.get()
    assert (conflict.leader_kpi, conflict.affected_kpi) == (deals, backlog)


def test_observed_conflict_no_longer_found_is_marked_stale(pair):
    deals, backlog, _ = pair
    reconcile_run(association(deals, backlog))
    conflict = Conflict.objects.get()
    assert (conflict.kind, conflict.stale) == ("observed", False)

    reconcile_run()

    conflict.refresh_from_db()
    assert conflict.stale is True
    assert conflict.kind == "observed"
    assert conflict.correlation == -0.7  # the last evidence is kept
    assert conflict.status == "open"

    reconcile_run(association(deals, backlog))
    conflict.refresh_from_db()
    assert (conflict.stale, conflict.stale_since) == (False, None)


# --- severity -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("correlation", "at_risk", "contradicted", "severity"),
    [
        (-0.5, True, False, "high"),
        (-0.9, False, False, "medium"),
        (-0.49, True, False, "medium"),
        (-0.3, True, False, "medium"),
        (-0.29, True, False, "low"),
        (-0.45, False, False, "low"),
        (None, True, False, "medium"),
        (None, False, False, "low"),
        (0.8, True, True, "low"),
    ],
)
def test_severity_rule(correlation, at_risk, contradicted, severity):
    assert (
        services.severity_for(
            correlation=correlation, goal_at_risk=at_risk, contradicted=contradicted
        )
        == severity
    )


def test_a_met_goal_is_not_at_risk(pair):
    deals, backlog, _ = pair
    # Backlog goal: from 50 down to 30 over 2027; the stored months average 25.
    factories.GoalFactory(
        kpi=backlog,
        baseline=50,
        target=30,
        period_start=dt.date(2027, 1, 1),
        period_end=dt.date(2027, 2, 1),
    )
    backlog.aggregation = "mean"
    backlog.save()
    for month, value in ((1, 20.0), (2, 30.0)):
        factories.MeasurementFactory(
            kpi=backlog, period=dt.date(2027, month, 1), value=value
        )

    reconcile_run(association(deals, backlog, r=-0.9))

    conflict = Conflict.objects.get()
    assert (conflict.goal_at_risk, conflict.severity) == (False, "medium")


# --- workflow -------------------------------------------------------------------------


def test_workflow_steps_record_user_time_and_note(pair, cco):
    deals, backlog, _ = pair
    reconcile_run(association(deals, backlog))
    conflict = Conflict.objects.get()

    services.transition(
        conflict=conflict, user=cco, status="acknowledged", note="  Raised with both.  "
    )
    services.transition(
        conflict=conflict,
        user=cco,
        status="accepted_tradeoff",
        note="Growth first this year; Support gets two more agents.",
    )

    conflict.refresh_from_db()
    assert conflict.status == "accepted_tradeoff"
    assert conflict.note == "Growth first this year; Support gets two more agents."
    assert conflict.status_changed_by == cco
    assert conflict.closed_correlation == -0.7
    assert conflict.closed_severity == conflict.severity
    steps = list(
        ConflictTransition.objects.values_list(
            "from_status", "to_status", "note", "user"
        )
    )
    assert steps == [
        ("open", "acknowledged", "Raised with both.", cco.pk),
        (
            "acknowledged",
            "accepted_tradeoff",
            "Growth first this year; Support gets two more agents.",
            cco.pk,
        ),
    ]
    assert all(t.created_at for t in ConflictTransition.objects.all())


@pytest.mark.parametrize(
    ("path", "status", "note", "field", "message"),
    [
        (
            [],
            "resolved",
            "Fixed.",
            "status",
            "A conflict that is open cannot move to resolved: it can only move to acknowledged.",
        ),
        ([], "open", "Again.", "status", "A conflict that is open cannot move to open"),
        (
            ["acknowledged"],
            "acknowledged",
            "Again.",
            "status",
            "can only move to accepted_tradeoff, resolved, dismissed",
        ),
        (
            ["acknowledged", "dismissed"],
            "acknowledged",
            "Back.",
            "status",
            "it is closed; only a detection run reopens it",
        ),
        ([], "acknowledged", "   ", "note", "A note is required"),
        ([], "archived", "Note.", "status", "Unknown status 'archived'"),
    ],
)
def test_invalid_steps_are_refused_with_the_reason(
    pair, cco, path, status, note, field, message
):
    deals, backlog, _ = pair
    reconcile_run(association(deals, backlog))
    conflict = Conflict.objects.get()
    for step in path:
        services.transition(conflict=conflict, user=cco, status=step, note="ok")
    before = ConflictTransition.objects.count()

    with pytest.raises(ValidationError) as refused:
        services.transition(conflict=conflict, user=cco, status=status, note=note)

    assert message in refused.value.message_dict[field][0]
    assert ConflictTransition.objects.count() == before


def close(conflict, user, status="dismissed"):
    services.transition(
        conflict=conflict, user=user, status="acknowledged", note="Seen."
    )
    services.transition(conflict=conflict, user=user, status=status, note="Not ours.")


@pytest.mark.parametrize("closed_as", ["dismissed", "accepted_tradeoff", "resolved"])
def test_closed_conflict_stays_closed_on_same_or_slightly_stronger_evidence(
    pair, cco, closed_as
):
    deals, backlog, _ = pair
    reconcile_run(association(deals, backlog, r=-0.6))
    conflict = Conflict.objects.get()
    close(conflict, cco, closed_as)

    reconcile_run(association(deals, backlog, r=-0.6))
    reconcile_run(association(deals, backlog, r=-0.69, q=0.0001))

    conflict.refresh_from_db()
    assert conflict.status == closed_as
    assert ConflictTransition.objects.filter(user=None).count() == 0


def test_closed_conflict_reopens_when_r_grows_by_the_margin(pair, cco):
    deals, backlog, _ = pair
    reconcile_run(association(deals, backlog, r=-0.6))
    conflict = Conflict.objects.get()
    close(conflict, cco)

    run = reconcile_run(association(deals, backlog, r=-0.7))

    conflict.refresh_from_db()
    assert conflict.status == "open"
    reopening = ConflictTransition.objects.get(user=None)
    assert (reopening.from_status, reopening.to_status, reopening.run) == (
        "dismissed",
        "open",
        run,
    )
    assert "materially stronger" in reopening.note
    assert conflict.note == reopening.note


def test_closed_conflict_reopens_when_the_affected_goal_falls_at_risk(pair, cco):
    deals, backlog, _ = pair
    reconcile_run(association(deals, backlog, r=-0.6))
    conflict = Conflict.objects.get()
    assert conflict.severity == "medium"
    close(conflict, cco, "accepted_tradeoff")

    factories.GoalFactory(kpi=backlog, baseline=50, target=30)
    reconcile_run(association(deals, backlog, r=-0.6))

    conflict.refresh_from_db()
    assert (conflict.severity, conflict.status) == ("high", "open")


def test_stale_closed_conflict_is_never_reopened(pair, cco):
    deals, backlog, _ = pair
    reconcile_run(association(deals, backlog, r=-0.6))
    conflict = Conflict.objects.get()
    close(conflict, cco)

    reconcile_run()

    conflict.refresh_from_db()
    assert (conflict.stale, conflict.status) == (True, "dismissed")


# --- alert mail -----------------------------------------------------------------------


def test_new_high_severity_conflicts_mail_the_cco_team_and_both_silos_managers(
    pair, cco, manager_a, manager_b, django_capture_on_commit_callbacks
):
    deals, backlog, _ = pair
    for user, email in (
        (cco, "cco@example.com"),
        (manager_a, "a@example.com"),
        (manager_b, ""),
    ):
        user.email = email
        user.save()
    factories.silo_manager(factories.SiloFactory(), email="other@example.com")
    factories.GoalFactory(kpi=backlog, baseline=50, target=30)

    with django_capture_on_commit_callbacks(execute=True):
        run = factories.DetectionRunFactory(status="running", started_at=None)
        services.finish_run(
            run,
            [association(deals, backlog, r=-0.71, lag=1, q=0.001, n=40)],
            kpis=2,
            measurements=80,
            tests=8,
            blocks=1,
        )

    # manager_b has no address; the other silo's manager is not concerned.
    assert sorted(m.to[0] for m in mail.outbox) == ["a@example.com", "cco@example.com"]
    message = mail.outbox[0]
    assert message.subject == "ducttape: 1 new high-severity conflict"
    assert (
        "When Sales' deals closed improves, Support's ticket backlog worsens one "
        "month later: r = -0.71, q = 0.001, over 40 months." in message.body
    )

    conflict = Conflict.objects.get()
    assert f"  http://127.0.0.1:8000/report/conflicts/{conflict.pk}/" in message.body
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        again = factories.DetectionRunFactory(status="running")
        services.finish_run(
            again,
            [association(deals, backlog, r=-0.71, lag=1, q=0.001, n=40)],
            kpis=2,
            measurements=80,
            tests=8,
            blocks=1,
        )
    assert mail.outbox == []


# --- runs -----------------------------------------------------------------------------


def test_a_run_records_its_parameters_counts_and_duration():
    standard_company().save()

    run = services.run_as_command(
        max_lag=2, min_pairs=15, q_threshold=0.01, block_size=5
    )

    run.refresh_from_db()
    assert (run.max_lag, run.min_pairs, run.q_threshold, run.block_size) == (
        2,
        15,
        0.01,
        5,
    )
    assert run.status == "succeeded"
    assert run.trigger == "command"
    # 16 KPIs in blocks of 5 leaders x 10 followers: 4 x 2 blocks.
    assert run.blocks == 8
    assert run.measurements == Measurement.objects.count()
    assert run.duration_seconds > 0
    assert run.finished_at >= run.started_at


def test_a_started_run_is_not_run_again():
    standard_company().save()
    run = services.run_as_command()
    finished_at = run.finished_at

    again = services.run_detection(DetectionRun.objects.get(pk=run.pk))

    assert again.finished_at == finished_at
    assert DetectionRun.objects.count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_runs_at_once_leave_one_row_per_pair():
    standard_company(seed=8).save()
    errors = []

    def detect():
        try:
            services.run_as_command()
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=detect) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert DetectionRun.objects.filter(status="succeeded").count() == 2
    assert list(
        Conflict.objects.values_list("leader_kpi__key", "affected_kpi__key")
    ) == [("sales.deals_closed", "support.ticket_backlog")]


def test_gaps_and_a_second_company_shape():
    # Both KPIs with 20% of months missing: still found, over exactly the shared pairs.
    company = Company(months=60, seed=21)
    company.silo("finance", 0)
    company.silo("sales", 1)
    company.kpi("finance.credit_strictness")
    company.kpi("sales.win_rate")
    company.plant(
        "finance.credit_strictness", "sales.win_rate", lag=3, coefficient=-0.8
    )
    company.drop("finance.credit_strictness", 0.2)
    company.drop("sales.win_rate", 0.2)
    company.save()

    services.run_as_command()

    conflict = Conflict.objects.get()
    assert (conflict.leader_kpi.key, conflict.affected_kpi.key, conflict.lag) == (
        "finance.credit_strictness",
        "sales.win_rate",
        3,
    )
    assert conflict.periods == company.paired_changes(
        "finance.credit_strictness", "sales.win_rate", 3
    )


def test_reconcile_query_count_does_not_grow_with_the_register(silo_a, silo_b):
    from django.test.utils import CaptureQueriesContext

    def queries(pairs):
        kpis = [
            (factories.KPIFactory(silo=silo_a), factories.KPIFactory(silo=silo_b))
            for _ in range(pairs)
        ]
        for leader, affected in kpis:
            factories.GoalFactory(kpi=leader)
            factories.GoalFactory(kpi=affected, baseline=50, target=30)
            factories.ImpactLinkFactory(leader_kpi=leader, affected_kpi=affected)
        found = [association(leader, affected) for leader, affected in kpis]
        run = factories.DetectionRunFactory(status="running")
        with CaptureQueriesContext(connection) as captured:
            services.reconcile(run=run, associations=found)
        return len(captured)

    small = queries(2)
    assert Conflict.objects.count() == 2
    Conflict.objects.all().delete()
    assert queries(30) == small
    assert Conflict.objects.count() == 32
