"""The demo company: six silos along a value chain, three years of KPIs, two plans.

The company is described as data at the top of this module; ``demo_seed`` writes it.
Measurements are generated (deterministically) from trend, seasonality and noise, and
a few trade-offs are built in as period-over-period effects of one silo's KPI on
another's: the conflicts that the Chief Customer Officer, the company's "human duct
tape", has to find and resolve. Five of them are declared as impact links; the sixth
is left for conflict detection to discover.

Seeding is idempotent: rows are looked up by natural key and saved only when a field
differs, so a second run writes nothing, not even history rows.
"""

import datetime as dt
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.db import models, transaction
from django.utils import timezone

from goals import progress
from goals.models import Contribution, Goal, SharedGoal
from metrics import periods
from metrics.models import (
    KPI,
    Aggregation,
    Direction,
    Effect,
    ImpactLink,
    Measurement,
    Silo,
)
from metrics.roles import BI_READERS, CCO_TEAM, SILO_MANAGERS
from planning.models import (
    FundingAllocation,
    Phase,
    PlanningCycle,
    Priority,
    Responsibility,
    Role,
    SignOff,
)

# Fixed dates, not "the last 36 months": a run next month must write the same rows.
FIRST_PERIOD = dt.date(2023, 11, 1)
LAST_PERIOD = dt.date(2026, 10, 1)
# Picked among seeds 0..299: the built-in trade-offs keep |r| 0.65-0.76 on monthly
# changes while no unrelated cross-silo pair reaches 0.58 by chance (lags 0-2).
RANDOM_SEED = "ducttape-demo-100"
DEMO_PASSWORD = "ducttape-demo"  # noqa: S105 (published on purpose: demo logins)
ADMIN_URL = "http://127.0.0.1:8000/admin/"
SOURCE = "seed_demo"

UP = Direction.HIGHER_IS_BETTER
DOWN = Direction.LOWER_IS_BETTER
BAND = Direction.TARGET_BAND
SUM = Aggregation.SUM
MEAN = Aggregation.MEAN
LAST = Aggregation.LAST
MONTHLY = periods.MONTHLY
QUARTERLY = periods.QUARTERLY
# Business numbers drift: part of last month's surprise persists. Persistent noise also
# keeps the month-over-month changes of unrelated KPIs from correlating by chance as
# often as white noise would (its changes are anti-correlated with themselves).
NOISE_PERSISTENCE = 0.6


@dataclass(frozen=True)
class SiloSpec:
    slug: str
    name: str
    position: int
    description: str


@dataclass(frozen=True)
class Series:
    """How a KPI's values are generated: ``level + trend * month + season + noise``.

    ``season`` is the amplitude of a yearly cosine peaking in ``peak_month``; ``noise``
    the standard deviation of autocorrelated Gaussian noise. Values are clamped to
    ``low``..``high`` and rounded to ``decimals``.
    """

    level: float
    trend: float = 0.0
    noise: float = 0.0
    season: float = 0.0
    peak_month: int = 12
    decimals: int = 1
    low: float = 0.0
    high: float = math.inf

    def expected(self, month_index: int, month: int) -> float:
        """Return the noiseless value ``month_index`` months after the first period."""
        angle = 2 * math.pi * (month - self.peak_month) / 12
        return self.level + self.trend * month_index + self.season * math.cos(angle)


@dataclass(frozen=True)
class KpiSpec:
    key: str
    name: str
    unit: str
    direction: str
    aggregation: str
    series: Series
    frequency: str = MONTHLY
    band: tuple[float, float] | None = None

    @property
    def silo_slug(self) -> str:
        return self.key.split(".")[0]

    @property
    def slug(self) -> str:
        return self.key.split(".")[1]


@dataclass(frozen=True)
class TradeOff:
    """A change of ``leader`` that moves ``follower`` ``lag`` months later.

    The follower moves ``per_unit`` of its units for each unit the leader departs from
    its own trend. ``effect`` is the impact link the CCO declared, or None when nobody
    has noticed the trade-off yet.
    """

    leader: str
    follower: str
    lag: int
    per_unit: float
    effect: str | None
    rationale: str


