"""The cycle workspace: the CCO team edits priorities, RACI and funding on the cycle
page, a silo manager enters their silos' goals there, an edit that voids sign-offs
says which first, commit and close ask for confirmation, every blocker says who can
act, and the sign-off count is the same everywhere."""

import datetime as dt
from decimal import Decimal
from html import escape

import pytest

from conflicts.models import Severity
from goals.models import Goal
from notifications.models import Event
from planning import selectors, services
from planning.models import FundingAllocation, Priority, Responsibility, SignOff
from tests import factories

pytestmark = pytest.mark.django_db

JAN, DEC = dt.date(2027, 1, 1), dt.date(2027, 12, 1)


@pytest.fixture
def plan(silo_a, silo_b, manager_a, manager_b):
    """FY2027, aligning, budget EUR 1,000,000, Sales and Support taking part: one
    priority (Sales accountable, Support responsible, EUR 600,000 to Sales) and a goal
    of each silo."""
    cycle = factories.CycleFactory(name="FY2027", phase="aligning", budget=1_000_000)
    cycle.silos.set([silo_a, silo_b])
    priority = factories.PriorityFactory(
        cycle=cycle, rank=1, title="Onboard fast", accountable_silo=silo_a
    )
    role = Responsibility.objects.create(
        priority=priority, silo=silo_b, role="responsible"
    )
    allocation = FundingAllocation.objects.create(
        priority=priority, silo=silo_a, amount=Decimal("600000")
    )
    deals = factories.KPIFactory(silo=silo_a, slug="deals", name="Deals")
    csat = factories.KPIFactory(silo=silo_b, slug="csat", name="CSAT")
    return {
        "cycle": cycle,
        "priority": priority,
        "role": role,
        "allocation": allocation,
        "deals": deals,
        "csat": csat,
        "goal_a": factories.GoalFactory(
            cycle=cycle, kpi=deals, name="More deals", period_start=JAN, period_end=DEC
        ),
        "goal_b": factories.GoalFactory(
            cycle=cycle, kpi=csat, name="Happier", period_start=JAN, period_end=DEC
        ),
    }


def page(cycle, tail=""):
    return f"/report/cycles/{cycle.pk}/{tail}"


def plan_rows():
    return {
        "priorities": sorted(
            Priority.objects.values_list(
                "rank", "title", "accountable_silo__slug", "description"
            )
        ),
        "roles": sorted(
            Responsibility.objects.values_list("priority__rank", "silo__slug", "role")
        ),
        "funding": sorted(
            FundingAllocation.objects.values_list(
                "priority__rank", "silo__slug", "amount"
            )
        ),
    }


STORED = {
    "priorities": [(1, "Onboard fast", "sales", "")],
    "roles": [(1, "support", "responsible")],
    "funding": [(1, "sales", Decimal("600000.00"))],
}


# --- priorities, RACI and funding -------------------------------------------------------


