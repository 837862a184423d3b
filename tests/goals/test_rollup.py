"""The shared-goal roll-up in one process: snapshots, guardrails, idempotency, the API,
the figures agreeing with it, query counts, and what uploads trigger."""

import datetime as dt
import threading

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from goals import rollups, tasks
from goals.models import Contribution, RollupRun, SharedGoal, SharedGoalSnapshot
from metrics.models import Measurement
from tests import factories
from tests.goals.rollup_world import MAR, build

pytestmark = pytest.mark.django_db

DAY = dt.date(2027, 4, 2)


@pytest.fixture(autouse=True)
def no_pending_rollup():
    cache.delete(rollups.PENDING_KEY)
    yield
    cache.delete(rollups.PENDING_KEY)


@pytest.fixture
def world(silo_a, silo_b):
    return build(silo_a, silo_b)


def test_rollup_stores_progress_with_its_breakdown(world):
    run = rollups.shared_goals_rollup(day=DAY)

    snapshot = SharedGoalSnapshot.objects.get()
    assert (snapshot.shared_goal, snapshot.day) == (world["shared"], DAY)
    assert snapshot.progress == pytest.approx(1.6 / 3, abs=1e-12)
    assert snapshot.uncapped_progress == snapshot.progress
    assert (snapshot.contributions_with_data, snapshot.contributions_total) == (2, 2)
    assert snapshot.per_silo == {"sales": 0.5, "finance": pytest.approx(0.6)}
    assert snapshot.guardrail_breached is False
    assert snapshot.contributions == [
        {
            "goal": world["goal_deals"].pk,
            "kpi": "sales.deals",
            "silo": "sales",
            "weight": 2.0,
            "actual": 150.0,
            "attainment": 0.5,
        },
        {
            "goal": world["goal_margin"].pk,
            "kpi": "finance.margin",
            "silo": "finance",
            "weight": 1.0,
            "actual": 36.0,
            "attainment": pytest.approx(0.6),
        },
    ]
    assert snapshot.guardrails == [
        {
            "id": world["guardrail"].pk,
            "kpi": "support.csat",
            "baseline": 84.0,
            "tolerance": 2.0,
            "current": 83.0,
            "worsened_by": 1.0,
            "breached": False,
        }
    ]
    assert (run.status, run.shared_goals, run.breached, run.day) == ("done", 1, 0, DAY)


def test_a_breached_guardrail_caps_the_snapshot(world):
    Measurement.objects.create(kpi=world["csat"], period=MAR, value=81.0)

    rollups.shared_goals_rollup(day=DAY)

    snapshot = SharedGoalSnapshot.objects.get()
    assert snapshot.guardrail_breached is True
    assert snapshot.progress == 0.5
    assert snapshot.uncapped_progress == pytest.approx(1.6 / 3)
    assert snapshot.guardrails[0]["worsened_by"] == 3.0


def test_the_same_day_twice_gives_one_snapshot_with_the_same_numbers(world):
    rollups.shared_goals_rollup(day=DAY)
    first = SharedGoalSnapshot.objects.values().get()

    rollups.shared_goals_rollup(day=DAY)

    second = SharedGoalSnapshot.objects.values().get()
    assert {k: v for k, v in second.items() if k != "computed_at"} == {
        k: v for k, v in first.items() if k != "computed_at"
    }
    assert second["computed_at"] > first["computed_at"]
    assert RollupRun.objects.filter(status="done").count() == 2