@dataclass(frozen=True)
class GoalSpec:
    """A silo goal on ``kpi``, against its value over the baseline year.

    The target is ``target`` itself, or the baseline moved by ``change`` percent (points
    when ``in_points``); a target-band KPI's goal sets ``band`` instead.
    """

    kpi: str
    name: str
    change: float = 0.0
    in_points: bool = False
    target: float | None = None
    band: tuple[float, float] | None = None
    owner: str | None = None


@dataclass(frozen=True)
class PrioritySpec:
    rank: int
    title: str
    description: str
    accountable: str
    roles: dict[str, str]
    funding: dict[str, int]


@dataclass(frozen=True)
class UserSpec:
    username: str
    first_name: str
    last_name: str
    role: str
    group: str | None = None
    manages: tuple[str, ...] = ()
    is_superuser: bool = False


# The tables below read best one row per item, so the formatter leaves them alone.
# fmt: off
SILOS = [
    SiloSpec("marketing", "Marketing", 10,
             "Fills the top of the funnel. Rewarded on lead volume and cost per lead."),
    SiloSpec("sales", "Sales", 20,
             "Turns leads into signed contracts. Rewarded on deals and bookings."),
    SiloSpec("operations", "Operations & Delivery", 30,
             "Onboards and delivers what sales sold. Rewarded on cost per order."),
    SiloSpec("support", "Customer Support", 40,
             "Answers customers after the sale. Rewarded on ticket volume and CSAT."),
    SiloSpec("finance", "Finance", 50,
             "Keeps the company profitable and solvent. Rewarded on margin and cash."),
    SiloSpec("product", "Product & Engineering", 60,
             "Builds and runs the product. Rewarded on release throughput and uptime."),
]