def test_the_cco_team_adds_changes_and_removes_a_priority(client, plan, cco, silo_b):
    client.force_login(cco)
    form = client.get(page(plan["cycle"], "priorities/new/"))
    assert form.status_code == 200
    assert list(form.context["form"].fields["accountable_silo"].queryset) == [
        plan["priority"].accountable_silo,
        silo_b,
    ]

    added = client.post(
        page(plan["cycle"], "priorities/new/"),
        {
            "rank": "2",
            "title": "Answer every lead",
            "description": "Within 4 hours.",
            "accountable_silo": str(silo_b.pk),
        },
    )

    assert (added.status_code, added["Location"]) == (
        302,
        page(plan["cycle"], "#funding"),
    )
    priority = Priority.objects.get(rank=2)
    assert plan_rows()["priorities"] == [
        (1, "Onboard fast", "sales", ""),
        (2, "Answer every lead", "support", "Within 4 hours."),
    ]
    assert priority.history.get().history_user == cco

    changed = client.post(
        page(plan["cycle"], f"priorities/{priority.pk}/"),
        {
            "rank": "3",
            "title": "Answer every lead fast",
            "description": "",
            "accountable_silo": str(silo_b.pk),
        },
    )
    assert changed.status_code == 302
    assert plan_rows()["priorities"][1] == (
        3,
        "Answer every lead fast",
        "support",
        "",
    )

    asked = client.get(page(plan["cycle"], f"priorities/{plan['priority'].pk}/remove/"))
    assert asked.status_code == 200
    assert "Its RACI roles and funding are removed with it." in asked.content.decode()
    assert plan_rows()["funding"] == STORED["funding"]  # asking removes nothing
    removed = client.post(
        page(plan["cycle"], f"priorities/{plan['priority'].pk}/remove/")
    )

    assert removed.status_code == 302
    assert plan_rows() == {
        "priorities": [(3, "Answer every lead fast", "support", "")],
        "roles": [],
        "funding": [],
    }
    # Each deletion is in history with who did it.
    assert [
        (record.history_type, record.history_user)
        for record in FundingAllocation.history.filter(history_type="-")
    ] == [("-", cco)]


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        (
            {"rank": "1", "title": "Twice", "accountable_silo": "sales"},
            {"__all__": ["Another priority of this cycle has this rank."]},
        ),
        (
            {"rank": "0", "title": "", "accountable_silo": "sales"},
            {
                "rank": ["Ensure this value is greater than or equal to 1."],
                "title": ["This field is required."],
            },
        ),
        (
            {"rank": "2", "title": "Elsewhere", "accountable_silo": "other"},
            {
                "accountable_silo": [
                    "Select a valid choice. That choice is not one of the available "
                    "choices."
                ]
            },
        ),
        (
            {"rank": "2", "title": "a\x00b", "accountable_silo": "sales"},
            {"title": ["Null characters are not allowed."]},
        ),
    ],
)
def test_a_bad_priority_is_refused_next_to_its_field_and_saves_nothing(
    client, plan, cco, data, errors
):
    other = factories.SiloFactory(slug="other")
    silos = {"sales": plan["priority"].accountable_silo.pk, "other": other.pk}
    data = {**data, "accountable_silo": str(silos[data["accountable_silo"]])}
    client.force_login(cco)

    response = client.post(page(plan["cycle"], "priorities/new/"), data)

    assert response.status_code == 400
    assert response.context["form"].errors == errors
    assert plan_rows() == STORED


def test_funding_over_the_budget_is_refused_on_the_amount(client, plan, cco, silo_b):
    client.force_login(cco)

    response = client.post(
        page(plan["cycle"], "funding/new/"),
        {
            "priority": str(plan["priority"].pk),
            "silo": str(silo_b.pk),
            "amount": "400000.01",
        },
    )

    assert response.status_code == 400
    message = (
        "This allocation of EUR 400,000.01 would bring FY2027's funding to "
        "EUR 1,000,000.01, over its budget of EUR 1,000,000.00 by EUR 0.01 "
        "(EUR 400,000.00 is left)."
    )
    assert response.context["form"].errors == {"amount": [message]}
    # Next to the field it is about.
    assert (
        f'<ul class="errorlist" id="id_amount_error"><li>{escape(message)}</li></ul>\n'
        '<input type="number" name="amount" value="400000.01" step="0.01" required '
        'aria-invalid="true" aria-describedby="id_amount_error" id="id_amount">'
    ) in response.content.decode()
    assert plan_rows() == STORED


