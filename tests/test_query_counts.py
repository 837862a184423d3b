"""Exact query counts of every list endpoint of the API and of the jobs.

Each is counted on a small world and again after several more rows of what it lists
(or reads) were added: the count must be the same number, so that no list or job
makes one more query per row (N+1). The counts are exact, so that a query added
anywhere on these paths shows up here and is a decision, not an accident.
"""

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone

from conflicts import services as conflict_services
from conflicts.models import Conflict, ConflictComment, ConflictTransition
from goals import rollups
from goals.models import (
    Contribution,
    Guardrail,
    RollupRun,
    SharedGoal,
    SharedGoalSnapshot,
)
from metrics.detection import Association
from metrics.models import Measurement
from notifications import services as notification_services
from notifications.models import Channel, Delivery, Event, Subscription
from planning.models import FundingAllocation, ReadinessAnswer, Responsibility, SignOff
from tests import factories
from tests.notifications import receiver as receiver_module
from tests.tokens import as_token

pytestmark = pytest.mark.django_db

FIRST_DAY = dt.date(2027, 1, 31)


class ListWorld:
    """Rows of every resource the API lists, added ``units`` at a time.

    Each unit is one of each: two silos, a KPI in each with two measurements, a
    declared link, a cycle with both silos, a priority with RACI, funding, a sign-off
    and a readiness answer, a goal on each KPI, a shared goal of both with a
    guardrail and a snapshot, a detection run, a conflict with a transition, a
    roll-up run, a channel with an event delivered to it and to a subscriber, another
    user's subscription, one more day of progress of the first shared goal, and one
    more comment on the first conflict. Related rows differ from unit to unit, so that a relation a list forgot to join
    costs one query per row here.
    """

    def __init__(self):
        self.units = 0
        self.first_shared_goal: SharedGoal | None = None
        self.first_conflict: Conflict | None = None

    def add(self, units: int) -> None:
        for _ in range(units):
            self._add_one(self.units)
            self.units += 1

    def _add_one(self, number: int) -> None:
        leader_silo = factories.SiloFactory()
        affected_silo = factories.SiloFactory()
        manager = factories.silo_manager(leader_silo, affected_silo)
        leader = factories.KPIFactory(silo=leader_silo)
        affected = factories.KPIFactory(silo=affected_silo, aggregation="mean")
        for kpi in (leader, affected):
            for month in (1, 2):
                factories.MeasurementFactory(
                    kpi=kpi, period=dt.date(2027, month, 1), value=10.0 + month
                )
        link = factories.ImpactLinkFactory(
            leader_kpi=leader, affected_kpi=affected, declared_by=manager
        )

        cycle = factories.CycleFactory()
        cycle.silos.add(leader_silo, affected_silo)
        priority = factories.PriorityFactory(cycle=cycle, accountable_silo=leader_silo)
        Responsibility.objects.create(
            priority=priority, silo=affected_silo, role="consulted"
        )
        FundingAllocation.objects.create(
            priority=priority, silo=leader_silo, amount="1000.00"
        )
        SignOff.objects.create(cycle=cycle, silo=leader_silo, user=manager, note="ok")
        ReadinessAnswer.objects.create(
            cycle=cycle, number=1, answer="yes", answered_by=manager
        )

        goals = [
            factories.GoalFactory(cycle=cycle, kpi=kpi, owner=manager)
            for kpi in (leader, affected)
        ]
        shared = factories.SharedGoalFactory(cycle=cycle, owner=manager)
        for goal in goals:
            factories.ContributionFactory(shared_goal=shared, goal=goal)
        Guardrail.objects.create(
            shared_goal=shared,
            kpi=factories.KPIFactory(silo=affected_silo),
            baseline=80.0,
            tolerance=2.0,
        )
        self._snapshot(shared, FIRST_DAY)
        if self.first_shared_goal is None:
            self.first_shared_goal = shared
        else:
            self._snapshot(self.first_shared_goal, FIRST_DAY + dt.timedelta(number))

        run = factories.DetectionRunFactory(
            requested_by=manager, started_at=timezone.now()
        )
        conflict = factories.ConflictFactory(
            leader_kpi=leader,
            affected_kpi=affected,
            link=link,
            last_run=run,
            status="acknowledged",
            status_changed_by=manager,
        )
        ConflictTransition.objects.create(
            conflict=conflict,
            from_status="open",
            to_status="acknowledged",
            note="seen",
            user=manager,
        )
        if self.first_conflict is None:
            self.first_conflict = conflict
        # Each unit's manager comments on the first conflict: its thread grows.
        ConflictComment.objects.create(
            conflict=self.first_conflict, author=manager, body=f"Comment {number}"
        )
        now = timezone.now()
        RollupRun.objects.create(
            reason="schedule",
            status="done",
            day=FIRST_DAY,
            started_at=now,
            finished_at=now,
        )

        channel = Channel.objects.create(
            name=f"Hook {number}",
            kind="webhook",
            url=f"http://127.0.0.1:9/{number}",
            events=["digest"],
        )
        subscriber = factories.silo_manager(
            leader_silo, email=f"subscriber{number}@example.com"
        )
        subscription = Subscription.objects.create(user=subscriber, events=["digest"])
        event = Event.objects.create(
            name="digest",
            key=f"digest:{number}",
            occurred_at=now,
            title=f"Digest {number}",
        )
        Delivery.objects.create(
            event=event, channel=channel, kind="webhook", target=channel.url
        )
        Delivery.objects.create(
            event=event,
            subscription=subscription,
            kind="email",
            target=subscriber.email,
            recipient=subscriber.email,
        )

    @staticmethod
    def _snapshot(shared: SharedGoal, day: dt.date) -> None:
        SharedGoalSnapshot.objects.create(
            shared_goal=shared,
            day=day,
            progress=0.5,
            contributions_with_data=2,
            contributions_total=2,
            computed_at=timezone.now(),
        )