KPIS = [
    KpiSpec("marketing.leads", "Marketing-qualified leads", "count", UP, SUM,
            Series(1500, trend=15, noise=90, season=120, peak_month=3, decimals=0)),
    KpiSpec("marketing.cost_per_lead", "Cost per lead", "EUR", DOWN, MEAN,
            Series(48, trend=-0.1, noise=2.0, decimals=2)),
    KpiSpec("marketing.web_conversion_pct", "Website conversion rate", "%", UP, MEAN,
            Series(2.4, trend=0.01, noise=0.12, decimals=2)),
    KpiSpec("marketing.unsubscribe_pct", "Newsletter unsubscribe rate", "%", DOWN, MEAN,
            Series(0.35, trend=0.002, noise=0.04, decimals=2)),
    KpiSpec("marketing.brand_awareness_pct", "Aided brand awareness", "%", UP, LAST,
            Series(31, trend=0.15, noise=1.0), frequency=QUARTERLY),

    KpiSpec("sales.deals_closed", "Deals closed", "count", UP, SUM,
            Series(140, trend=1.2, noise=9, season=14, decimals=0)),
    KpiSpec("sales.new_bookings", "New bookings", "EUR", UP, SUM,
            Series(1_150_000, trend=9_000, noise=60_000, decimals=-3)),
    KpiSpec("sales.discount_rate", "Average discount", "%", DOWN, MEAN,
            Series(9.5, trend=0.03, noise=0.8)),
    KpiSpec("sales.lead_response_hours", "Lead response time", "hours", DOWN, MEAN,
            Series(6.0, trend=-0.02, noise=0.45)),
    KpiSpec("sales.win_rate_pct", "Win rate", "%", UP, MEAN,
            Series(24, trend=0.05, noise=1.1)),
    KpiSpec("sales.pipeline_value", "Open pipeline", "EUR", UP, LAST,
            Series(5_400_000, trend=35_000, noise=180_000, decimals=-3)),

    KpiSpec("operations.orders_shipped", "Orders shipped", "count", UP, SUM,
            Series(2300, trend=18, noise=80, season=60, decimals=0)),
    KpiSpec("operations.cost_per_order", "Cost per order", "EUR", DOWN, MEAN,
            Series(42, trend=-0.15, noise=1.3, decimals=2)),
    KpiSpec("operations.on_time_delivery_pct", "On-time delivery", "%", UP, MEAN,
            Series(93, trend=0.03, noise=0.6, high=100)),
    KpiSpec("operations.inventory_days", "Inventory on hand", "days", BAND, LAST,
            Series(40, trend=-0.05, noise=1.8), band=(30, 45)),
    KpiSpec("operations.order_cycle_days", "Order cycle time", "days", DOWN, MEAN,
            Series(6.8, trend=-0.02, noise=0.35)),

    KpiSpec("support.tickets_opened", "Tickets opened", "count", DOWN, SUM,
            Series(900, trend=3, noise=35, decimals=0)),
    KpiSpec("support.csat_pct", "Customer satisfaction (CSAT)", "%", UP, MEAN,
            Series(86, trend=0.02, noise=0.6, high=100)),
    KpiSpec("support.first_response_hours", "First response time", "hours", DOWN, MEAN,
            Series(5.5, trend=-0.03, noise=0.35)),
    KpiSpec("support.backlog_tickets", "Open ticket backlog", "count", DOWN, LAST,
            Series(320, trend=-1.5, noise=22, decimals=0)),
    KpiSpec("support.first_contact_resolution_pct", "First-contact resolution", "%",
            UP, MEAN, Series(71, trend=0.1, noise=1.0, high=100)),
    KpiSpec("support.nps", "Net Promoter Score", "score", UP, MEAN,
            Series(32, trend=0.2, noise=2.5, decimals=0, low=-100, high=100),
            frequency=QUARTERLY),

    KpiSpec("finance.revenue", "Recognised revenue", "EUR", UP, SUM,
            Series(1_050_000, trend=8_500, noise=35_000, season=20_000, decimals=-3)),
    KpiSpec("finance.gross_margin_pct", "Gross margin", "%", UP, MEAN,
            Series(58, trend=-0.01, noise=0.35)),
    KpiSpec("finance.dso_days", "Days sales outstanding", "days", DOWN, LAST,
            Series(47, trend=-0.08, noise=2.0)),
    KpiSpec("finance.cash_balance", "Cash balance", "EUR", UP, LAST,
            Series(4_200_000, trend=25_000, noise=120_000, decimals=-3)),
    KpiSpec("finance.opex_variance_pct", "Opex variance to budget", "%", BAND, MEAN,
            Series(1.2, trend=-0.03, noise=0.9, low=-math.inf), band=(-2, 2)),

    KpiSpec("product.releases_shipped", "Releases shipped", "count", UP, SUM,
            Series(6, trend=0.05, noise=1.6, decimals=0)),
    KpiSpec("product.escaped_defects", "Escaped defects", "count", DOWN, SUM,
            Series(38, trend=-0.3, noise=5, decimals=0)),
    KpiSpec("product.uptime_pct", "Service uptime", "%", UP, MEAN,
            Series(99.86, trend=0.002, noise=0.03, decimals=2, high=100)),
    KpiSpec("product.feature_adoption_pct", "Feature adoption", "%", UP, MEAN,
            Series(34, trend=0.25, noise=1.4)),
    KpiSpec("product.roadmap_on_time_pct", "Roadmap items delivered on time", "%", UP,
            MEAN, Series(68, trend=0.2, noise=4, decimals=0, high=100)),
]

TRADE_OFFS = [
    TradeOff("marketing.leads", "sales.lead_response_hours", lag=0, per_unit=0.005,
             effect=Effect.HURTS,
             rationale="Every campaign wave floods the same six sales reps: each extra "
             "hundred leads adds about half an hour before a lead hears from us."),
    TradeOff("sales.discount_rate", "finance.gross_margin_pct", lag=0, per_unit=-0.5,
             effect=Effect.HELPS,
             rationale="Discounts come straight off the price: holding the average "
             "discount down protects gross margin in the same month."),
    TradeOff("sales.deals_closed", "support.tickets_opened", lag=1, per_unit=4.0,
             effect=Effect.HURTS,
             rationale="New customers open onboarding tickets in their first month: a "
             "record sales month is a record support month one month later."),
    TradeOff("operations.cost_per_order", "support.csat_pct", lag=2, per_unit=0.45,
             effect=Effect.HURTS,
             rationale="Cheaper carriers and thinner packaging save cost per order; "
             "the late and damaged deliveries show up in CSAT two months later."),
    TradeOff("product.releases_shipped", "support.first_contact_resolution_pct",
             lag=0, per_unit=-0.8, effect=Effect.HURTS,
             rationale="Agents learn about new features from customers: each extra "
             "release that month means more tickets they cannot solve at once."),
    # Nobody has declared this one: conflict detection should surface it.
    TradeOff("sales.deals_closed", "operations.on_time_delivery_pct", lag=1,
             per_unit=-0.05, effect=None,
             rationale="A big sales month queues up onboarding and deliveries."),
]