def test_the_cco_team_adds_changes_and_removes_raci_roles_and_funding(
    client, plan, cco, silo_a, silo_b
):
    client.force_login(cco)
    priority = plan["priority"]
    form = client.get(page(plan["cycle"], f"roles/new/?priority={priority.pk}"))
    assert form.context["form"].initial == {"priority": priority.pk}

    steps = [
        (
            "roles/new/",
            {"priority": priority.pk, "silo": silo_a.pk, "role": "accountable"},
        ),
        (
            f"roles/{plan['role'].pk}/",
            {"priority": priority.pk, "silo": silo_b.pk, "role": "consulted"},
        ),
        (
            "funding/new/",
            {"priority": priority.pk, "silo": silo_b.pk, "amount": "400000"},
        ),
        (
            f"funding/{plan['allocation'].pk}/",
            {"priority": priority.pk, "silo": silo_a.pk, "amount": "550000.50"},
        ),
    ]
    for tail, data in steps:
        response = client.post(page(plan["cycle"], tail), data)
        assert (response.status_code, response["Location"]) == (
            302,
            page(plan["cycle"], "#funding"),
        ), tail

    assert plan_rows()["roles"] == [
        (1, "sales", "accountable"),
        (1, "support", "consulted"),
    ]
    assert plan_rows()["funding"] == [
        (1, "sales", Decimal("550000.50")),
        (1, "support", Decimal("400000.00")),
    ]
    cycle_page = client.get(page(plan["cycle"]))
    assert cycle_page.context["cycle"].allocated == Decimal("950000.50")

    for tail in (
        f"roles/{plan['role'].pk}/remove/",
        f"funding/{plan['allocation'].pk}/remove/",
    ):
        assert client.post(page(plan["cycle"], tail)).status_code == 302
    assert plan_rows()["roles"] == [(1, "sales", "accountable")]
    assert plan_rows()["funding"] == [(1, "support", Decimal("400000.00"))]


def test_a_role_twice_for_one_silo_is_refused(client, plan, cco, silo_b):
    client.force_login(cco)

    response = client.post(
        page(plan["cycle"], "roles/new/"),
        {"priority": plan["priority"].pk, "silo": silo_b.pk, "role": "informed"},
    )

    assert response.status_code == 400
    assert response.context["form"].errors == {
        "__all__": ["This silo already has a role on this priority."]
    }
    assert plan_rows() == STORED


LOCKED = (
    "The cycle FY2027 is committed: its {what} are locked. The CCO team can reopen it "
    "(committed -> aligning) with a reason."
)


@pytest.mark.parametrize(
    ("tail", "data", "what"),
    [
        (
            "priorities/new/",
            {"rank": 2, "title": "Late", "accountable_silo": "a"},
            "priorities",
        ),
        ("priorities/{priority}/remove/", {}, "priorities"),
        (
            "roles/new/",
            {"priority": "p", "silo": "a", "role": "informed"},
            "responsibilities",
        ),
        ("roles/{role}/remove/", {}, "responsibilities"),
        (
            "funding/new/",
            {"priority": "p", "silo": "b", "amount": "1"},
            "funding allocations",
        ),
        (
            "funding/{allocation}/",
            {"priority": "p", "silo": "a", "amount": "1"},
            "funding allocations",
        ),
        ("funding/{allocation}/remove/", {}, "funding allocations"),
    ],
)
def test_a_locked_cycle_refuses_plan_edits_with_the_services_message(
    client, plan, cco, silo_a, silo_b, tail, data, what
):
    plan["cycle"].phase = "committed"
    plan["cycle"].save()
    ids = {"a": silo_a.pk, "b": silo_b.pk, "p": plan["priority"].pk}
    data = {name: ids.get(value, value) for name, value in data.items()}
    tail = tail.format(
        priority=plan["priority"].pk,
        role=plan["role"].pk,
        allocation=plan["allocation"].pk,
    )
    client.force_login(cco)

    response = client.post(page(plan["cycle"], tail), data)

    assert response.status_code == 400
    errors = (
        response.context["form"].errors["__all__"]
        if "form" in response.context
        else response.context["errors"]
    )
    assert list(errors) == [LOCKED.format(what=what)]
    assert plan_rows() == STORED
    # And the cycle page offers no edit at all.
    cycle_page = client.get(page(plan["cycle"])).content.decode()
    assert "Add a priority" not in cycle_page
    assert "The plan is locked while the cycle is committed." in cycle_page


# --- a silo manager's goals -------------------------------------------------------------


GOAL = {
    "name": "Fewer discounts",
    "baseline": "14",
    "target": "10",
    "target_low": "",
    "target_high": "",
    "period_start": "2027-01-01",
    "period_end": "2027-12-01",
    "notes": "Finance reviews each quarter.",
}


