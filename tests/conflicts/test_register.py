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

#: A due date that never passes, for the steps that acknowledge.
DUE = dt.date(2099, 12, 31)


def assign(status, owner):
    """The owner and due date a step to ``status`` needs (acknowledging only)."""
    return {"owner": owner, "due_date": DUE} if status == "acknowledged" else {}


#: What a run read, as detection_run_finish takes it (no KPI left untested, no drivers).
SUMMARY = {"kpis": 2, "measurements": 80, "untested": [], "drivers": []}


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
    services.register_reconcile(run=run, associations=list(associations))
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


def test_loading_a_fixture_does_not_refresh_the_register(
    pair, tmp_path, django_capture_on_commit_callbacks
):
    # loaddata saves raw rows, possibly before the rows they name: the receivers skip
    # them, and the next ordinary save (or run) refreshes the register.
    from django.core import serializers
    from django.core.management import call_command

    from goals.models import Goal

    deals, _backlog, _link = pair
    cycle = factories.CycleFactory(phase="proposing")
    goal = factories.GoalFactory(cycle=cycle, kpi=deals, baseline=100, target=150)
    fixture = tmp_path / "goal.json"
    fixture.write_text(serializers.serialize("json", [goal]))
    Goal.objects.all().delete()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        call_command("loaddata", str(fixture), verbosity=0)

    assert callbacks == []
    assert Goal.objects.count() == 1
    assert Conflict.objects.count() == 0

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        Goal.objects.get().save()

    assert len(callbacks) == 1
    assert Conflict.objects.get().kind == "declared"


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

    services.register_reconcile()

    assert Conflict.objects.filter(kind="declared").exists() is declared


def test_removing_the_goal_makes_a_declared_conflict_stale_not_deleted(pair):
    deals, _, _ = pair
    goal = factories.GoalFactory(kpi=deals)
    services.register_reconcile()
    goal.delete()

    services.register_reconcile()

    conflict = Conflict.objects.get()
    assert conflict.stale is True
    assert conflict.stale_since is not None
    assert conflict.kind == "declared"


# --- observed, confirmed, contradicted ------------------------------------------------


