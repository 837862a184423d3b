"""The "start united" cycle: phases, the commit gate, sign-offs, the lock after commit,
the budget rule and the readiness check."""

import threading
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction

from goals import services as goals_services
from planning import selectors, services
from planning.models import FundingAllocation, ReadinessAnswer, SignOff
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def cycle(silo_a, silo_b):
    cycle = factories.CycleFactory(name="FY2027", phase="aligning", budget=1_000_000)
    cycle.silos.set([silo_a, silo_b])
    return cycle


def sign_both(cycle, manager_a, manager_b, silo_a, silo_b):
    services.signoff_create(
        cycle=cycle, user=manager_a, silo=silo_a, note="Sales agrees."
    )
    services.signoff_create(cycle=cycle, user=manager_b, silo=silo_b)


# --- phases ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "target", "allowed"),
    [
        ("draft", "proposing", True),
        ("proposing", "aligning", True),
        ("committed", "closed", True),
        ("draft", "aligning", False),  # no skipping
        ("aligning", "proposing", False),  # no going back, except reopening
        ("closed", "committed", False),
        ("proposing", "proposing", False),
    ],
)
def test_phases_move_one_step_forward(cco, start, target, allowed):
    cycle = factories.CycleFactory(phase=start)

    if allowed:
        services.cycle_phase_move(cycle=cycle, user=cco, phase=target)
        cycle.refresh_from_db()
        assert cycle.phase == target
    else:
        with pytest.raises(ValidationError) as refused:
            services.cycle_phase_move(cycle=cycle, user=cco, phase=target)
        assert f"is {start}: it can move to" in refused.value.message_dict["phase"][0]
        cycle.refresh_from_db()
        assert cycle.phase == start


def test_reopening_needs_a_reason_and_history_keeps_it(cco):
    cycle = factories.CycleFactory(name="FY2027", phase="committed")

    with pytest.raises(ValidationError) as refused:
        services.cycle_phase_move(cycle=cycle, user=cco, phase="aligning", reason="  ")
    assert refused.value.message_dict["reason"] == [
        "Reopening a committed cycle needs a reason: it unlocks every goal of the cycle."
    ]

    services.cycle_phase_move(
        cycle=cycle,
        user=cco,
        phase="aligning",
        reason="Finance's budget was cut by 10%.",
    )

    latest = cycle.history.first()
    assert (latest.phase, latest.history_user, latest.history_change_reason) == (
        "aligning",
        cco,
        "Finance's budget was cut by 10%.",
    )


# --- the commit gate ------------------------------------------------------------------


def test_commit_is_refused_with_every_blocker(cycle, cco, manager_a, silo_a, silo_b):
    deals = factories.KPIFactory(silo=silo_a, slug="deals")
    backlog = factories.KPIFactory(silo=silo_b, slug="backlog")
    factories.GoalFactory(cycle=cycle, kpi=deals)
    conflict = factories.ConflictFactory(leader_kpi=deals, affected_kpi=backlog)
    services.signoff_create(cycle=cycle, user=manager_a, silo=silo_a)

    with pytest.raises(services.CommitBlocked) as refused:
        services.cycle_phase_move(cycle=cycle, user=cco, phase="committed")

    assert refused.value.message_dict["phase"] == [
        "FY2027 cannot commit yet: Support has not signed off. High-severity conflict "
        f"{conflict.pk} is open: sales.deals hurts support.backlog. Resolve it, dismiss "
        "it, or accept it as a trade-off with a note."
    ]
    assert [(b.kind, b.silo, b.conflict) for b in refused.value.blockers] == [
        ("sign_off", "support", None),
        ("conflict", None, conflict.pk),
    ]
    cycle.refresh_from_db()
    assert cycle.phase == "aligning"