def test_a_manager_enters_changes_and_removes_their_silos_goal(
    client, plan, manager_a, silo_a
):
    discount = factories.KPIFactory(
        silo=silo_a, slug="discount", name="Discount", direction="lower_is_better"
    )
    client.force_login(manager_a)
    form = client.get(page(plan["cycle"], "goals/new/"))
    # Their own silo's KPIs only.
    assert [kpi.key for kpi in form.context["form"].fields["kpi"].queryset] == [
        "sales.deals",
        "sales.discount",
    ]

    added = client.post(page(plan["cycle"], "goals/new/"), {"kpi": discount.pk, **GOAL})

    assert (added.status_code, added["Location"]) == (
        302,
        page(plan["cycle"], "#goals"),
    )
    goal = Goal.objects.get(kpi=discount)
    assert (
        goal.cycle,
        goal.name,
        goal.baseline,
        goal.target,
        goal.period_start,
        goal.period_end,
        goal.notes,
        goal.owner,
    ) == (
        plan["cycle"],
        "Fewer discounts",
        14.0,
        10.0,
        JAN,
        DEC,
        GOAL["notes"],
        manager_a,
    )

    changed = client.post(
        page(plan["cycle"], f"goals/{goal.pk}/"),
        {"kpi": discount.pk, **GOAL, "target": "9.5"},
    )
    assert changed.status_code == 302
    goal.refresh_from_db()
    assert (goal.target, goal.owner) == (9.5, manager_a)

    assert (
        client.post(page(plan["cycle"], f"goals/{goal.pk}/remove/")).status_code == 302
    )
    assert not Goal.objects.filter(pk=goal.pk).exists()
    assert goal.history.filter(history_type="-").get().history_user == manager_a


@pytest.mark.parametrize("tail", ["goals/{goal}/", "goals/{goal}/remove/"])
@pytest.mark.parametrize("method", ["get", "post"])
def test_another_silos_goal_is_not_found_for_a_manager(
    client, plan, manager_a, tail, method
):
    client.force_login(manager_a)
    path = page(plan["cycle"], tail.format(goal=plan["goal_b"].pk))

    response = getattr(client, method)(path, {"kpi": plan["csat"].pk, **GOAL})

    assert response.status_code == 404
    plan["goal_b"].refresh_from_db()
    assert plan["goal_b"].name == "Happier"


def test_a_manager_cannot_set_a_goal_on_another_silos_kpi(client, plan, manager_a):
    plan["goal_b"].delete()
    client.force_login(manager_a)

    response = client.post(
        page(plan["cycle"], "goals/new/"), {"kpi": plan["csat"].pk, **GOAL}
    )

    assert response.status_code == 400
    assert response.context["form"].errors == {
        "kpi": [
            "Select a valid choice. That choice is not one of the available choices."
        ]
    }
    assert not Goal.objects.filter(kpi=plan["csat"]).exists()


@pytest.mark.parametrize(
    ("phase", "message"),
    [
        (
            "draft",
            "FY2027 is draft: silo managers enter their goals while the cycle is "
            "proposing or aligning.",
        ),
        (
            "committed",
            "The cycle FY2027 is committed: its goals are locked. The CCO team can "
            "reopen it (committed -> aligning) with a reason.",
        ),
    ],
)
def test_a_managers_goal_outside_their_phases_is_refused(
    client, plan, manager_a, silo_a, phase, message
):
    plan["cycle"].phase = phase
    plan["cycle"].save()
    discount = factories.KPIFactory(silo=silo_a, slug="discount")
    client.force_login(manager_a)

    response = client.post(
        page(plan["cycle"], "goals/new/"), {"kpi": discount.pk, **GOAL}
    )

    assert response.status_code == 400
    assert response.context["form"].errors == {"__all__": [message]}
    assert not Goal.objects.filter(kpi=discount).exists()