USERS = [
    UserSpec("admin", "Ada", "Admin", "superuser", is_superuser=True),
    UserSpec("cco", "Casey", "Duct", "CCO team", group=CCO_TEAM),
    UserSpec("sales_manager", "Sam", "Seller", "Silo manager of Sales",
             group=SILO_MANAGERS, manages=("sales",)),
    UserSpec("support_manager", "Sasha", "Helper", "Silo manager of Customer Support",
             group=SILO_MANAGERS, manages=("support",)),
    UserSpec("bi_reader", "Billie", "Reader", "BI reader", group=BI_READERS),
]
CCO_USERNAME = "cco"

CYCLES = [
    # (name, start, end, phase, budget)
    ("FY2026", dt.date(2026, 1, 1), dt.date(2026, 12, 31), Phase.ALIGNING, 2_500_000),
    ("FY2027", dt.date(2027, 1, 1), dt.date(2027, 12, 31), Phase.DRAFT, 3_000_000),
]
PLANNED_CYCLE = "FY2026"
GOAL_FIRST_PERIOD = dt.date(2026, 1, 1)
GOAL_DUE_PERIOD = dt.date(2026, 12, 1)
BASELINE_YEAR = 2025

GOALS = [
    GoalSpec("marketing.leads", "Grow qualified leads 15%", change=15),
    GoalSpec("marketing.cost_per_lead", "Cut cost per lead 8%", change=-8),
    GoalSpec("sales.deals_closed", "Close 12% more deals", change=12,
             owner="sales_manager"),
    GoalSpec("sales.lead_response_hours", "Answer leads 25% faster", change=-25,
             owner="sales_manager"),
    GoalSpec("operations.on_time_delivery_pct", "Deliver on time 2 points more often",
             change=2, in_points=True),
    GoalSpec("operations.inventory_days", "Keep 32 to 40 days of inventory",
             band=(32, 40)),
    GoalSpec("support.csat_pct", "Lift CSAT by 3 points", change=3, in_points=True,
             owner="support_manager"),
    GoalSpec("support.tickets_opened", "Open 10% fewer tickets", change=-10,
             owner="support_manager"),
    GoalSpec("finance.gross_margin_pct", "Add 1.5 points of gross margin", change=1.5,
             in_points=True),
    GoalSpec("finance.opex_variance_pct", "Land opex within 1.5% of budget",
             band=(-1.5, 1.5)),
    GoalSpec("product.escaped_defects", "Let 20% fewer defects escape", change=-20),
    GoalSpec("product.uptime_pct", "Run at 99.95% uptime", target=99.95),
]

SHARED_GOALS = [
    # (name, description, {KPI of a contributing goal: weight})
    ("Profitable growth", "Grow the customer base without buying it with discounts.",
     {"sales.deals_closed": 0.5, "finance.gross_margin_pct": 0.5}),
    ("Customers who stay",
     "Keep the customers we win: deliver on time and leave them satisfied.",
     {"support.csat_pct": 0.6, "operations.on_time_delivery_pct": 0.4}),
]

PRIORITIES = [
    PrioritySpec(
        1, "Onboard every new customer within a week",
        "Sales hands over a complete order; operations and support onboard together.",
        accountable="operations",
        roles={"operations": Role.ACCOUNTABLE, "sales": Role.RESPONSIBLE,
               "support": Role.RESPONSIBLE, "finance": Role.INFORMED},
        funding={"operations": 600_000, "support": 250_000},
    ),
    PrioritySpec(
        2, "Stop buying growth with discounts",
        "Discounts above 12% need a finance sign-off and a reason in the CRM.",
        accountable="finance",
        roles={"finance": Role.ACCOUNTABLE, "sales": Role.RESPONSIBLE,
               "marketing": Role.CONSULTED, "product": Role.INFORMED},
        funding={"sales": 150_000, "finance": 100_000},
    ),
    PrioritySpec(
        3, "Answer every lead within four hours",
        "Marketing paces campaigns to the capacity sales has to follow up.",
        accountable="sales",
        roles={"sales": Role.ACCOUNTABLE, "marketing": Role.RESPONSIBLE,
               "support": Role.INFORMED},
        funding={"sales": 300_000, "marketing": 200_000},
    ),
]
SIGN_OFFS = [
    # (silo, user, note)
    ("sales", "sales_manager", "Sales agrees, provided the discount rule starts Q2."),
    ("support", "support_manager", "Support agrees: onboarding is our top ask."),
]
# fmt: on


