"""Who may open and use each page of the cycle workspace: every page and action, for
every role (deny by default; another silo's goal is "not found", never editable)."""

from decimal import Decimal

import pytest

from goals.models import Goal
from planning.models import FundingAllocation, Priority, Responsibility
from tests import factories

pytestmark = pytest.mark.django_db

ROLES = [
    "anonymous",
    "no_role",
    "manager_of_cycle_silo",
    "manager_of_other_silo",
    "cco",
    "reader",
    "superuser",
]


@pytest.fixture
def people(silo_a, silo_b, manager_a):
    other = factories.SiloFactory(slug="marketing", name="Marketing")
    return {
        "anonymous": None,
        "no_role": factories.UserFactory(username="nobody", is_staff=True),
        "manager_of_cycle_silo": manager_a,
        "manager_of_other_silo": factories.silo_manager(other, username="mo"),
        "cco": factories.cco_member(username="cco"),
        "reader": factories.bi_reader(username="reader"),
        "superuser": factories.UserFactory(username="root", is_superuser=True),
    }


@pytest.fixture
def plan(silo_a, silo_b):
    cycle = factories.CycleFactory(name="FY2027", phase="aligning", budget=1_000_000)
    cycle.silos.set([silo_a, silo_b])
    priority = factories.PriorityFactory(cycle=cycle, rank=1, accountable_silo=silo_a)
    return {
        "cycle": cycle,
        "priority": priority,
        "role": Responsibility.objects.create(
            priority=priority, silo=silo_b, role="informed"
        ),
        "allocation": FundingAllocation.objects.create(
            priority=priority, silo=silo_a, amount=Decimal("1000")
        ),
        "goal": factories.GoalFactory(
            cycle=cycle, kpi=factories.KPIFactory(silo=silo_a, slug="deals")
        ),
        "new_kpi": factories.KPIFactory(silo=silo_a, slug="discount"),
    }


def goal_data(plan):
    return {
        "kpi": plan["new_kpi"].pk,
        "baseline": "10",
        "target": "12",
        "period_start": "2027-01-01",
        "period_end": "2027-12-01",
    }


#: (action, method, path under the cycle, data) -> the status of each role
#: (anonymous always goes to the login page).
CCO_ONLY = {
    "no_role": 403,
    "manager_of_cycle_silo": 403,
    "manager_of_other_silo": 403,
    "reader": 403,
}
ACTIONS = [
    ("add priority form", "get", "priorities/new/", None, 200, CCO_ONLY),
    (
        "add priority",
        "post",
        "priorities/new/",
        lambda plan: {
            "rank": 2,
            "title": "New",
            "accountable_silo": plan["priority"].accountable_silo_id,
        },
        302,
        CCO_ONLY,
    ),
    ("change priority form", "get", "priorities/{priority}/", None, 200, CCO_ONLY),
    ("remove priority", "post", "priorities/{priority}/remove/", None, 302, CCO_ONLY),
    ("add role form", "get", "roles/new/", None, 200, CCO_ONLY),
    (
        "change role",
        "post",
        "roles/{role}/",
        lambda plan: {
            "priority": plan["priority"].pk,
            "silo": plan["role"].silo_id,
            "role": "consulted",
        },
        302,
        CCO_ONLY,
    ),
    ("remove role", "post", "roles/{role}/remove/", None, 302, CCO_ONLY),
    ("add funding form", "get", "funding/new/", None, 200, CCO_ONLY),
    (
        "change funding",
        "post",
        "funding/{allocation}/",
        lambda plan: {
            "priority": plan["priority"].pk,
            "silo": plan["allocation"].silo_id,
            "amount": "2000",
        },
        302,
        CCO_ONLY,
    ),
    ("remove funding", "post", "funding/{allocation}/remove/", None, 302, CCO_ONLY),
    (
        "add goal form",
        "get",
        "goals/new/",
        None,
        200,
        {"no_role": 403, "reader": 403},
    ),
    (
        "add goal",
        "post",
        "goals/new/",
        goal_data,
        302,
        # Another silo's manager may not choose this KPI: a form error.
        {"no_role": 403, "reader": 403, "manager_of_other_silo": 400},
    ),
    (
        "change goal form",
        "get",
        "goals/{goal}/",
        None,
        200,
        {"no_role": 403, "reader": 403, "manager_of_other_silo": 404},
    ),
    (
        "remove goal",
        "post",
        "goals/{goal}/remove/",
        None,
        302,
        {"no_role": 403, "reader": 403, "manager_of_other_silo": 404},
    ),
    ("commit confirmation", "get", "phase/committed/", None, 200, CCO_ONLY),
    ("commit", "post", "phase/committed/", None, 400, CCO_ONLY),  # blocked: unsigned
    ("unknown part", "get", "budgets/new/", None, 404, {"no_role": 403, "reader": 403}),
]
CASES = [
    (action, role, method, tail, data, others.get(role, allowed))
    for action, method, tail, data, allowed, others in ACTIONS
    for role in ROLES
]


def plan_state():
    return (
        sorted(Priority.objects.values_list("rank", "title")),
        sorted(Responsibility.objects.values_list("silo_id", "role")),
        sorted(FundingAllocation.objects.values_list("silo_id", "amount")),
        sorted(Goal.objects.values_list("kpi_id", "baseline")),
    )


@pytest.mark.parametrize(
    ("action", "role", "method", "tail", "data", "status"),
    CASES,
    ids=[f"{role}: {action}" for action, role, *_ in CASES],
)
def test_each_role_may_do_only_its_part_of_the_workspace(
    client, people, plan, action, role, method, tail, data, status
):
    user = people[role]
    if user is not None:
        client.force_login(user)
    path = f"/report/cycles/{plan['cycle'].pk}/" + tail.format(
        priority=plan["priority"].pk,
        role=plan["role"].pk,
        allocation=plan["allocation"].pk,
        goal=plan["goal"].pk,
    )
    before = plan_state()

    response = getattr(client, method)(path, data(plan) if data else {})

    if user is None:
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/?next=")
    else:
        assert response.status_code == status
    if response.status_code != 302 or user is None:
        assert plan_state() == before  # a refusal writes nothing
    elif method == "post" and action != "commit":
        assert plan_state() != before