def test_a_bad_goal_is_refused_next_to_its_fields(client, plan, manager_a, silo_a):
    discount = factories.KPIFactory(silo=silo_a, slug="discount")
    client.force_login(manager_a)

    response = client.post(
        page(plan["cycle"], "goals/new/"),
        {
            "kpi": discount.pk,
            **GOAL,
            "baseline": "1e15",
            "period_end": "2028-03-01",
        },
    )

    assert response.status_code == 400
    errors = response.context["form"].errors
    assert errors["baseline"] == [
        "Enter a number whose magnitude is below 1e15 (1,000,000,000,000,000); got "
        "1e+15. No KPI reaches that size: check the unit or the decimal point."
    ]
    assert not Goal.objects.filter(kpi=discount).exists()


# --- the voiding confirmation -----------------------------------------------------------


def test_an_edit_says_which_sign_offs_it_voids_then_voids_them(
    client, plan, cco, manager_a, manager_b, silo_a, silo_b
):
    sales = services.signoff_create(cycle=plan["cycle"], user=manager_a, silo=silo_a)
    support = services.signoff_create(cycle=plan["cycle"], user=manager_b, silo=silo_b)
    client.force_login(cco)
    data = {"priority": plan["priority"].pk, "silo": silo_b.pk, "role": "consulted"}
    path = page(plan["cycle"], f"roles/{plan['role'].pk}/")

    asked = client.post(path, data)

    assert asked.status_code == 200
    text = asked.content.decode()
    assert (
        "Saving this will void the sign-offs of Sales (manager_a) and Support "
        "(manager_b)." in text
    )
    assert f'name="voids" value="{sales.pk},{support.pk}"' in text
    # Asking writes nothing and voids nothing.
    assert plan_rows() == STORED
    assert selectors.signoff_counts([plan["cycle"]])[plan["cycle"].pk].signed == 2
    assert Event.objects.filter(name="signoff.voided").count() == 0

    done = client.post(path, {**data, "voids": f"{sales.pk},{support.pk}"})

    assert done.status_code == 302
    assert plan_rows()["roles"] == [(1, "support", "consulted")]
    assert str(selectors.signoff_counts([plan["cycle"]])[plan["cycle"].pk]) == "0 of 2"
    assert sorted(
        Event.objects.filter(name="signoff.voided").values_list("data__silo", flat=True)
    ) == ["sales", "support"]


def test_a_sign_off_given_after_the_question_is_asked_about_again(
    client, plan, cco, manager_a, manager_b, silo_a, silo_b
):
    sales = services.signoff_create(cycle=plan["cycle"], user=manager_a, silo=silo_a)
    client.force_login(cco)
    path = page(plan["cycle"], f"funding/{plan['allocation'].pk}/")
    data = {"priority": plan["priority"].pk, "silo": silo_a.pk, "amount": "500000"}
    assert "Sales (manager_a)." in client.post(path, data).content.decode()
    services.signoff_create(cycle=plan["cycle"], user=manager_b, silo=silo_b)

    again = client.post(path, {**data, "voids": str(sales.pk)})

    assert again.status_code == 200
    assert (
        "Saving this will void the sign-offs of Sales (manager_a) and Support "
        "(manager_b)." in again.content.decode()
    )
    assert plan_rows() == STORED


def test_a_bad_edit_is_refused_before_any_confirmation(
    client, plan, cco, manager_a, silo_a, silo_b
):
    services.signoff_create(cycle=plan["cycle"], user=manager_a, silo=silo_a)
    client.force_login(cco)

    response = client.post(
        page(plan["cycle"], "funding/new/"),
        {"priority": plan["priority"].pk, "silo": silo_b.pk, "amount": "500000"},
    )

    assert response.status_code == 400
    assert list(response.context["form"].errors) == ["amount"]
    assert "Saving this will void" not in response.content.decode()
    assert plan_rows() == STORED
    assert SignOff.objects.get().silo == silo_a
    assert selectors.signoff_counts([plan["cycle"]])[plan["cycle"].pk].signed == 1