@pytest.mark.parametrize(
    ("severity", "status", "stale", "blocks"),
    [
        ("high", "open", False, True),
        ("high", "acknowledged", False, True),
        ("high", "accepted_tradeoff", False, False),  # accepted with a note: fine
        ("high", "resolved", False, False),
        ("high", "dismissed", False, False),
        ("high", "open", True, False),  # no longer found
        ("medium", "open", False, False),
    ],
)
def test_which_conflicts_block_a_commit(
    cycle, cco, manager_a, manager_b, silo_a, silo_b, severity, status, stale, blocks
):
    csat = factories.KPIFactory(silo=silo_b, slug="csat")
    factories.GoalFactory(cycle=cycle, kpi=csat)  # the affected side has the goal
    sign_both(cycle, manager_a, manager_b, silo_a, silo_b)
    factories.ConflictFactory(
        leader_kpi=factories.KPIFactory(silo=silo_a),
        affected_kpi=csat,
        severity=severity,
        status=status,
        stale=stale,
    )

    assert bool(selectors.commit_blockers(cycle)) is blocks


def test_a_conflict_of_another_cycles_goals_does_not_block(
    cycle, manager_a, manager_b, silo_a, silo_b
):
    sign_both(cycle, manager_a, manager_b, silo_a, silo_b)
    factories.ConflictFactory(
        leader_kpi=factories.KPIFactory(silo=silo_a),
        affected_kpi=factories.KPIFactory(silo=silo_b),
    )

    assert selectors.commit_blockers(cycle) == []


def test_commit_with_every_sign_off_and_no_open_high_conflict(
    cycle, cco, manager_a, manager_b, silo_a, silo_b
):
    sign_both(cycle, manager_a, manager_b, silo_a, silo_b)

    services.cycle_phase_move(cycle=cycle, user=cco, phase="committed")

    cycle.refresh_from_db()
    assert cycle.phase == "committed"


def test_a_plan_change_after_a_sign_off_asks_that_silo_to_sign_again(
    cycle, cco, manager_a, manager_b, silo_a, silo_b
):
    goal = factories.GoalFactory(cycle=cycle, kpi=factories.KPIFactory(silo=silo_a))
    sign_both(cycle, manager_a, manager_b, silo_a, silo_b)
    assert selectors.commit_blockers(cycle) == []

    goals_services.goal_save(user=manager_a, goal=goal, target=175.0)

    changed = selectors.plan_changed_at(cycle)
    assert [b.message for b in selectors.commit_blockers(cycle)] == [
        f"Sales signed off before the plan last changed ({changed:%Y-%m-%d %H:%M} UTC) "
        "and must sign off again.",
        f"Support signed off before the plan last changed ({changed:%Y-%m-%d %H:%M} UTC) "
        "and must sign off again.",
    ]
    # Signing again replaces the outdated sign-off; then the cycle commits.
    sign_both(cycle, manager_a, manager_b, silo_a, silo_b)
    assert SignOff.objects.count() == 2
    services.cycle_phase_move(cycle=cycle, user=cco, phase="committed")
    cycle.refresh_from_db()
    assert cycle.phase == "committed"


def test_a_current_sign_off_cannot_be_given_twice(cycle, manager_a, silo_a):
    services.signoff_create(cycle=cycle, user=manager_a, silo=silo_a)

    with pytest.raises(ValidationError, match="Sales has already signed off FY2027"):
        services.signoff_create(cycle=cycle, user=manager_a, silo=silo_a)


def test_a_cycle_without_participants_cannot_commit(cco):
    cycle = factories.CycleFactory(phase="aligning")

    assert [b.kind for b in selectors.commit_blockers(cycle)] == ["participants"]


def test_commit_over_the_api_answers_400_with_the_blockers(
    api, cco, cycle, silo_a, silo_b, manager_b
):
    api.force_authenticate(cco)

    response = api.post(
        f"/api/v1/cycles/{cycle.pk}/phase/", {"phase": "committed"}, format="json"
    )

    assert response.status_code == 400
    body = response.json()
    assert body["phase"] == [
        "FY2027 cannot commit yet: Sales has not signed off. Support has not signed off."
    ]
    # Each blocker says who can act, and links to where.
    assert body["blockers"] == [
        {
            "kind": "sign_off",
            "message": "Sales has not signed off.",
            "silo": "sales",
            "conflict": None,
            "action": "Sales has no manager: assign one in the admin.",
            "url": f"/admin/metrics/silo/{silo_a.pk}/change/",
        },
        {
            "kind": "sign_off",
            "message": "Support has not signed off.",
            "silo": "support",
            "conflict": None,
            "action": "Support's managers (manager_b) can sign off here.",
            "url": f"/report/cycles/{cycle.pk}/#sign-offs",
        },
    ]
    check = api.get(f"/api/v1/cycles/{cycle.pk}/commit-check/").json()
    assert check == {
        "can_commit": False,
        "signed_off": 0,
        "participants": 2,
        "blockers": body["blockers"],
    }