def test_new_data_the_next_day_adds_a_snapshot(world, api, reader):
    rollups.shared_goals_rollup(day=DAY)
    Measurement.objects.filter(kpi=world["deals"], period=MAR).update(value=110.0)
    rollups.shared_goals_rollup(day=DAY + dt.timedelta(days=1))
    api.force_authenticate(reader)

    days = api.get(f"/api/v1/shared-goals/{world['shared'].pk}/progress/").json()

    # deals 40 + 50 + 110 = 200: attainment 1; (2 x 1 + 0.6) / 3
    assert [(d["day"], round(d["progress"], 6)) for d in days] == [
        ("2027-04-02", round(1.6 / 3, 6)),
        ("2027-04-03", round(2.6 / 3, 6)),
    ]
    shared = api.get(f"/api/v1/shared-goals/{world['shared'].pk}/").json()
    assert shared["progress"] == pytest.approx(2.6 / 3)
    assert shared["progress_day"] == "2027-04-03"
    assert shared["contributions_with_data"] == 2
    assert shared["guardrail_breached"] is False
    assert shared["guardrails"] == [
        {
            "id": world["guardrail"].pk,
            "kpi": "support.csat",
            "baseline": 84.0,
            "tolerance": 2.0,
            "note": "",
        }
    ]


def test_figures_show_the_same_attainment_as_the_snapshot(world, api, reader):
    rollups.shared_goals_rollup(day=DAY)
    snapshot = SharedGoalSnapshot.objects.get()
    api.force_authenticate(reader)

    rows = api.get("/api/v1/figures/?kpi=sales.deals&period_after=2027-03-01").json()[
        "results"
    ]

    # The due period's row holds the goal's final (to-date) attainment.
    assert [row["attainment"] for row in rows] == [
        snapshot.contributions[0]["attainment"]
    ]


def test_shared_goals_of_closed_cycles_are_not_rolled_up(world):
    world["cycle"].phase = "closed"
    world["cycle"].save()

    run = rollups.shared_goals_rollup(day=DAY)

    assert run.shared_goals == 0
    assert SharedGoalSnapshot.objects.count() == 0


def test_a_shared_goal_without_data_has_unknown_progress(world):
    Measurement.objects.all().delete()

    rollups.shared_goals_rollup(day=DAY)

    snapshot = SharedGoalSnapshot.objects.get()
    assert (snapshot.progress, snapshot.contributions_with_data) == (None, 0)
    assert snapshot.guardrails[0]["current"] is None


def test_query_count_is_the_same_for_1_and_8_shared_goals(world, silo_a, silo_b):
    def count():
        with CaptureQueriesContext(connection) as queries:
            rollups.shared_goals_rollup(day=DAY)
        return len(queries)

    one = count()
    for index in range(7):
        goals = [
            factories.GoalFactory(
                cycle=world["cycle"], kpi=factories.KPIFactory(silo=silo)
            )
            for silo in (silo_a, silo_b)
        ]
        shared = SharedGoal.objects.create(cycle=world["cycle"], name=f"Shared {index}")
        for goal in goals:
            Contribution.objects.create(shared_goal=shared, goal=goal)
    assert count() == one
    assert SharedGoalSnapshot.objects.filter(day=DAY).count() == 8


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_rollups_at_once_do_the_work_once(silo_a, silo_b, monkeypatch):
    build(silo_a, silo_b)
    real_compute = rollups.compute
    computing, release = threading.Event(), threading.Event()

    def held_compute(shared_goals, **when):
        # The first run holds the lock here until the second one has come and gone.
        computing.set()
        assert release.wait(timeout=30)
        return real_compute(shared_goals, **when)

    monkeypatch.setattr(rollups, "compute", held_compute)
    statuses = []

    def run():
        try:
            statuses.append(rollups.shared_goals_rollup(day=DAY).status)
        finally:
            connection.close()

    first = threading.Thread(target=run)
    first.start()
    assert computing.wait(timeout=30)
    second = threading.Thread(target=run)
    second.start()
    second.join(timeout=30)
    release.set()
    first.join(timeout=30)

    assert sorted(statuses) == ["done", "skipped"]
    assert SharedGoalSnapshot.objects.count() == 1
    assert RollupRun.objects.filter(status="skipped").count() == 1


def test_an_upload_to_a_contributing_kpi_rolls_up_after_commit(
    world, api, manager_a, django_capture_on_commit_callbacks
):
    api.force_authenticate(manager_a)

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/v1/measurements/bulk/",
            {
                "measurements": [
                    {"kpi": "sales.deals", "period": "2027-03-01", "value": 110}
                ]
            },
            format="json",
        )

    assert response.status_code == 200
    # Eager in the test settings: the coalesced task ran at once.
    run = RollupRun.objects.get()
    assert (run.reason, run.status) == ("measurements", "done")
    assert SharedGoalSnapshot.objects.get().progress == pytest.approx(2.6 / 3)