def test_removing_a_goal_says_which_sign_offs_it_voids(
    client, plan, manager_a, manager_b, silo_a, silo_b
):
    services.signoff_create(cycle=plan["cycle"], user=manager_b, silo=silo_b)
    client.force_login(manager_a)
    path = page(plan["cycle"], f"goals/{plan['goal_a'].pk}/remove/")

    asked = client.get(path)
    assert "Saving this will void the sign-offs of Support (manager_b)." in (
        asked.content.decode()
    )
    stale = client.post(path)  # without the confirmation's list: asked again
    assert stale.status_code == 200
    assert Goal.objects.filter(pk=plan["goal_a"].pk).exists()

    done = client.post(path, {"voids": asked.context["voids_ids"]})

    assert done.status_code == 302
    assert not Goal.objects.filter(pk=plan["goal_a"].pk).exists()
    assert str(selectors.signoff_counts([plan["cycle"]])[plan["cycle"].pk]) == "0 of 2"


# --- commit and close ask for confirmation ----------------------------------------------


def test_commit_and_close_ask_for_confirmation(
    client, plan, cco, manager_a, manager_b, silo_a, silo_b
):
    client.force_login(cco)
    confirm = page(plan["cycle"], "phase/committed/")
    refused = client.get(confirm)
    assert [b.kind for b in refused.context["blockers"]] == ["sign_off", "sign_off"]
    assert 'id="confirm"' not in refused.content.decode()

    services.signoff_create(cycle=plan["cycle"], user=manager_a, silo=silo_a)
    services.signoff_create(cycle=plan["cycle"], user=manager_b, silo=silo_b)
    asked = client.get(confirm)
    assert asked.status_code == 200
    assert asked.context["consequence"] == (
        "Committing locks the plan: goals, shared goals, priorities, RACI roles and "
        "funding change only after the CCO team reopens the cycle with a reason."
    )
    assert str(asked.context["sign_off_count"]) == "2 of 2"
    plan["cycle"].refresh_from_db()
    assert plan["cycle"].phase == "aligning"  # asking moves nothing

    assert client.post(confirm)["Location"] == page(plan["cycle"])
    plan["cycle"].refresh_from_db()
    assert plan["cycle"].phase == "committed"

    # The page's "Move to closed" leads to the confirmation, not to the move.
    move = client.get(page(plan["cycle"])).content.decode()
    assert f'action="{page(plan["cycle"], "phase/closed/")}"' in move
    close = page(plan["cycle"], "phase/closed/")
    assert client.get(close).context["consequence"] == (
        "Closing ends the cycle for good: its plan stays locked and it cannot be "
        "reopened."
    )
    assert client.post(close).status_code == 302
    plan["cycle"].refresh_from_db()
    assert plan["cycle"].phase == "closed"
    assert client.get(page(plan["cycle"], "phase/proposing/")).status_code == 404


def test_a_confirmation_for_a_move_the_cycle_cannot_make_says_so(client, plan, cco):
    client.force_login(cco)

    response = client.get(page(plan["cycle"], "phase/closed/"))

    assert response.context["movable"] is False
    assert (
        "FY2027 is aligning: it cannot move to closed from there."
        in response.content.decode()
    )
    refused = client.post(page(plan["cycle"], "phase/closed/"))
    assert refused.status_code == 400
    assert refused.context["errors"] == [
        "FY2027 is aligning: it can move to committed, not to closed."
    ]


# --- blockers say who can act -----------------------------------------------------------


