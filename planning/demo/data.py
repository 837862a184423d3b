"""The demo company as data: its silos, KPIs, trade-offs, users, plans and goals."""

import datetime as dt
import math
from dataclasses import dataclass

from core.roles import BI_READERS, CCO_TEAM, SILO_MANAGERS
from cycles.models import Phase
from metrics import periods
from metrics.models import Aggregation, Direction, Effect
from planning.models import Role

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
    # Every silo has a manager, so that the demo cycle can be signed off and committed
    # through the pages alone.
    UserSpec("marketing_manager", "Morgan", "Reach", "Silo manager of Marketing",
             group=SILO_MANAGERS, manages=("marketing",)),
    UserSpec("operations_manager", "Oli", "Dispatch",
             "Silo manager of Operations & Delivery",
             group=SILO_MANAGERS, manages=("operations",)),
    UserSpec("finance_manager", "Frankie", "Ledger", "Silo manager of Finance",
             group=SILO_MANAGERS, manages=("finance",)),
    UserSpec("product_manager", "Pat", "Builder", "Silo manager of Product & Engineering",
             group=SILO_MANAGERS, manages=("product",)),
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

GUARDRAILS = [
    # (shared goal, KPI, tolerated worsening from the goal's baseline, note): growth may
    # not be bought with Support's customer satisfaction.
    ("Profitable growth", "support.csat_pct", 2.0,
     "Support CSAT may not fall more than 2 points"),
]

READINESS = {
    # statement number -> answer (planning.readiness.STATEMENTS), for the FY2026 cycle
    1: "yes", 2: "yes", 3: "partly", 4: "yes", 5: "partly", 6: "yes",
    7: "partly", 8: "partly", 9: "yes", 10: "no", 11: "no",
}
# fmt: on

#: A conversation on the declared conflict of a link (leader KPI, affected KPI): the two
#: silos' managers talk it over on the conflict's page.
COMMENTS = (
    (
        "sales.deals_closed",
        "support.tickets_opened",
        [
            (
                "support_manager",
                "Every big signing month is followed by a month of onboarding tickets: "
                "most ask for data Sales already had at the deal. Can the hand-over carry it?",
            ),
            (
                "sales_manager",
                "Fair. We will add the onboarding checklist to the order form from next "
                "month; can Support tell us which fields are missing most often?",
            ),
        ],
    ),
)