# --- sign-offs ------------------------------------------------------------------------


def test_a_manager_signs_for_their_own_silo_only(cycle, manager_a, silo_a, silo_b, cco):
    signed = services.signoff_create(
        cycle=cycle, user=manager_a, silo=silo_a, note="Yes."
    )
    assert (signed.silo, signed.user, signed.note) == (silo_a, manager_a, "Yes.")

    with pytest.raises(PermissionDenied, match="You do not manage Support"):
        services.signoff_create(cycle=cycle, user=manager_a, silo=silo_b)
    with pytest.raises(PermissionDenied):
        services.signoff_create(
            cycle=cycle, user=cco, silo=silo_b
        )  # the CCO role is not enough
    assert SignOff.objects.count() == 1


@pytest.mark.parametrize(
    ("phase", "participant", "already", "message"),
    [
        (
            "proposing",
            True,
            False,
            "FY2027 is proposing: silos sign off while it is aligning.",
        ),
        ("aligning", False, False, "Sales does not take part in FY2027."),
        ("aligning", True, True, "Sales has already signed off FY2027."),
    ],
)
def test_sign_off_rules(silo_a, manager_a, phase, participant, already, message):
    cycle = factories.CycleFactory(name="FY2027", phase="aligning")
    if participant:
        cycle.silos.add(silo_a)
    if already:
        services.signoff_create(cycle=cycle, user=manager_a, silo=silo_a)
    cycle.phase = phase
    cycle.save()

    with pytest.raises(ValidationError) as refused:
        services.signoff_create(cycle=cycle, user=manager_a, silo=silo_a)

    assert message in str(refused.value.messages)


def test_withdrawing_a_sign_off_while_aligning(
    api, cycle, manager_a, manager_b, silo_a
):
    services.signoff_create(cycle=cycle, user=manager_a, silo=silo_a)
    api.force_authenticate(manager_b)
    assert api.delete(f"/api/v1/cycles/{cycle.pk}/sign-offs/sales/").status_code == 403

    api.force_authenticate(manager_a)
    assert api.delete(f"/api/v1/cycles/{cycle.pk}/sign-offs/sales/").status_code == 204
    assert api.delete(f"/api/v1/cycles/{cycle.pk}/sign-offs/sales/").json() == {
        "silo": ["Sales has not signed off FY2027."]
    }
    assert SignOff.objects.count() == 0


# --- the lock after commit ------------------------------------------------------------


@pytest.fixture
def committed(cycle, cco, manager_a, manager_b, silo_a, silo_b):
    deals = factories.KPIFactory(silo=silo_a, slug="deals")
    goal = factories.GoalFactory(cycle=cycle, kpi=deals)
    priority = factories.PriorityFactory(cycle=cycle, accountable_silo=silo_a)
    sign_both(cycle, manager_a, manager_b, silo_a, silo_b)
    services.cycle_phase_move(cycle=cycle, user=cco, phase="committed")
    cycle.refresh_from_db()
    return {"cycle": cycle, "goal": goal, "priority": priority, "deals": deals}


LOCKED = (
    "The cycle FY2027 is committed: its goals are locked. The CCO team can reopen it "
    "(committed -> aligning) with a reason."
)