def test_every_blocker_links_to_what_blocks_and_says_who_can_act(
    client, plan, cco, silo_a, silo_b, manager_a
):
    marketing = factories.SiloFactory(slug="marketing", name="Marketing", position=10)
    plan["cycle"].silos.add(marketing)
    services.signoff_create(cycle=plan["cycle"], user=manager_a, silo=silo_a)
    # A change after Sales signed: Sales signs again.
    Goal.objects.filter(pk=plan["goal_b"].pk).get().save()
    conflict = factories.ConflictFactory(
        leader_kpi=plan["deals"], affected_kpi=plan["csat"], severity=Severity.HIGH
    )
    client.force_login(cco)

    response = client.get(page(plan["cycle"]))

    changed = selectors.plan_changed_at(plan["cycle"])
    assert [
        (b.kind, b.message, b.action, b.url) for b in response.context["blockers"]
    ] == [
        (
            "sign_off",
            "Marketing has not signed off.",
            "Marketing has no manager: assign one in the admin.",
            f"/admin/metrics/silo/{marketing.pk}/change/",
        ),
        (
            "sign_off",
            f"Sales signed off before the plan last changed ({changed:%Y-%m-%d %H:%M} "
            "UTC) and must sign off again.",
            "Sales' managers (manager_a) can sign off here.",
            page(plan["cycle"], "#sign-offs"),
        ),
        (
            "sign_off",
            "Support has not signed off.",
            "Support's managers (manager_b) can sign off here.",
            page(plan["cycle"], "#sign-offs"),
        ),
        (
            "conflict",
            f"High-severity conflict {conflict.pk} is open: sales.deals hurts "
            "support.csat. Resolve it, dismiss it, or accept it as a trade-off with a "
            "note.",
            "The CCO team does it on the conflict's page.",
            f"/report/conflicts/{conflict.pk}/",
        ),
    ]
    text = response.content.decode()
    assert (
        f'<a href="/admin/metrics/silo/{marketing.pk}/change/" class="blocker-action">'
        "Marketing has no manager: assign one in the admin.</a>"
    ) in text


def test_funding_over_the_budget_blocks_the_commit(plan):
    # The budget rule and the database's trigger hold every write; the gate still
    # refuses a plan over its budget (here a budget cut in memory, never saved).
    cycle = plan["cycle"]
    cycle.budget = Decimal("500000")

    blockers = [b for b in selectors.commit_blockers(cycle) if b.kind == "budget"]

    assert blockers == [
        selectors.Blocker(
            kind="budget",
            message="The funding (EUR 600,000.00) is over the budget (EUR 500,000.00).",
            action="The CCO team reduces the allocations in the funding section.",
            url=page(cycle, "#funding"),
        )
    ]


# --- one sign-off count everywhere ------------------------------------------------------


def sign_off_counts_shown(client, api, cycle):
    """The count as the cycle list, the cycle page, the API's commit check and the
    admin's change list show it."""
    listed = client.get("/report/cycles/")
    [row_count] = [
        count for c, count in listed.context["cycle_rows"] if c.pk == cycle.pk
    ]
    detail = client.get(page(cycle)).context["sign_off_count"]
    check = api.get(f"/api/v1/cycles/{cycle.pk}/commit-check/").json()
    admin = client.get("/admin/cycles/cycle/")
    [admin_row] = [row for row in admin.context["cl"].result_list if row.pk == cycle.pk]
    return {
        "list": str(row_count),
        "page": str(detail),
        "api": f"{check['signed_off']} of {check['participants']}",
        "admin": str(admin_row.sign_off_summary),
    }


def test_the_sign_off_count_agrees_everywhere(
    client, api, plan, cco, manager_a, manager_b, silo_a, silo_b
):
    client.force_login(cco)
    api.force_authenticate(cco)
    services.signoff_create(cycle=plan["cycle"], user=manager_a, silo=silo_a)
    services.signoff_create(cycle=plan["cycle"], user=manager_b, silo=silo_b)
    assert set(sign_off_counts_shown(client, api, plan["cycle"]).values()) == {"2 of 2"}

    # A change voids both; a silo that no longer takes part does not count.
    services.funding_allocation_save(
        user=cco, priority=plan["priority"], allocation=plan["allocation"], amount=1
    )
    services.signoff_create(cycle=plan["cycle"], user=manager_a, silo=silo_a)
    assert set(sign_off_counts_shown(client, api, plan["cycle"]).values()) == {"1 of 2"}
    plan["cycle"].silos.remove(silo_a)
    assert set(sign_off_counts_shown(client, api, plan["cycle"]).values()) == {"0 of 1"}
    assert "0 of 1" in client.get("/admin/cycles/cycle/").content.decode()