@pytest.fixture
def list_world():
    return ListWorld()


# --- list endpoints ------------------------------------------------------------------

#: GET on every collection of the schema: (path, who reads it, queries, rows in the
#: world of 1 unit, rows in the world of 5 units). A DRF token authenticates each
#: request, as production clients do, so every count starts with 2 queries: the token
#: with its user, and the user's groups (the roles). A paginated list then counts its
#: rows and reads its page (+2); each prefetched relation is one more.
LIST_QUERIES = [
    ("/api/v1/silos/", "reader", 4, 2, 10),
    # The guardrail's KPI is the third of each unit.
    ("/api/v1/kpis/", "reader", 4, 3, 15),
    ("/api/v1/links/", "reader", 4, 1, 5),
    ("/api/v1/measurements/", "reader", 4, 4, 20),
    # Raw SQL (goals.figures.FigureQuery): one count, one page, the goals joined in;
    # then, for the pace, every goal with its KPI and last year's values of sum KPIs.
    ("/api/v1/figures/", "reader", 6, 4, 20),
    # + last year's values of the page's sum KPIs (the pace's seasonal shape).
    ("/api/v1/goals/", "reader", 5, 2, 10),
    # + contributions (with goal, KPI and silo) + guardrails (with KPI).
    ("/api/v1/shared-goals/", "reader", 6, 1, 5),
    # Not paginated: the shared goal (through the list's queryset, with its two
    # prefetches) and its snapshots; the first shared goal gains a day per unit.
    ("/api/v1/shared-goals/{id}/progress/", "reader", 6, 1, 5),
    ("/api/v1/rollup-runs/", "reader", 4, 1, 5),
    # + silos, priorities, their responsibilities and those silos, their funding and
    # those silos, sign-offs (with silo and user): 7 prefetches.
    ("/api/v1/cycles/", "reader", 11, 1, 5),
    ("/api/v1/conflicts/", "reader", 4, 1, 5),
    # The conflict (through the scoped queryset), then the thread's count and page
    # with each author; the first conflict gains a comment per unit.
    ("/api/v1/conflicts/{id}/comments/", "reader", 5, 1, 5),
    ("/api/v1/detection-runs/", "reader", 4, 1, 5),
    # CCO team only; the migration's default email channel is the extra row.
    ("/api/v1/notification-channels/", "cco", 4, 2, 6),
    ("/api/v1/notification-deliveries/", "cco", 4, 2, 10),
    # Only the caller's own subscription is listed: the others' grow, the list not.
    ("/api/v1/notification-subscriptions/", "cco", 4, 1, 1),
]