def test_after_commit_goals_are_locked_for_everyone(api, committed, manager_a, cco):
    goal = committed["goal"]
    for user in (manager_a, cco):
        api.force_authenticate(user)
        response = api.patch(
            f"/api/v1/goals/{goal.pk}/", {"target": 160}, format="json"
        )
        assert response.status_code == 400
        assert "is committed: its goals are locked" in str(response.json())
        assert api.delete(f"/api/v1/goals/{goal.pk}/").status_code == 400
    api.force_authenticate(cco)
    response = api.post(
        "/api/v1/goals/",
        {
            "cycle": "FY2027",
            "kpi": factories.KPIFactory(silo=committed["deals"].silo).key,
            "name": "Late",
            "baseline": 1,
            "target": 2,
            "period_start": "2027-01-01",
            "period_end": "2027-12-01",
        },
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {"cycle": [LOCKED]}
    goal.refresh_from_db()
    assert goal.target == 150.0


def test_after_commit_the_plan_and_the_cycle_are_locked(committed, cco):
    priority = committed["priority"]
    priority.title = "Changed"
    with pytest.raises(ValidationError, match="its priorities are locked"):
        priority.full_clean()
    allocation = FundingAllocation(
        priority=priority, silo=priority.accountable_silo, amount=1
    )
    with pytest.raises(ValidationError, match="its funding allocations are locked"):
        allocation.full_clean()
    with pytest.raises(ValidationError, match="its dates, budget and silos are locked"):
        services.cycle_save(user=cco, cycle=committed["cycle"], budget=Decimal(5))


def test_reopening_unlocks_and_history_shows_who_and_why(
    api, committed, cco, manager_a
):
    services.cycle_phase_move(
        cycle=committed["cycle"], user=cco, phase="aligning", reason="Targets too soft."
    )
    api.force_authenticate(manager_a)

    response = api.patch(
        f"/api/v1/goals/{committed['goal'].pk}/", {"target": 170}, format="json"
    )

    assert response.status_code == 200
    phases = [
        (h.phase, h.history_change_reason) for h in committed["cycle"].history.all()[:2]
    ]
    assert phases == [
        ("aligning", "Targets too soft."),
        ("committed", "Phase aligning -> committed"),
    ]


@pytest.mark.parametrize(
    ("phase", "manager_may", "cco_may"),
    [
        ("draft", False, True),
        ("proposing", True, True),
        ("aligning", True, True),
    ],
)
def test_managers_enter_goals_while_proposing_or_aligning(
    api, silo_a, manager_a, cco, phase, manager_may, cco_may
):
    factories.CycleFactory(name="FY2027", phase=phase)
    for index, (user, may) in enumerate(((manager_a, manager_may), (cco, cco_may))):
        api.force_authenticate(user)
        response = api.post(
            "/api/v1/goals/",
            {
                "cycle": "FY2027",
                "kpi": factories.KPIFactory(silo=silo_a, slug=f"k{index}").key,
                "name": "More",
                "baseline": 1,
                "target": 2,
                "period_start": "2027-01-01",
                "period_end": "2027-12-01",
            },
            format="json",
        )
        assert response.status_code == (201 if may else 400), response.json()
        if not may:
            assert response.json() == {
                "cycle": [
                    f"FY2027 is {phase}: silo managers enter their goals while the "
                    "cycle is proposing or aligning."
                ]
            }


# --- funding and the budget -----------------------------------------------------------


def test_an_allocation_over_the_budget_is_refused_with_the_numbers(
    cycle, silo_a, silo_b
):
    first = factories.PriorityFactory(cycle=cycle, accountable_silo=silo_a)
    FundingAllocation.objects.create(
        priority=first, silo=silo_a, amount=Decimal("700000")
    )
    second = factories.PriorityFactory(cycle=cycle, accountable_silo=silo_b)

    allocation = FundingAllocation(
        priority=second, silo=silo_b, amount=Decimal("400000")
    )
    with pytest.raises(ValidationError) as refused:
        allocation.full_clean()

    assert refused.value.message_dict["amount"] == [
        "This allocation of EUR 400,000.00 would bring FY2027's funding to EUR "
        "1,100,000.00, over its budget of EUR 1,000,000.00 by EUR 100,000.00 "
        "(EUR 300,000.00 is left)."
    ]
    FundingAllocation(
        priority=second, silo=silo_b, amount=Decimal("300000")
    ).full_clean()


def test_the_budget_cannot_fall_below_what_is_allocated(cycle, silo_a, cco):
    from planning.admin import CycleForm

    priority = factories.PriorityFactory(cycle=cycle, accountable_silo=silo_a)
    FundingAllocation.objects.create(
        priority=priority, silo=silo_a, amount=Decimal("600000")
    )
    expected = (
        "EUR 600,000.00 is already allocated; the budget cannot fall to EUR "
        "500,000.00. Reduce the allocations first."
    )

    # The rule is the workflow's (the cycle's model knows nothing of funding): the
    # service and the admin form both refuse, and the stored budget stays.
    with pytest.raises(ValidationError) as refused:
        services.cycle_save(user=cco, cycle=cycle, budget=Decimal("500000"))
    assert refused.value.message_dict["budget"] == [expected]
    form = CycleForm(
        instance=cycle,
        data={
            "name": cycle.name,
            "start_date": cycle.start_date,
            "end_date": cycle.end_date,
            "budget": "500000",
            "currency": cycle.currency,
        },
    )
    assert form.errors == {"budget": [expected]}
    cycle.refresh_from_db()
    assert cycle.budget == Decimal("1000000.00")
    # Down to exactly what is allocated is fine.
    services.cycle_save(user=cco, cycle=cycle, budget=Decimal("600000"))
    cycle.refresh_from_db()
    assert cycle.budget == Decimal("600000.00")


def test_the_database_refuses_funding_over_the_budget(cycle, silo_a):
    priority = factories.PriorityFactory(cycle=cycle, accountable_silo=silo_a)

    # The trigger runs at commit; SET CONSTRAINTS ... IMMEDIATE checks it now.
    def allocate_over_budget():
        with transaction.atomic():
            FundingAllocation.objects.create(
                priority=priority, silo=silo_a, amount=Decimal("1000000.01")
            )
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

    with pytest.raises(IntegrityError, match="exceeds its budget"):
        allocate_over_budget()

    assert FundingAllocation.objects.count() == 0


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_allocations_at_once_cannot_overrun_the_budget(silo_a, silo_b):
    cycle = factories.CycleFactory(name="FY2027", budget=Decimal("1000000"))
    priorities = [
        factories.PriorityFactory(cycle=cycle, accountable_silo=silo)
        for silo in (silo_a, silo_b)
    ]
    barrier = threading.Barrier(2)
    outcomes = []

    def allocate(priority):
        try:
            with transaction.atomic():
                # Both pass the application's check: each sees nothing allocated yet.
                FundingAllocation(
                    priority=priority,
                    silo=priority.accountable_silo,
                    amount=Decimal("600000"),
                ).full_clean()
                barrier.wait(timeout=10)
                FundingAllocation.objects.create(
                    priority=priority,
                    silo=priority.accountable_silo,
                    amount=Decimal("600000"),
                )
            outcomes.append("committed")
        except IntegrityError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=allocate, args=(p,)) for p in priorities]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["committed", "refused"]
    assert FundingAllocation.objects.count() == 1