def test_an_upload_to_another_kpi_asks_for_no_rollup(
    world, api, manager_a, silo_a, django_capture_on_commit_callbacks
):
    factories.KPIFactory(silo=silo_a, slug="calls")
    api.force_authenticate(manager_a)

    with django_capture_on_commit_callbacks(execute=True):
        api.post(
            "/api/v1/measurements/bulk/",
            {
                "measurements": [
                    {"kpi": "sales.calls", "period": "2027-03-01", "value": 1}
                ]
            },
            format="json",
        )

    assert RollupRun.objects.count() == 0


def test_a_second_upload_while_one_is_pending_enqueues_nothing(world):
    assert cache.add(rollups.PENDING_KEY, 1, timeout=60)  # a roll-up is on its way

    assert rollups.rollup_schedule([world["deals"].pk]) is False
    assert RollupRun.objects.count() == 0


def test_catch_up_runs_only_when_contributing_data_changed_since(world):
    assert tasks.rollup_catch_up_task() == "done"  # never rolled up
    assert tasks.rollup_catch_up_task() == "up to date"
    # An upload whose roll-up could not be enqueued (Redis down) still left its
    # demand in PostgreSQL: the catch-up runs.
    Measurement.objects.filter(kpi=world["margin"], period=MAR).update(value=39.0)
    rollups.rollup_demand()

    assert tasks.rollup_catch_up_task() == "done"
    assert SharedGoalSnapshot.objects.get().contributions[1]["actual"] == pytest.approx(
        (35 + 36 + 39) / 3
    )
    assert tasks.rollup_catch_up_task() == "up to date"
    assert list(RollupRun.objects.values_list("reason", flat=True)) == [
        "catch_up",
        "catch_up",
    ]


def test_the_command_prints_progress(world, capsys):
    call_command("rollup_goals", "--day", "2027-04-02")

    out = capsys.readouterr().out
    assert "Rolling up 1 shared goals of open cycles for 2027-04-02." in out
    assert "Snapshotted 1 shared goals in" in out
    assert SharedGoalSnapshot.objects.get().day == DAY


def test_the_command_refuses_a_bad_day(world):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="'04/02/2027' is not a YYYY-MM-DD date"):
        call_command("rollup_goals", "--day", "04/02/2027")


def test_a_change_committed_during_a_rollup_is_not_marked_covered(world):
    # The roll-up reads the demand before the data: a change that commits while it
    # runs leaves the demand ahead, so the catch-up runs again.
    real_compute = rollups.compute

    def compute_while_an_upload_commits(shared_goals, **when):
        rollups.rollup_demand()
        return real_compute(shared_goals, **when)

    rollups.shared_goals_rollup(day=DAY)
    rollups.compute = compute_while_an_upload_commits
    try:
        rollups.shared_goals_rollup(day=DAY)
    finally:
        rollups.compute = real_compute

    assert rollups.rollup_is_behind() is True


def test_an_admin_delete_of_a_contributing_measurement_asks_for_a_rollup(
    world, client, cco, django_capture_on_commit_callbacks
):
    rollups.shared_goals_rollup(day=DAY)
    assert rollups.rollup_is_behind() is False
    measurement = Measurement.objects.get(kpi=world["deals"], period=MAR)
    client.force_login(cco)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/admin/metrics/measurement/{measurement.pk}/delete/", {"post": "yes"}
        )

    assert response.status_code == 302
    # Eager here: the roll-up it asked for ran at once (today), on 40 + 50 = 90 deals.
    latest = SharedGoalSnapshot.objects.order_by("computed_at").last()
    assert latest.contributions[0]["actual"] == 90.0
    assert RollupRun.objects.filter(reason="measurements").count() == 1