MAX_LAG = max(trade_off.lag for trade_off in TRADE_OFFS)


def _months_before(day: dt.date, count: int) -> dt.date:
    month_index = day.year * 12 + day.month - 1 - count
    return dt.date(month_index // 12, month_index % 12 + 1, 1)


def demo_periods(frequency: str) -> list[dt.date]:
    """Return the demo's periods of ``frequency`` (quarters that start inside it)."""
    return [
        period
        for period in periods.period_range(FIRST_PERIOD, LAST_PERIOD, MONTHLY)
        if periods.is_period_start(period, frequency)
    ]


def demo_series() -> dict[str, dict[dt.date, float]]:
    """Return every demo KPI's values by period; the same on every call and machine."""
    leaders = {trade_off.leader for trade_off in TRADE_OFFS}
    followers = {trade_off.follower for trade_off in TRADE_OFFS}
    assert not leaders & followers, "a follower must not lead: values build in order"
    specs = {spec.key: spec for spec in KPIS}
    # Months before the first period give lagged followers a leader value to follow.
    months = list(
        periods.period_range(
            _months_before(FIRST_PERIOD, MAX_LAG), LAST_PERIOD, MONTHLY
        )
    )
    values: dict[str, list[float | None]] = {}
    for spec in sorted(KPIS, key=lambda spec: spec.key in followers):
        # One generator per KPI: adding a KPI leaves the others' values as they were.
        rng = random.Random(f"{RANDOM_SEED}:{spec.key}")
        series = spec.series
        generated: list[float | None] = []
        noise = rng.gauss(0, series.noise)
        innovation = series.noise * math.sqrt(1 - NOISE_PERSISTENCE**2)
        for index, month in enumerate(months):
            if not periods.is_period_start(month, spec.frequency):
                generated.append(None)
                continue
            noise = NOISE_PERSISTENCE * noise + rng.gauss(0, innovation)
            value = series.expected(index - MAX_LAG, month.month) + noise
            for trade_off in TRADE_OFFS:
                if trade_off.follower == spec.key and index >= trade_off.lag:
                    leader_index = index - trade_off.lag
                    leader_value = values[trade_off.leader][leader_index]
                    leader_expected = specs[trade_off.leader].series.expected(
                        leader_index - MAX_LAG, months[leader_index].month
                    )
                    value += trade_off.per_unit * (leader_value - leader_expected)
            value = min(series.high, max(series.low, value))
            generated.append(round(value, series.decimals) + 0.0)
        values[spec.key] = generated
    return {
        key: {
            month: value
            for month, value in zip(months, generated, strict=True)
            if value is not None and month >= FIRST_PERIOD
        }
        for key, generated in values.items()
    }


def goal_values(
    spec: GoalSpec, kpi: KpiSpec, series: dict[dt.date, float]
) -> dict[str, float | None]:
    """Return a goal's baseline (its KPI over the baseline year) and target or band."""
    in_year = [
        value for period, value in series.items() if period.year == BASELINE_YEAR
    ]
    aggregated = progress.aggregate(in_year, kpi.aggregation)
    assert aggregated is not None
    # A mean of rounded values earns one more decimal than the values themselves.
    decimals = max(kpi.series.decimals, 0)
    baseline_decimals = decimals + 1 if kpi.aggregation == MEAN else decimals
    baseline = round(aggregated, baseline_decimals) + 0.0
    if spec.band is not None:
        return {
            "baseline": baseline,
            "target": None,
            "target_low": float(spec.band[0]),
            "target_high": float(spec.band[1]),
        }
    if spec.target is not None:
        target = spec.target
    elif spec.in_points:
        target = baseline + spec.change
    else:
        target = baseline * (1 + spec.change / 100)
    return {
        "baseline": baseline,
        "target": round(target, decimals) + 0.0,
        "target_low": None,
        "target_high": None,
    }


@dataclass
class StepCounts:
    """How many rows a step created, updated, or found as they should be."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def __str__(self) -> str:
        return (
            f"{self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged"
        )


@dataclass
class SeedReport:
    """The counts of every step of a seed run, in order, and the demo logins."""

    steps: dict[str, StepCounts] = field(default_factory=dict)
    logins: list[tuple[str, str]] = field(default_factory=list)
    password: str = DEMO_PASSWORD

    @property
    def changed_anything(self) -> bool:
        return any(step.created or step.updated for step in self.steps.values())


class DemoSeedError(Exception):
    """The database is not ready for the demo (for example, not migrated)."""


ModelT = TypeVar("ModelT", bound=models.Model)


def _differs(instance: models.Model, name: str, wanted: Any) -> bool:
    model_field = instance._meta.get_field(name)
    if model_field.many_to_one:
        # Compare ids: reading the related object would cost a query per field.
        current = getattr(instance, model_field.attname)
        return current != (wanted.pk if wanted is not None else None)
    return getattr(instance, name) != wanted


def _sync(
    model: type[ModelT],
    counts: StepCounts,
    *,
    lookup: dict[str, Any],
    values: dict[str, Any],
) -> ModelT:
    """Return the row of ``model`` found by ``lookup``, made to hold ``values``.

    Create it when missing; save it only when a value differs, because every save
    writes a history row.
    """
    instance = model._default_manager.filter(**lookup).first()
    if instance is None:
        instance = model(**lookup, **values)
        counts.created += 1
    else:
        changed = [
            name for name, wanted in values.items() if _differs(instance, name, wanted)
        ]
        if not changed:
            counts.unchanged += 1
            return instance
        for name in changed:
            setattr(instance, name, values[name])
        counts.updated += 1
    if isinstance(instance, ImpactLink):
        instance.copy_silos()
    instance.full_clean()
    instance._change_reason = SOURCE  # type: ignore[attr-defined]
    instance.save()
    return instance


def _add_missing(
    related: Any, wanted: Iterable[models.Model], counts: StepCounts
) -> None:
    """Add to the many-to-many ``related`` manager only the rows it lacks.

    ``add`` of rows already present still sends m2m_changed, which simple-history
    records as a change.
    """
    wanted = list(wanted)
    present = set(related.values_list("pk", flat=True))
    missing = [row for row in wanted if row.pk not in present]
    if missing:
        related.add(*missing)
    counts.created += len(missing)
    counts.unchanged += len(wanted) - len(missing)


def _seed_users(report: SeedReport) -> dict[str, AbstractUser]:
    groups = {
        group.name: group
        for group in Group.objects.filter(
            name__in=[CCO_TEAM, SILO_MANAGERS, BI_READERS]
        )
    }
    missing = {CCO_TEAM, SILO_MANAGERS, BI_READERS} - set(groups)
    if missing:
        raise DemoSeedError(
            f"The role group(s) {', '.join(sorted(missing))} do not exist; "
            "run `python manage.py migrate` first."
        )
    user_model = get_user_model()
    user_counts = report.steps.setdefault("Users", StepCounts())
    membership_counts = report.steps.setdefault("Role memberships", StepCounts())
    users: dict[str, AbstractUser] = {}
    for spec in USERS:
        values = {
            "first_name": spec.first_name,
            "last_name": spec.last_name,
            "email": f"{spec.username}@example.com",
            "is_staff": True,
            "is_superuser": spec.is_superuser,
            "is_active": True,
        }
        user = user_model.objects.filter(username=spec.username).first()
        if user is None:
            user = user_model(username=spec.username, **values)
            # Only on creation: setting it again would change the hash on every run.
            user.set_password(DEMO_PASSWORD)
            user.save()
            user_counts.created += 1
        else:
            changed = [
                name for name, wanted in values.items() if getattr(user, name) != wanted
            ]
            for name in changed:
                setattr(user, name, values[name])
            if changed:
                user.save(update_fields=changed)
                user_counts.updated += 1
            else:
                user_counts.unchanged += 1
        if spec.group is not None:
            _add_missing(user.groups, [groups[spec.group]], membership_counts)
        users[spec.username] = user
        report.logins.append((spec.username, spec.role))
    return users


def _seed_silos(report: SeedReport, users: dict[str, AbstractUser]) -> dict[str, Silo]:
    counts = report.steps.setdefault("Silos", StepCounts())
    manager_counts = report.steps.setdefault("Silo managers", StepCounts())
    silos = {
        spec.slug: _sync(
            Silo,
            counts,
            lookup={"slug": spec.slug},
            values={
                "name": spec.name,
                "position": spec.position,
                "description": spec.description,
            },
        )
        for spec in SILOS
    }
    for spec in USERS:
        for slug in spec.manages:
            _add_missing(silos[slug].managers, [users[spec.username]], manager_counts)
    return silos


def _seed_kpis(report: SeedReport, silos: dict[str, Silo]) -> dict[str, KPI]:
    counts = report.steps.setdefault("KPIs", StepCounts())
    return {
        spec.key: _sync(
            KPI,
            counts,
            lookup={"key": spec.key},
            values={
                "silo": silos[spec.silo_slug],
                "slug": spec.slug,
                "name": spec.name,
                "unit": spec.unit,
                "direction": spec.direction,
                "band_low": float(spec.band[0]) if spec.band else None,
                "band_high": float(spec.band[1]) if spec.band else None,
                "frequency": spec.frequency,
                "aggregation": spec.aggregation,
                "is_active": True,
            },
        )
        for spec in KPIS
    }


def _seed_measurements(
    report: SeedReport,
    kpis: dict[str, KPI],
    series: dict[str, dict[dt.date, float]],
    stdout_progress: Callable[[str], None],
) -> None:
    """Write measurements with bulk queries: Measurement keeps no history to bypass."""
    total = report.steps.setdefault("Measurements", StepCounts())
    for silo_spec in SILOS:
        counts = StepCounts()
        silo_kpis = [
            kpis[spec.key] for spec in KPIS if spec.silo_slug == silo_spec.slug
        ]
        existing = {
            (measurement.kpi_id, measurement.period): measurement
            for measurement in Measurement.objects.filter(
                kpi__in=silo_kpis, period__gte=FIRST_PERIOD, period__lte=LAST_PERIOD
            ).only("id", "kpi_id", "period", "value", "source")
        }
        to_create: list[Measurement] = []
        to_update: list[Measurement] = []
        now = timezone.now()
        for kpi in silo_kpis:
            for period, value in series[kpi.key].items():
                measurement = existing.get((kpi.pk, period))
                if measurement is None:
                    to_create.append(
                        Measurement(kpi=kpi, period=period, value=value, source=SOURCE)
                    )
                elif measurement.value != value or measurement.source != SOURCE:
                    measurement.value = value
                    measurement.source = SOURCE
                    measurement.updated_at = now
                    to_update.append(measurement)
                else:
                    counts.unchanged += 1
        Measurement.objects.bulk_create(to_create, batch_size=500)
        Measurement.objects.bulk_update(
            to_update, ["value", "source", "updated_at"], batch_size=500
        )
        counts.created = len(to_create)
        counts.updated = len(to_update)
        stdout_progress(f"  measurements of {silo_spec.name}: {counts}")
        total.created += counts.created
        total.updated += counts.updated
        total.unchanged += counts.unchanged


def _seed_links(
    report: SeedReport, kpis: dict[str, KPI], users: dict[str, AbstractUser]
) -> None:
    counts = report.steps.setdefault("Impact links", StepCounts())
    for trade_off in TRADE_OFFS:
        if trade_off.effect is None:
            continue
        _sync(
            ImpactLink,
            counts,
            lookup={
                "leader_kpi": kpis[trade_off.leader],
                "affected_kpi": kpis[trade_off.follower],
            },
            values={
                "effect": trade_off.effect,
                "lag": trade_off.lag,
                "rationale": trade_off.rationale,
                "declared_by": users[CCO_USERNAME],
            },
        )


def _seed_cycles(
    report: SeedReport, silos: dict[str, Silo]
) -> dict[str, PlanningCycle]:
    counts = report.steps.setdefault("Planning cycles", StepCounts())
    participant_counts = report.steps.setdefault("Cycle participants", StepCounts())
    cycles = {}
    for name, start, end, phase, budget in CYCLES:
        cycle = _sync(
            PlanningCycle,
            counts,
            lookup={"name": name},
            values={
                "start_date": start,
                "end_date": end,
                "phase": phase,
                "budget": Decimal(budget),
                "currency": "EUR",
            },
        )
        _add_missing(cycle.silos, silos.values(), participant_counts)
        cycles[name] = cycle
    return cycles


def _seed_goals(
    report: SeedReport,
    cycle: PlanningCycle,
    kpis: dict[str, KPI],
    series: dict[str, dict[dt.date, float]],
    users: dict[str, AbstractUser],
) -> dict[str, Goal]:
    counts = report.steps.setdefault("Goals", StepCounts())
    specs = {spec.key: spec for spec in KPIS}
    goals = {}
    for spec in GOALS:
        goals[spec.kpi] = _sync(
            Goal,
            counts,
            lookup={"cycle": cycle, "kpi": kpis[spec.kpi]},
            values={
                "name": spec.name,
                **goal_values(spec, specs[spec.kpi], series[spec.kpi]),
                "period_start": GOAL_FIRST_PERIOD,
                "period_end": GOAL_DUE_PERIOD,
                "owner": users[spec.owner] if spec.owner else None,
            },
        )
    return goals


def _seed_shared_goals(
    report: SeedReport,
    cycle: PlanningCycle,
    goals: dict[str, Goal],
    users: dict[str, AbstractUser],
) -> None:
    counts = report.steps.setdefault("Shared goals", StepCounts())
    contribution_counts = report.steps.setdefault("Contributions", StepCounts())
    for name, description, weights in SHARED_GOALS:
        shared_goal = _sync(
            SharedGoal,
            counts,
            lookup={"cycle": cycle, "name": name},
            values={"description": description, "owner": users[CCO_USERNAME]},
        )
        for kpi_key, weight in weights.items():
            _sync(
                Contribution,
                contribution_counts,
                lookup={"shared_goal": shared_goal, "goal": goals[kpi_key]},
                values={"weight": weight},
            )


def _seed_plan(
    report: SeedReport,
    cycle: PlanningCycle,
    silos: dict[str, Silo],
    users: dict[str, AbstractUser],
) -> None:
    priority_counts = report.steps.setdefault("Priorities", StepCounts())
    role_counts = report.steps.setdefault("Responsibilities", StepCounts())
    funding_counts = report.steps.setdefault("Funding allocations", StepCounts())
    sign_off_counts = report.steps.setdefault("Sign-offs", StepCounts())
    for spec in PRIORITIES:
        priority = _sync(
            Priority,
            priority_counts,
            lookup={"cycle": cycle, "rank": spec.rank},
            values={
                "title": spec.title,
                "description": spec.description,
                "accountable_silo": silos[spec.accountable],
            },
        )
        for slug, role in spec.roles.items():
            _sync(
                Responsibility,
                role_counts,
                lookup={"priority": priority, "silo": silos[slug]},
                values={"role": role},
            )
        for slug, amount in spec.funding.items():
            _sync(
                FundingAllocation,
                funding_counts,
                lookup={"priority": priority, "silo": silos[slug]},
                values={"amount": Decimal(amount)},
            )
    for slug, username, note in SIGN_OFFS:
        _sync(
            SignOff,
            sign_off_counts,
            lookup={"cycle": cycle, "silo": silos[slug]},
            values={"user": users[username], "note": note},
        )


def demo_seed(
    *, stdout_progress: Callable[[str], None] = lambda message: None
) -> SeedReport:
    """Create or repair the demo company, its measurements, links, plans and users.

    Idempotent: a second run finds every row as it should be and writes nothing.
    ``stdout_progress`` receives a line per step (and per silo while measurements are
    written). Raise DemoSeedError when the database lacks the role groups.
    """
    report = SeedReport()
    announced: set[str] = set()

    def announce() -> None:
        for name, counts in report.steps.items():
            if name not in announced:
                announced.add(name)
                stdout_progress(f"{name + ':':<22}{counts}")

    series = demo_series()
    with transaction.atomic():
        users = _seed_users(report)
        announce()
        silos = _seed_silos(report, users)
        announce()
        kpis = _seed_kpis(report, silos)
        announce()
        _seed_measurements(report, kpis, series, stdout_progress)
        announce()
        _seed_links(report, kpis, users)
        announce()
        cycles = _seed_cycles(report, silos)
        announce()
        planned = cycles[PLANNED_CYCLE]
        goals = _seed_goals(report, planned, kpis, series, users)
        announce()
        _seed_shared_goals(report, planned, goals, users)
        announce()
        _seed_plan(report, planned, silos, users)
        announce()
    return report