def rows_in(response) -> int:
    body = response.json()
    return body["count"] if isinstance(body, dict) else len(body)


@pytest.mark.parametrize(
    ("path", "role", "queries", "few", "many"),
    LIST_QUERIES,
    ids=[row[0] for row in LIST_QUERIES],
)
def test_a_list_makes_the_same_exact_queries_for_few_and_many_rows(
    api,
    list_world,
    cco,
    request,
    django_assert_num_queries,
    path,
    role,
    queries,
    few,
    many,
):
    user = request.getfixturevalue(role)
    # What notification-subscriptions/ lists: the caller's own.
    Subscription.objects.create(user=cco, events=["digest"])
    list_world.add(1)
    first = (
        list_world.first_conflict
        if path.startswith("/api/v1/conflicts/")
        else list_world.first_shared_goal
    )
    url = path.replace("{id}", str(first.pk))
    as_token(api, user)
    # Whatever a first request of the process loads once must not be counted.
    assert api.get(url).status_code == 200

    with django_assert_num_queries(queries):
        small = api.get(url, {"limit": 1000})
    list_world.add(4)
    with django_assert_num_queries(queries):
        large = api.get(url, {"limit": 1000})

    assert (small.status_code, rows_in(small)) == (200, few)
    assert (large.status_code, rows_in(large)) == (200, many)


def test_every_list_of_the_schema_has_its_count():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    listed = {
        path
        for path, operations in schema["paths"].items()
        if operations.get("get", {}).get("operationId", "").endswith("_list")
    }

    assert listed == {row[0] for row in LIST_QUERIES}


# --- jobs ----------------------------------------------------------------------------

ROLLUP_DAY = dt.date(2027, 4, 2)
JAN, FEB, MAR = dt.date(2027, 1, 1), dt.date(2027, 2, 1), dt.date(2027, 3, 1)


def rolled_up_shared_goal(cycle, *, breached: bool) -> SharedGoal:
    """A shared goal of two silos' goals with a third silo's CSAT as its guardrail
    (baseline 84, tolerance 2): CSAT ends at 83 (held) or at 80 (breached)."""
    silos = [factories.SiloFactory() for _ in range(3)]
    deals = factories.KPIFactory(silo=silos[0], aggregation="sum")
    margin = factories.KPIFactory(silo=silos[1], aggregation="mean")
    csat = factories.KPIFactory(silo=silos[2], aggregation="last")
    shared = SharedGoal.objects.create(cycle=cycle, name=f"Shared {deals.slug}")
    for kpi, weight in ((deals, 2.0), (margin, 1.0)):
        goal = factories.GoalFactory(
            cycle=cycle,
            kpi=kpi,
            baseline=100,
            target=200,
            period_start=JAN,
            period_end=MAR,
        )
        Contribution.objects.create(shared_goal=shared, goal=goal, weight=weight)
    Guardrail.objects.create(shared_goal=shared, kpi=csat, baseline=84.0, tolerance=2.0)
    rows = [(deals, JAN, 40.0), (deals, FEB, 50.0), (margin, JAN, 150.0)]
    rows += [(csat, JAN, 84.0), (csat, FEB, 80.0 if breached else 83.0)]
    Measurement.objects.bulk_create(
        Measurement(kpi=kpi, period=period, value=value) for kpi, period, value in rows
    )
    return shared


#: One transaction (a savepoint and its release inside the test's), the advisory
#: lock, the demand, the open shared goals, their contributions, their goals with
#: actuals, last year's values of their sum KPIs (the pace's seasonal shape), the
#: guardrails with their current values, the breached flags before, the snapshots'
#: upsert, the demand marked satisfied and the run's row.
ROLLUP_QUERIES = 13
#: One event per newly breached guardrail, by design (each is its own notification):
#: the silos it names, then event_dispatch in its savepoint (2): the event's
#: get_or_create (a select, then the insert in a savepoint: 4), the channels that
#: chose the event, the subscriptions, and the deliveries' insert.
QUERIES_PER_BREACH = 10