# --- readiness ------------------------------------------------------------------------


def test_readiness_answers_and_score_over_the_api(api, cco, reader, cycle):
    api.force_authenticate(cco)

    response = api.patch(
        f"/api/v1/cycles/{cycle.pk}/readiness/",
        {
            "answers": [
                {"number": 1, "answer": "yes", "note": "Our CCO."},
                {"number": 4, "answer": "partly"},
                {"number": 11, "answer": "no"},
            ]
        },
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["score"], body["out_of"]) == (1.5, 11)
    assert [row["answer"] for row in body["answers"]] == [
        "yes",
        None,
        None,
        "partly",
        None,
        None,
        None,
        None,
        None,
        None,
        "no",
    ]
    assert body["answers"][0] == {
        "number": 1,
        "statement": "There is someone in our company who clarifies what we are to "
        "accomplish with customers.",
        "answer": "yes",
        "note": "Our CCO.",
        "answered_by": "cco",
    }
    api.force_authenticate(reader)
    assert api.get(f"/api/v1/cycles/{cycle.pk}/").json()["readiness_score"] == 1.5
    assert (
        api.patch(
            f"/api/v1/cycles/{cycle.pk}/readiness/", {"answers": []}, format="json"
        ).status_code
        == 403
    )


@pytest.mark.parametrize(
    ("answers", "error"),
    [
        ([{"number": 12, "answer": "yes"}], "answers"),
        ([{"number": 1, "answer": "maybe"}], "answers"),
        ([{"number": 1, "answer": "yes"}, {"number": 1, "answer": "no"}], "answers"),
        ([], "answers"),
    ],
)
def test_bad_readiness_answers_are_400_and_nothing_is_saved(
    api, cco, cycle, answers, error
):
    api.force_authenticate(cco)

    response = api.patch(
        f"/api/v1/cycles/{cycle.pk}/readiness/", {"answers": answers}, format="json"
    )

    assert response.status_code == 400
    assert list(response.json()) == [error]
    assert ReadinessAnswer.objects.count() == 0