def test_declared_and_observed_is_confirmed_in_the_same_row(pair):
    deals, backlog, _ = pair
    factories.GoalFactory(kpi=deals)
    factories.GoalFactory(kpi=backlog, baseline=50, target=30)
    services.register_reconcile()
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
    services.register_reconcile()

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
    # A hurts link declares the pair (its leader has no goal): observed + declared link
    # is "confirmed", as the README says.
    assert (conflict.kind, conflict.stale) == ("confirmed", False)

    reconcile_run()

    conflict.refresh_from_db()
    assert conflict.stale is True
    assert conflict.kind == "confirmed"
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

    services.conflict_transition(
        conflict=conflict,
        user=cco,
        status="acknowledged",
        note="  Raised with both.  ",
        owner=cco,
        due_date=DUE,
    )
    services.conflict_transition(
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
    # Closing keeps who owned it and by when.
    assert (conflict.owner, conflict.due_date) == (cco, DUE)
    steps = list(
        ConflictTransition.objects.values_list(
            "from_status", "to_status", "note", "user", "owner", "due_date"
        )
    )
    assert steps == [
        ("open", "acknowledged", "Raised with both.", cco.pk, cco.pk, DUE),
        (
            "acknowledged",
            "accepted_tradeoff",
            "Growth first this year; Support gets two more agents.",
            cco.pk,
            None,
            None,
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
        services.conflict_transition(
            conflict=conflict, user=cco, status=step, note="ok", **assign(step, cco)
        )
    before = ConflictTransition.objects.count()

    with pytest.raises(ValidationError) as refused:
        services.conflict_transition(
            conflict=conflict, user=cco, status=status, note=note, **assign(status, cco)
        )

    assert message in refused.value.message_dict[field][0]
    assert ConflictTransition.objects.count() == before


def close(conflict, user, status="dismissed"):
    services.conflict_transition(
        conflict=conflict,
        user=user,
        status="acknowledged",
        note="Seen.",
        owner=user,
        due_date=DUE,
    )
    services.conflict_transition(
        conflict=conflict, user=user, status=status, note="Not ours."
    )


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
        services.detection_run_finish(
            run,
            [],
            [association(deals, backlog, r=-0.71, lag=1, q=0.001, n=40)],
            summary=SUMMARY,
            tests=8,
            blocks=1,
        )

    # manager_b has no address; the other silo's manager is not concerned.
    assert sorted(m.to[0] for m in mail.outbox) == ["a@example.com", "cco@example.com"]
    conflict = Conflict.objects.get()
    message = mail.outbox[0]
    assert message.subject == (
        f"ducttape: High-severity conflict to review: {deals.key} → {backlog.key}"
    )
    assert message.body.splitlines() == [
        "When Sales' deals closed improves, Support's ticket backlog worsens one "
        "month later: r = -0.71, q = 0.001, over 40 months.",
        "",
        f"Open in ducttape: http://127.0.0.1:8000/report/conflicts/{conflict.pk}/",
    ]
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        again = factories.DetectionRunFactory(status="running")
        services.detection_run_finish(
            again,
            [],
            [association(deals, backlog, r=-0.71, lag=1, q=0.001, n=40)],
            summary=SUMMARY,
            tests=8,
            blocks=1,
        )
    assert mail.outbox == []


# --- runs -----------------------------------------------------------------------------


def test_a_run_records_its_parameters_counts_and_duration():
    standard_company().save()

    run = services.detection_run_now(
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
    run = services.detection_run_now()
    finished_at = run.finished_at

    again = services.detection_run_perform(DetectionRun.objects.get(pk=run.pk))

    assert again.finished_at == finished_at
    assert DetectionRun.objects.count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_runs_at_once_leave_one_row_per_pair():
    standard_company(seed=8).save()
    errors = []

    def detect():
        try:
            services.detection_run_now()
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

    services.detection_run_now()

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
            services.register_reconcile(run=run, associations=found)
        return len(captured)

    small = queries(2)
    assert Conflict.objects.count() == 2
    Conflict.objects.all().delete()
    assert queries(30) == small
    assert Conflict.objects.count() == 32


# --- review findings: runs that must not stick or double-count ------------------------


def test_an_abandoned_running_run_is_taken_over_and_a_live_one_is_not(settings):
    from django.utils import timezone

    standard_company().save()
    live = factories.DetectionRunFactory(status="running", started_at=timezone.now())
    abandoned = factories.DetectionRunFactory(
        status="running",
        started_at=timezone.now()
        - dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 5),
    )

    assert services.detection_run_perform(live).status == "running"
    taken_over = services.detection_run_perform(abandoned)

    assert taken_over.status == "succeeded"
    assert taken_over.conflicts_found == 1


def scans_of_a_company(block_size=4):
    from conflicts import engine
    from conflicts.inputs import load_matrices

    standard_company().save()
    matrices, _ = load_matrices()
    work = [
        [index, list(block)]
        for index, matrix in enumerate(matrices)
        for block in matrix.blocks(block_size)
    ]
    p_keep = engine.first_p_keep(matrices, max_lag=3, q_threshold=0.05)
    scans = [
        engine.scan_to_json(
            engine.scan(
                matrices[index],
                tuple(block),
                max_lag=3,
                min_pairs=12,
                q_threshold=0.05,
                p_keep=p_keep,
            ),
            [index, block],
        )
        for index, block in work
    ]
    return scans, work, p_keep, matrices


def published(run, matrices):
    """Put a run's matrices where the chord's final step reads them (the cache)."""
    from django.core.cache import cache

    from conflicts import tasks

    cache.set(tasks._matrix_key(run.pk), matrices, 60)


def test_a_duplicated_final_step_writes_the_run_once():
    from conflicts import tasks

    scans, work, p_keep, matrices = scans_of_a_company()
    run = factories.DetectionRunFactory(status="running", block_size=4)
    published(run, matrices)
    summary = {**SUMMARY, "kpis": 16, "measurements": 700}

    first = tasks.merge_detection_blocks_task(scans, run.pk, work, p_keep, summary)
    published(run, matrices)
    second = tasks.merge_detection_blocks_task(scans, run.pk, work, p_keep, summary)

    run.refresh_from_db()
    assert (first, second) == ("finished", "skipped")
    assert (run.status, run.new_conflicts, run.conflicts_found) == ("succeeded", 1, 1)
    assert Conflict.objects.count() == 1


def test_a_block_counted_twice_fails_the_run_instead_of_a_wrong_result():
    from conflicts import tasks

    scans, work, p_keep, matrices = scans_of_a_company()
    run = factories.DetectionRunFactory(status="running", block_size=4)
    published(run, matrices)
    duplicated = [*scans[:-1], scans[0]]  # the last block missing, the first twice

    with pytest.raises(RuntimeError, match="expected 8 distinct blocks"):
        tasks.merge_detection_blocks_task(
            duplicated, run.pk, work, p_keep, {**SUMMARY, "kpis": 16}
        )

    run.refresh_from_db()
    assert run.status == "failed"
    assert "expected 8 distinct blocks, received 8 (7 distinct)" in run.error
    assert Conflict.objects.count() == 0


@pytest.mark.parametrize(
    ("note", "message"),
    [
        ("a\x00b", "Null characters are not allowed."),
        ("x" * 5001, "Keep the note to 5000 characters (it has 5001)."),
    ],
)
def test_a_note_with_nul_or_too_long_is_refused(pair, cco, note, message):
    deals, backlog, _ = pair
    reconcile_run(association(deals, backlog))
    conflict = Conflict.objects.get()

    with pytest.raises(ValidationError) as refused:
        services.conflict_transition(
            conflict=conflict,
            user=cco,
            status="acknowledged",
            note=note,
            owner=cco,
            due_date=DUE,
        )

    assert refused.value.message_dict == {"note": [message]}


def test_a_goal_change_never_reopens_a_closed_conflict_but_the_next_run_alerts(
    pair, cco, manager_b, django_capture_on_commit_callbacks
):
    deals, backlog, _ = pair
    cco.email = "cco@example.com"
    cco.save()
    reconcile_run(association(deals, backlog, r=-0.76))
    conflict = Conflict.objects.get()
    assert conflict.severity == "medium"
    services.conflict_transition(
        conflict=conflict,
        user=cco,
        status="acknowledged",
        note="Seen.",
        owner=cco,
        due_date=DUE,
    )

    # Support's manager adds a goal on the backlog: the conflict becomes high at once
    # (the goal is at risk), without a run.
    with django_capture_on_commit_callbacks(execute=True):
        factories.GoalFactory(kpi=backlog, baseline=50, target=30)
    conflict.refresh_from_db()
    assert (conflict.severity, conflict.status, conflict.alerted_high) == (
        "high",
        "acknowledged",
        False,
    )
    assert mail.outbox == []

    with django_capture_on_commit_callbacks(execute=True):
        run = factories.DetectionRunFactory(status="running")
        services.detection_run_finish(
            run,
            [],
            [association(deals, backlog, r=-0.76)],
            summary=SUMMARY,
            tests=8,
            blocks=1,
        )

    # The CCO team and Support's manager (Sales has none here), once each.
    assert sorted(m.to[0] for m in mail.outbox) == [
        "cco@example.com",
        "manager_b@example.com",
    ]
    conflict.refresh_from_db()
    assert conflict.alerted_high is True


def test_a_closed_conflict_is_not_reopened_by_a_goal_change(pair, cco):
    deals, backlog, _ = pair
    reconcile_run(association(deals, backlog, r=-0.6))
    conflict = Conflict.objects.get()
    close(conflict, cco)
    factories.GoalFactory(kpi=backlog, baseline=50, target=30)

    services.register_reconcile()  # what the goal's save triggers after commit

    conflict.refresh_from_db()
    assert (conflict.severity, conflict.status) == ("high", "dismissed")


def test_removing_a_contradicted_link_clears_the_flag(pair):
    deals, backlog, link = pair
    factories.GoalFactory(kpi=deals)
    reconcile_run(association(deals, backlog, r=0.65))
    assert Conflict.objects.get().contradicted is True
    link.delete()

    services.register_reconcile()

    conflict = Conflict.objects.get()
    assert (conflict.contradicted, conflict.stale) == (False, True)


def test_a_declared_conflict_is_dated_by_every_run(pair):
    deals, _, _ = pair
    factories.GoalFactory(kpi=deals)
    services.register_reconcile()
    first = Conflict.objects.get().last_detected_at

    reconcile_run()

    assert Conflict.objects.get().last_detected_at > first


@pytest.mark.parametrize("order", ["reversed", "shuffled"])
def test_the_stored_run_does_not_depend_on_kpi_creation_order(order):
    # The engine's own path (silo ids, value-chain rank, blocks of 4): KPIs created in
    # another order get other ids and columns, and the register must not change.
    standard_company().save()
    services.detection_run_now(block_size=4)
    expected = stored_register()
    for model in (ConflictTransition, Conflict, DetectionRun, Measurement):
        model.objects.all().delete()
    from metrics.models import KPI

    KPI.objects.all().delete()
    company = standard_company()
    keys = list(company.kpis)
    keys = (
        keys[::-1]
        if order == "reversed"
        else [keys[i] for i in (5, 0, 11, 3, 14, 8, 1, 15, 6, 2, 13, 9, 4, 12, 7, 10)]
    )
    company.kpis = {key: company.kpis[key] for key in keys}
    company.save()

    services.detection_run_now(block_size=4)

    got = stored_register()
    assert [row[:4] for row in got] == [row[:4] for row in expected]
    for a, b in zip(got, expected, strict=True):
        assert a[4] == pytest.approx(b[4], abs=1e-12)
        assert a[5] == pytest.approx(b[5], rel=1e-9)


def test_the_stored_run_does_not_depend_on_rescaling_a_kpi():
    company = standard_company()
    company.save()
    services.detection_run_now()
    expected = stored_register()
    rows = Measurement.objects.filter(kpi__key="support.ticket_backlog")
    for row in rows:
        row.value = 3.5 * row.value - 12_000
    Measurement.objects.bulk_update(rows, ["value"])

    services.detection_run_now()

    got = stored_register()
    assert [row[:4] for row in got] == [row[:4] for row in expected]
    assert got[0][4] == pytest.approx(expected[0][4], abs=1e-12)


def stored_register():
    return sorted(
        Conflict.objects.values_list(
            "leader_kpi__key",
            "affected_kpi__key",
            "kind",
            "lag",
            "correlation",
            "q_value",
        )
    )