@pytest.mark.parametrize(("shared_goals", "breached"), [(1, 0), (5, 0), (5, 1), (5, 3)])
def test_the_rollup_makes_the_same_queries_for_1_and_5_shared_goals_but_breaches(
    django_assert_num_queries, shared_goals, breached
):
    Channel.objects.create(
        name="Guardrails",
        kind="webhook",
        url="http://127.0.0.1:9/hook",
        events=["guardrail.breached"],
    )
    cycle = factories.CycleFactory(name="FY2027", phase="aligning")
    for number in range(shared_goals):
        rolled_up_shared_goal(cycle, breached=number < breached)

    with django_assert_num_queries(ROLLUP_QUERIES + breached * QUERIES_PER_BREACH):
        run = rollups.shared_goals_rollup(day=ROLLUP_DAY)

    assert (run.status, run.shared_goals, run.breached) == (
        "done",
        shared_goals,
        breached,
    )
    assert Event.objects.filter(name="guardrail.breached").count() == breached
    assert Delivery.objects.count() == breached


def conflict_pairs(count: int) -> list[Association]:
    """Associations between a KPI of one silo and one of another, a new pair each:
    no goal is at risk, so none is of high severity and each new one makes one
    conflict.new (and no conflict.high)."""
    associations = []
    for _ in range(count):
        leader = factories.KPIFactory(silo=factories.SiloFactory())
        follower = factories.KPIFactory(silo=factories.SiloFactory())
        associations.append(
            Association(
                leader=leader.pk,
                follower=follower.pk,
                lag=1,
                r=-0.7,
                p=0.0001,
                q=0.001,
                n=40,
                kind="conflict",
            )
        )
    return associations


def running_run():
    return factories.DetectionRunFactory(status="running", started_at=timezone.now())


def run_finished(run, associations: list[Association]):
    return conflict_services.detection_run_finish(
        run,
        [],
        associations,
        summary={"kpis": 2, "measurements": 80, "untested": [], "drivers": []},
        tests=8,
        blocks=1,
    )


#: One transaction (savepoint, release), the run's row locked, the register's
#: reconcile in its savepoint (2): the advisory lock, the register, the declared
#: links, the hurts links, the goals at risk, the register's bulk update; then the
#: high-severity conflicts to alert, the run's update, and the run read again.
FINISH_QUERIES = 14
#: When a run registers new conflicts: their KPIs' silos, their insert, and the new
#: conflicts loaded once for their events.
QUERIES_WITH_NEW_CONFLICTS = 3
#: One conflict.new per new conflict, by design (each is its own notification):
#: event_dispatch as for a breach, without the silos (9).
QUERIES_PER_NEW_CONFLICT = 9


@pytest.mark.parametrize(("found_again", "new"), [(1, 0), (5, 0), (5, 1), (5, 3)])
def test_detection_run_finish_makes_the_same_queries_for_1_and_5_but_new_conflicts(
    django_assert_num_queries, found_again, new
):
    Channel.objects.create(
        name="Conflicts",
        kind="webhook",
        url="http://127.0.0.1:9/hook",
        events=["conflict.new"],
    )
    known = conflict_pairs(found_again)
    run_finished(running_run(), known)
    fresh = conflict_pairs(new)
    run = running_run()
    expected = FINISH_QUERIES
    if new:
        expected += QUERIES_WITH_NEW_CONFLICTS + new * QUERIES_PER_NEW_CONFLICT

    with django_assert_num_queries(expected):
        run = run_finished(run, known + fresh)

    assert (run.status, run.conflicts_found, run.new_conflicts) == (
        "succeeded",
        found_again + new,
        new,
    )
    assert Conflict.objects.count() == found_again + new
    assert Event.objects.filter(name="conflict.new").count() == found_again + new
    assert Event.objects.filter(name="conflict.high").count() == 0


@pytest.fixture
def receiver():
    started = receiver_module.start()
    yield started
    started.server.shutdown()
    started.server.server_close()


#: The attempt's savepoint and release, the delivery locked with its event and
#: channel, and its outcome saved.
DELIVERY_ATTEMPT_QUERIES = 4