def test_after_commit_shared_goals_are_locked_over_the_api(
    api, committed, cco, silo_a, silo_b
):
    from goals.models import Contribution, SharedGoal

    cycle = committed["cycle"]
    other = factories.GoalFactory(cycle=cycle, kpi=factories.KPIFactory(silo=silo_b))
    services.cycle_phase_move(
        cycle=cycle, user=cco, phase="aligning", reason="Add a shared goal."
    )
    shared = SharedGoal.objects.create(cycle=cycle, name="Growth")
    for goal in (committed["goal"], other):
        Contribution.objects.create(shared_goal=shared, goal=goal)
    Cycle = type(cycle)
    Cycle.objects.filter(pk=cycle.pk).update(phase="committed")
    api.force_authenticate(cco)

    patch = api.patch(
        f"/api/v1/shared-goals/{shared.pk}/", {"name": "Other"}, format="json"
    )
    delete = api.delete(f"/api/v1/shared-goals/{shared.pk}/")

    assert (patch.status_code, delete.status_code) == (400, 400)
    assert "its shared goals are locked" in str(patch.json())
    assert SharedGoal.objects.get().name == "Growth"


def test_the_admin_shows_a_committed_cycles_goal_read_only(client, committed, cco):
    client.force_login(cco)
    goal = committed["goal"]

    page = client.get(f"/admin/goals/goal/{goal.pk}/change/")
    post = client.post(f"/admin/goals/goal/{goal.pk}/change/", {"target": "999"})
    delete = client.get(f"/admin/goals/goal/{goal.pk}/delete/")

    assert page.status_code == 200
    assert 'name="target"' not in page.content.decode()  # no input: read-only
    assert post.status_code == 403
    assert delete.status_code == 403
    goal.refresh_from_db()
    assert goal.target == 150.0


def test_a_priority_cannot_leave_a_committed_cycle(committed):
    priority = committed["priority"]
    priority.cycle = factories.CycleFactory(name="FY2028")

    with pytest.raises(ValidationError, match="FY2027, which is committed"):
        priority.full_clean()


def test_the_admin_refuses_a_new_priority_funded_over_the_budget(
    client, cco, cycle, silo_a
):
    client.force_login(cco)

    response = client.post(
        "/admin/planning/priority/add/",
        {
            "cycle": cycle.pk,
            "title": "Everything at once",
            "rank": "1",
            "accountable_silo": silo_a.pk,
            "responsibilities-TOTAL_FORMS": "0",
            "responsibilities-INITIAL_FORMS": "0",
            "allocations-TOTAL_FORMS": "1",
            "allocations-INITIAL_FORMS": "0",
            "allocations-0-silo": silo_a.pk,
            "allocations-0-amount": "1500000",
        },
    )

    assert response.status_code == 200  # the form again, with the error
    assert (
        "This allocation of EUR 1,500,000.00 would bring FY2027&#x27;s funding to EUR "
        "1,500,000.00, over its budget of EUR 1,000,000.00 by EUR 500,000.00"
    ) in response.content.decode()
    assert FundingAllocation.objects.count() == 0
