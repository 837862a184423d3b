"""seed_demo: the demo company, its idempotency, and its built-in trade-offs."""

import datetime as dt
import io
import itertools
import re
import statistics
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from django.db.models import Max, Sum

from conflicts.models import ConflictComment
from core.roles import BI_READERS, CCO_TEAM, SILO_MANAGERS
from cycles.models import Cycle
from goals.models import Contribution, Goal, Guardrail, SharedGoal, SharedGoalSnapshot
from metrics.models import KPI, ImpactLink, Measurement, Silo
from planning import readiness
from planning.models import (
    FundingAllocation,
    Priority,
    ReadinessAnswer,
    Responsibility,
    SignOff,
)

PASSWORD = "ducttape-demo"
MONTHS = [
    dt.date(2023 + (10 + index) // 12, (10 + index) % 12 + 1, 1) for index in range(36)
]
QUARTERS = [month for month in MONTHS if month.month in (1, 4, 7, 10)]
COUNTS_LINE = re.compile(r"^(.+?):\s+(\d+) created, (\d+) updated, (\d+) unchanged$")


def seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def step_counts(output: str) -> dict[str, tuple[int, int, int]]:
    """Return the (created, updated, unchanged) counts of each line of the output."""
    counts = {}
    for line in output.splitlines():
        match = COUNTS_LINE.match(line.strip())
        if match:
            counts[match[1]] = (int(match[2]), int(match[3]), int(match[4]))
    return counts


def snapshot() -> dict[str, object]:
    """Return every model's row count and latest update, and every measurement."""
    state: dict[str, object] = {}
    for model in apps.get_models(include_auto_created=True):
        state[f"{model._meta.label} count"] = model._default_manager.count()
        if any(field.name == "updated_at" for field in model._meta.fields):
            state[f"{model._meta.label} updated_at"] = model._default_manager.aggregate(
                latest=Max("updated_at")
            )["latest"]
    state["measurements"] = set(
        Measurement.objects.values_list("kpi__key", "period", "value")
    )
    state["users"] = set(
        User.objects.values_list("username", "password", "last_login", "is_staff")
    )
    return state


def monthly_changes(key: str) -> list[float]:
    values = list(
        Measurement.objects.filter(kpi__key=key)
        .order_by("period")
        .values_list("value", flat=True)
    )
    return [after - before for before, after in itertools.pairwise(values)]


def lagged_correlation(leader: str, follower: str, lag: int) -> float:
    """Return the correlation of leader changes with follower changes ``lag`` later."""
    leader_changes = monthly_changes(leader)
    follower_changes = monthly_changes(follower)
    return statistics.correlation(
        leader_changes[: len(leader_changes) - lag], follower_changes[lag:]
    )


@pytest.mark.django_db
def test_seed_demo_creates_the_demo_company():
    output = seed()

    assert list(Silo.objects.values_list("slug", "position")) == [
        ("marketing", 10),
        ("sales", 20),
        ("operations", 30),
        ("support", 40),
        ("finance", 50),
        ("product", 60),
    ]
    assert KPI.objects.count() == 32
    assert {silo.slug: silo.kpis.count() for silo in Silo.objects.all()} == {
        "marketing": 5,
        "sales": 6,
        "operations": 5,
        "support": 6,
        "finance": 5,
        "product": 5,
    }
    assert set(
        KPI.objects.filter(direction="target_band").values_list(
            "key", "band_low", "band_high"
        )
    ) == {
        ("operations.inventory_days", 30.0, 45.0),
        ("finance.opex_variance_pct", -2.0, 2.0),
    }
    assert set(
        KPI.objects.filter(frequency="quarterly").values_list("key", flat=True)
    ) == {
        "marketing.brand_awareness_pct",
        "support.nps",
    }
    assert KPI.objects.filter(direction="higher_is_better").count() == 19
    assert KPI.objects.filter(direction="lower_is_better").count() == 11

    # 30 monthly KPIs x 36 months + 2 quarterly KPIs x 12 quarters.
    assert Measurement.objects.count() == 30 * 36 + 2 * 12 == 1104
    for kpi in KPI.objects.all():
        expected = QUARTERS if kpi.frequency == "quarterly" else MONTHS
        assert (
            list(kpi.measurements.order_by("period").values_list("period", flat=True))
            == expected
        ), kpi.key

    assert set(
        ImpactLink.objects.values_list(
            "leader_kpi__key",
            "affected_kpi__key",
            "effect",
            "lag",
            "declared_by__username",
        )
    ) == {
        ("marketing.leads", "sales.lead_response_hours", "hurts", 0, "cco"),
        ("sales.discount_rate", "finance.gross_margin_pct", "helps", 0, "cco"),
        ("sales.deals_closed", "support.tickets_opened", "hurts", 1, "cco"),
        ("operations.cost_per_order", "support.csat_pct", "hurts", 2, "cco"),
        (
            "product.releases_shipped",
            "support.first_contact_resolution_pct",
            "hurts",
            0,
            "cco",
        ),
    }

    fy2026 = Cycle.objects.get(name="FY2026")
    assert (fy2026.start_date, fy2026.end_date, fy2026.phase, fy2026.budget) == (
        dt.date(2026, 1, 1),
        dt.date(2026, 12, 31),
        "aligning",
        Decimal("2500000.00"),
    )
    assert fy2026.silos.count() == 6
    fy2027 = Cycle.objects.get(name="FY2027")
    assert (fy2027.start_date, fy2027.end_date, fy2027.phase, fy2027.budget) == (
        dt.date(2027, 1, 1),
        dt.date(2027, 12, 31),
        "draft",
        Decimal("3000000.00"),
    )
    assert Cycle.objects.count() == 2

    assert Goal.objects.filter(cycle=fy2026).count() == Goal.objects.count() == 12
    assert set(Goal.objects.values_list("period_start", "period_end")) == {
        (dt.date(2026, 1, 1), dt.date(2026, 12, 1))
    }
    assert {
        silo.slug: Goal.objects.filter(kpi__silo=silo).count()
        for silo in Silo.objects.all()
    } == {
        "marketing": 2,
        "sales": 2,
        "operations": 2,
        "support": 2,
        "finance": 2,
        "product": 2,
    }
    assert set(
        Goal.objects.filter(target__isnull=True).values_list(
            "kpi__key", "target_low", "target_high"
        )
    ) == {
        ("operations.inventory_days", 32.0, 40.0),
        ("finance.opex_variance_pct", -1.5, 1.5),
    }
    # The baseline is the KPI over 2025, aggregated as the KPI says.
    deals = Goal.objects.get(kpi__key="sales.deals_closed")
    assert deals.baseline == sum(
        Measurement.objects.filter(
            kpi__key="sales.deals_closed", period__year=2025
        ).values_list("value", flat=True)
    )
    assert deals.target == round(deals.baseline * 1.12)
    assert deals.owner.username == "sales_manager"

    assert SharedGoal.objects.count() == 2
    assert Contribution.objects.count() == 4
    contributions = {
        shared_goal.name: {
            (contribution.goal.kpi.key, contribution.weight)
            for contribution in shared_goal.contributions.all()
        }
        for shared_goal in SharedGoal.objects.filter(
            cycle=fy2026, owner__username="cco"
        )
    }
    assert contributions == {
        "Profitable growth": {
            ("sales.deals_closed", 0.5),
            ("finance.gross_margin_pct", 0.5),
        },
        "Customers who stay": {
            ("support.csat_pct", 0.6),
            ("operations.on_time_delivery_pct", 0.4),
        },
    }

    assert list(
        Priority.objects.filter(cycle=fy2026).values_list(
            "rank", "accountable_silo__slug"
        )
    ) == [(1, "operations"), (2, "finance"), (3, "sales")]
    assert Responsibility.objects.count() == 11
    assert set(
        Responsibility.objects.filter(role="accountable").values_list(
            "priority__rank", "silo__slug"
        )
    ) == {(1, "operations"), (2, "finance"), (3, "sales")}
    assert FundingAllocation.objects.count() == 6
    assert FundingAllocation.objects.aggregate(total=Sum("amount"))["total"] == Decimal(
        "1600000.00"
    )
    assert set(
        SignOff.objects.values_list("cycle__name", "silo__slug", "user__username")
    ) == {
        ("FY2026", "sales", "sales_manager"),
        ("FY2026", "support", "support_manager"),
    }
    guardrail = Guardrail.objects.select_related("shared_goal", "kpi").get()
    assert (
        guardrail.shared_goal.name,
        guardrail.kpi.key,
        guardrail.tolerance,
        guardrail.baseline,
    ) == (
        "Profitable growth",
        "support.csat_pct",
        2.0,
        Goal.objects.get(kpi__key="support.csat_pct").baseline,
    )
    answers = dict(
        ReadinessAnswer.objects.filter(cycle__name="FY2026").values_list(
            "number", "answer"
        )
    )
    assert len(answers) == 11
    # 5 yes, 4 partly and 2 no (planning/demo/data.py): 5 + 4 x 0.5 = 7.0
    assert readiness.score(answers) == 7.0

    users = {user.username: user for user in User.objects.all()}
    assert set(users) == {
        "admin",
        "cco",
        "sales_manager",
        "support_manager",
        "marketing_manager",
        "operations_manager",
        "finance_manager",
        "product_manager",
        "bi_reader",
    }
    assert all(
        user.is_staff and user.check_password(PASSWORD) for user in users.values()
    )
    assert [name for name, user in users.items() if user.is_superuser] == ["admin"]
    assert {
        name: set(user.groups.values_list("name", flat=True))
        for name, user in users.items()
    } == {
        "admin": set(),
        "cco": {CCO_TEAM},
        "sales_manager": {SILO_MANAGERS},
        "support_manager": {SILO_MANAGERS},
        "marketing_manager": {SILO_MANAGERS},
        "operations_manager": {SILO_MANAGERS},
        "finance_manager": {SILO_MANAGERS},
        "product_manager": {SILO_MANAGERS},
        "bi_reader": {BI_READERS},
    }
    # Every silo has a manager: the demo cycle can commit through the pages alone.
    assert {
        silo.slug: set(silo.managers.values_list("username", flat=True))
        for silo in Silo.objects.all()
    } == {
        "marketing": {"marketing_manager"},
        "sales": {"sales_manager"},
        "operations": {"operations_manager"},
        "support": {"support_manager"},
        "finance": {"finance_manager"},
        "product": {"product_manager"},
    }

    counts = step_counts(output)
    assert counts["Measurements"] == (1104, 0, 0)
    assert counts["measurements of Customer Support"] == (192, 0, 0)
    assert counts["Goals"] == (12, 0, 0)
    # Two shared goals, a snapshot at each month's end from January to October 2026
    # (the last month with figures), each from the figures up to that month: a trend.
    assert counts["Roll-up history"] == (20, 0, 0)
    days = sorted(set(SharedGoalSnapshot.objects.values_list("day", flat=True)))
    assert (days[0], days[-1], len(days)) == (
        dt.date(2026, 1, 31),
        dt.date(2026, 10, 31),
        10,
    )
    trend = list(
        SharedGoalSnapshot.objects.filter(shared_goal__name="Profitable growth")
        .order_by("day")
        .values_list("progress", flat=True)
    )
    assert len(set(trend)) > 1, trend
    # The two managers talk over the declared conflict of deals and tickets.
    assert counts["Conflict comments"] == (2, 0, 0)
    assert list(
        ConflictComment.objects.order_by("created_at", "pk").values_list(
            "conflict__leader_kpi__key",
            "conflict__affected_kpi__key",
            "author__username",
        )
    ) == [
        ("sales.deals_closed", "support.tickets_opened", "support_manager"),
        ("sales.deals_closed", "support.tickets_opened", "sales_manager"),
    ]
    assert "http://127.0.0.1:8000/admin/" in output
    for username in users:
        assert re.search(rf"^\s+{username}\s+{PASSWORD}\s+\S", output, re.MULTILINE)


@pytest.mark.django_db
def test_seed_demo_twice_changes_nothing_the_second_time():
    first_output = seed()
    before = snapshot()

    second_output = seed()

    assert snapshot() == before
    assert before["goals.HistoricalGoal count"] == 12
    assert before["metrics.HistoricalSilo count"] == 6 + 6  # + a manager added to each
    counts = step_counts(second_output)
    # 20 steps, and a line per silo while measurements are written.
    assert len(counts) == len(step_counts(first_output)) == 20 + 6
    assert counts["Roll-up history"] == (0, 0, 20)
    assert counts["Conflict comments"] == (0, 0, 2)
    assert all(created == updated == 0 for created, updated, _ in counts.values())
    assert counts["Measurements"] == (0, 0, 1104)
    assert "Nothing to do: the demo data was already in place." in second_output


@pytest.mark.django_db
def test_seed_demo_repairs_only_what_differs():
    seed()
    Measurement.objects.filter(kpi__key="sales.deals_closed", period=MONTHS[0]).update(
        value=0.0
    )
    goal = Goal.objects.get(kpi__key="support.csat_pct")
    goal.target = 99.0
    goal.save()
    admin = User.objects.get(username="admin")
    admin.set_password("changed-by-the-admin")
    admin.save()
    before = snapshot()

    output = seed()

    counts = step_counts(output)
    assert counts["Measurements"] == (0, 1, 1103)
    assert counts["Goals"] == (0, 1, 11)
    # The measurement shows in its silo's line and in the total.
    assert sum(created + updated for created, updated, _ in counts.values()) == 2 + 1
    after = snapshot()
    assert (
        after["goals.HistoricalGoal count"] == before["goals.HistoricalGoal count"] + 1
    )
    changed = {key for key in after if after[key] != before[key]}
    assert changed == {
        "goals.HistoricalGoal count",
        "goals.Goal updated_at",
        "goals.HistoricalGoal updated_at",
        "metrics.Measurement updated_at",
        "measurements",
    }
    assert User.objects.get(username="admin").check_password("changed-by-the-admin")


@pytest.mark.django_db
def test_seed_demo_refuses_without_role_groups_and_writes_nothing():
    Group.objects.filter(name=BI_READERS).delete()

    with pytest.raises(CommandError, match="BI readers"):
        seed()

    assert User.objects.count() == 0
    assert Silo.objects.count() == 0
    assert Measurement.objects.count() == 0


@pytest.mark.parametrize(
    ("leader", "follower", "lag", "sign"),
    [
        ("sales.deals_closed", "support.tickets_opened", 1, 1),
        ("sales.discount_rate", "finance.gross_margin_pct", 0, -1),
        ("operations.cost_per_order", "support.csat_pct", 2, 1),
        ("marketing.leads", "sales.lead_response_hours", 0, 1),
        ("product.releases_shipped", "support.first_contact_resolution_pct", 0, -1),
        # Undeclared: for conflict detection to discover.
        ("sales.deals_closed", "operations.on_time_delivery_pct", 1, -1),
    ],
)
@pytest.mark.django_db
def test_seed_demo_builds_in_trade_offs(leader, follower, lag, sign):
    seed()

    # Measured: 0.65 to 0.76 in absolute value.
    assert sign * lagged_correlation(leader, follower, lag) > 0.6


@pytest.mark.parametrize(
    ("leader", "follower", "lag"),
    [
        ("sales.deals_closed", "finance.gross_margin_pct", 0),
        ("finance.revenue", "support.tickets_opened", 1),
    ],
)
@pytest.mark.django_db
def test_seed_demo_keeps_unrelated_kpis_independent(leader, follower, lag):
    seed()

    # Measured: 0.05 and 0.005.
    assert abs(lagged_correlation(leader, follower, lag)) < 0.3