@pytest.mark.parametrize("kind", ["webhook", "email"])
@pytest.mark.parametrize("events", [1, 5])
def test_a_delivery_attempt_makes_the_same_queries_whatever_the_log_holds(
    django_assert_num_queries, receiver, kind, events
):
    Channel.objects.create(
        name="Hook", kind="webhook", url=receiver.url, events=["digest"]
    )
    Channel.objects.create(
        name="Mail", kind="email", email_to="ops@example.com", events=["digest"]
    )
    for number in range(events):
        notification_services.event_dispatch(name="digest", title=f"Digest {number}")
    delivery = Delivery.objects.filter(kind=kind).latest("pk")

    with django_assert_num_queries(DELIVERY_ATTEMPT_QUERIES):
        notification_services.delivery_attempt(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 1)
    assert Delivery.objects.count() == 2 * events
    if kind == "webhook":
        assert len(receiver.requests) == 1
    else:
        assert [message.to for message in mail.outbox] == [["ops@example.com"]]


def cycle_page_world(size: int) -> dict:
    """A cycle with ``size`` of each row its page lists: participating silos with a
    manager, a goal and a sign-off each, priorities with a RACI role and funding, open
    conflicts between the goals' KPIs, and shared goals with two days of progress."""
    cycle = factories.CycleFactory(name="FY2027", phase="aligning")
    manager = None
    goals = []
    for number in range(size):
        silo = factories.SiloFactory()
        manager = factories.silo_manager(silo)
        cycle.silos.add(silo)
        kpi = factories.KPIFactory(silo=silo)
        factories.MeasurementFactory(kpi=kpi, period=dt.date(2027, 1, 1), value=5.0)
        goals.append(factories.GoalFactory(cycle=cycle, kpi=kpi, owner=manager))
        priority = factories.PriorityFactory(
            cycle=cycle, rank=number + 1, accountable_silo=silo
        )
        Responsibility.objects.create(priority=priority, silo=silo, role="responsible")
        FundingAllocation.objects.create(priority=priority, silo=silo, amount="10.00")
    for leader, affected in zip(goals, goals[1:] + goals[:1], strict=True):
        if leader != affected:
            factories.ConflictFactory(
                leader_kpi=leader.kpi, affected_kpi=affected.kpi, severity="high"
            )
    for number in range(size):
        shared = factories.SharedGoalFactory(cycle=cycle, name=f"Shared {number}")
        factories.ContributionFactory(shared_goal=shared, goal=goals[number])
        for day in (1, 2):
            SharedGoalSnapshot.objects.create(
                shared_goal=shared,
                day=timezone.localdate() - dt.timedelta(days=day),
                progress=0.1 * day,
                contributions_total=1,
                contributions_with_data=1,
                computed_at=timezone.now(),
            )
    # Signed after the last change of the plan: every sign-off counts.
    for goal in goals:
        SignOff.objects.create(cycle=cycle, silo=goal.kpi.silo, user=goal.owner)
    return {"cycle": cycle, "manager": manager}


#: The cycle page, whatever the number of goals, priorities, sign-offs, conflicts and
#: shared goals: the session, the user and their roles, the cycle with its totals and
#: prefetched plan, the plan's last change (9, from the history tables), the sign-off
#: count (2), goals with actuals and their pace, conflicts, shared goals with their
#: parts and trend, readiness, the knock-ons between goals (goals, conflicts, links: 3);
#: the CCO team's also the commit gate, a manager's their silos.
CYCLE_PAGE_QUERIES = {"cco": 41, "manager": 39}


@pytest.mark.parametrize("role", ["cco", "manager"])
@pytest.mark.parametrize("size", [1, 5])
def test_the_cycle_page_makes_the_same_queries_for_1_and_5_of_everything(
    client, django_assert_num_queries, role, size
):
    world = cycle_page_world(size)
    user = factories.cco_member() if role == "cco" else world["manager"]
    client.force_login(user)

    with django_assert_num_queries(CYCLE_PAGE_QUERIES[role]):
        response = client.get(f"/report/cycles/{world['cycle'].pk}/")

    assert response.status_code == 200
    context = response.context
    if role == "cco":
        assert len(context["goal_rows"]) == size
        assert len(context["funding_rows"]) == size
        assert len(context["shared_rows"]) == size
        assert str(context["sign_off_count"]) == f"{size} of {size}"
    else:
        assert len(context["goal_rows"]) == 1
