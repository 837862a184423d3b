"""Synthetic companies whose data looks like a real company's, with ground truth.

Pure numpy (the ORM loader at the bottom imports Django lazily), so that the accuracy
benchmark (benchmarks/detection_accuracy.py) and the tests use the very same companies.

Each company has the six features of real KPI data that issue 11 lists:

1. **Common drivers.** Market demand (a trending AR(1) index) moves the volume KPIs of
   five silos: sessions, leads, deals, pipeline, throughput and revenue rise with it
   (good for their silos) while the ticket backlog, first-response hours, order cycle
   hours and utilisation rise too (bad for theirs).
2. **Seasonality.** A yearly shape (a Q4 peak, a summer dip) on the same KPIs.
3. **Trailing averages.** CSAT (3 months), NPS, brand awareness (6 months) and the app
   rating (3 months) are published as trailing averages of a latent level.
4. **One-off events, typos and reorgs.** A cost reclassification that shifts two KPIs of
   different silos in the same month; a spike in one KPI followed a month later by a
   dip in another's; a value typed ten times too large; a reorg's level shift.
5. **Mixed frequencies.** Forecast accuracy is quarterly (and follows quota attainment
   a quarter later); tickets opened are weekly.
6. **Uneven histories.** 10-15% of the values missing at random, two KPIs that start 18
   and 24 months after the others, companies of 24 to 60 months.

Ground truth: the planted cross-silo conflicts (``Company.planted``) with their lags in
the follower's grid and their effects in raw units: the change of the follower's value
per unit change of the leader's beyond what the drivers explain (the leader aggregated
to the follower's grid when it is finer), a synergy, a trade-off inside one silo and independent opposite trends
(``Company.traps``), none of which is a cross-silo conflict.

A *clean* company (``clean_company``) is what detection was first tested on:
independent random walks with planted effects and nothing else.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass, field

import numpy as np

SILOS = {
    "marketing": 10,
    "sales": 20,
    "operations": 30,
    "support": 40,
    "finance": 50,
    "product": 60,
}
#: Month-of-year shape of the season (January first): a summer dip and a Q4 peak.
SEASON = np.array([-0.3, -0.6, 0.1, 0.2, 0.0, -0.5, -1.2, -0.9, 0.3, 0.7, 1.0, 1.6])


@dataclass(frozen=True)
class KPISpec:
    """A KPI as ducttape stores it."""

    key: str
    name: str
    unit: str
    direction: str = "higher_is_better"
    frequency: str = "monthly"
    aggregation: str = "sum"

    @property
    def silo(self) -> str:
        return self.key.split(".")[0]


@dataclass(frozen=True)
class Planted:
    """A planted effect: ``follower`` moves by ``effect`` (its raw units) per unit raw
    change of ``leader`` ``lag`` periods of the follower's grid earlier."""

    leader: str
    follower: str
    lag: int
    effect: float
    grid: str = "monthly"
    what: str = ""


@dataclass
class Company:
    """KPIs, their stored values (period -> value) and the ground truth."""

    seed: int
    months: int
    start: dt.date
    kpis: dict[str, KPISpec] = field(default_factory=dict)
    values: dict[str, dict[dt.date, float]] = field(default_factory=dict)
    planted: list[Planted] = field(default_factory=list)
    traps: list[Planted] = field(default_factory=list)

    def series(self) -> list[tuple[KPISpec, list[dt.date], list[float]]]:
        """Every KPI with its periods and values in period order."""
        return [
            (
                spec,
                sorted(self.values[key]),
                [self.values[key][p] for p in sorted(self.values[key])],
            )
            for key, spec in self.kpis.items()
        ]

    def as_series(self) -> tuple[list[object], dict[int, str]]:
        """The company as detection reads it (metrics.detection.grids.Series), with KPI
        ids standing for the keys, and the keys by id."""
        from metrics.detection.grids import Series

        chain = sorted(self.kpis, key=lambda key: (SILOS[self.kpis[key].silo], key))
        silo_ids = {slug: index for index, slug in enumerate(SILOS)}
        series, keys = [], {}
        for kpi_id, (spec, days, values) in enumerate(self.series(), start=1):
            if spec.direction == "target_band" or not days:
                continue
            keys[kpi_id] = spec.key
            series.append(
                Series(
                    kpi_id=kpi_id,
                    silo_id=silo_ids[spec.silo],
                    frequency=spec.frequency,
                    aggregation=spec.aggregation,
                    sign=1.0 if spec.direction == "higher_is_better" else -1.0,
                    rank=chain.index(spec.key),
                    periods=days,
                    values=values,
                )
            )
        return series, keys

    def save(self) -> dict[str, object]:
        """Store the company through the ORM; return the KPIs by key."""
        from metrics.models import KPI, Measurement, Silo

        silos = {}
        for slug in sorted({spec.silo for spec in self.kpis.values()}):
            silos[slug], _ = Silo.objects.update_or_create(
                slug=slug, defaults={"name": slug.title(), "position": SILOS[slug]}
            )
        stored = {}
        rows = []
        for key, spec in self.kpis.items():
            stored[key] = KPI.objects.create(
                silo=silos[spec.silo],
                slug=key.split(".")[1],
                name=spec.name,
                unit=spec.unit,
                direction=spec.direction,
                frequency=spec.frequency,
                aggregation=spec.aggregation,
            )
            rows += [
                Measurement(kpi=stored[key], period=period, value=value)
                for period, value in self.values[key].items()
            ]
        Measurement.objects.bulk_create(rows, batch_size=5000)
        return stored


def month_start(start: dt.date, index: int) -> dt.date:
    years, month = divmod(start.month - 1 + index, 12)
    return dt.date(start.year + years, month + 1, 1)


class _Builder:
    """Latent monthly changes, then what is published (averages, quarters, weeks)."""

    def __init__(self, seed: int, months: int, start: dt.date) -> None:
        self.rng = np.random.default_rng(seed)
        self.months = months
        self.start = start
        self.company = Company(seed=seed, months=months, start=start)
        # The company-wide drivers, as changes per month.
        noise = self.rng.normal(size=months)
        demand = np.empty(months)
        demand[0] = noise[0]
        for t in range(1, months):
            demand[t] = 0.3 * demand[t - 1] + noise[t]
        self.demand = 0.3 + demand
        calendar_months = np.array([(start.month - 1 + t) % 12 for t in range(months)])
        season_level = SEASON[calendar_months]
        self.season = np.diff(season_level, prepend=season_level[0])
        self.changes: dict[str, np.ndarray] = {}
        # Each KPI's own change, beyond what the drivers explain.
        self.own: dict[str, np.ndarray] = {}
        self.base: dict[str, float] = {}

    def kpi(
        self,
        spec: KPISpec,
        *,
        base: float,
        noise: float,
        demand: float = 0.0,
        season: float = 0.0,
        trend: float = 0.0,
    ) -> None:
        """A latent monthly level: base + trend + drivers + its own noise (changes)."""
        self.company.kpis[spec.key] = spec
        self.base[spec.key] = base
        self.own[spec.key] = noise * self.rng.normal(size=self.months)
        self.changes[spec.key] = (
            trend + demand * self.demand + season * self.season + self.own[spec.key]
        )

    def plant(
        self,
        leader: str,
        follower: str,
        *,
        lag: int,
        effect: float,
        what: str,
        truth: bool = True,
    ) -> None:
        """Add ``effect`` x the leader's own change (beyond what demand and the season
        explain) ``lag`` months earlier to the follower's change."""
        source = self.own[leader]
        self.changes[follower][lag:] += effect * source[: self.months - lag]
        self.own[follower][lag:] += effect * source[: self.months - lag]
        record = Planted(leader, follower, lag, effect, "monthly", what)
        (self.company.planted if truth else self.company.traps).append(record)

    def level(self, key: str) -> np.ndarray:
        return self.base[key] + np.cumsum(self.changes[key])

    def publish_monthly(
        self, key: str, level: np.ndarray, gaps: float, first: int = 0
    ) -> None:
        present = self.rng.random(self.months) >= gaps
        present[:first] = False
        self.company.values[key] = {
            month_start(self.start, t): round(float(level[t]), 4)
            for t in range(self.months)
            if present[t] and np.isfinite(level[t])
        }


def messy_company(
    seed: int, months: int | None = None, gaps: float | None = None
) -> Company:
    """A company with every feature of real KPI data (see the module docstring)."""
    rng = np.random.default_rng(seed + 10_000)
    months = months or int(rng.choice([60, 48, 36, 24, 48, 60]))
    start = dt.date(2021, 1 + int(rng.integers(0, 12)), 1)
    b = _Builder(seed, months, start)
    drawn = float(rng.uniform(0.10, 0.15))
    gaps = drawn if gaps is None else gaps

    def spec(
        key,
        name,
        unit,
        direction="higher_is_better",
        aggregation="sum",
        frequency="monthly",
    ):
        return KPISpec(key, name, unit, direction, frequency, aggregation)

    # Volume KPIs: demand and the season move them all (trap 1 and 2).
    b.kpi(
        spec("marketing.web_sessions", "Web sessions", "sessions"),
        base=50_000,
        noise=900,
        demand=2_500,
        season=3_000,
        trend=150,
    )
    b.kpi(
        spec("marketing.leads", "Leads", "leads"),
        base=2_000,
        noise=40,
        demand=100,
        season=120,
        trend=5,
    )
    b.kpi(
        spec("marketing.campaigns", "Campaigns launched", "campaigns"),
        base=12,
        noise=1.5,
    )
    b.kpi(
        spec(
            "marketing.cost_per_lead", "Cost per lead", "EUR", "lower_is_better", "mean"
        ),
        base=45,
        noise=1.2,
    )
    b.kpi(
        spec("sales.deals_closed", "Deals closed", "deals"),
        base=400,
        noise=12,
        demand=20,
        season=25,
        trend=2,
    )
    b.kpi(
        spec("sales.pipeline", "Pipeline", "kEUR", aggregation="last"),
        base=12_000,
        noise=250,
        demand=500,
        season=300,
        trend=40,
    )
    b.kpi(
        spec("sales.quota_attainment", "Quota attainment", "%", aggregation="mean"),
        base=95,
        noise=2.0,
    )
    b.kpi(
        spec("sales.discount_rate", "Discount rate", "%", "lower_is_better", "mean"),
        base=12,
        noise=0.4,
    )
    b.kpi(
        spec("sales.win_rate", "Win rate", "%", aggregation="mean"), base=28, noise=0.8
    )
    b.kpi(
        spec("operations.throughput", "Orders shipped", "orders"),
        base=9_000,
        noise=200,
        demand=450,
        season=500,
        trend=30,
    )
    b.kpi(
        spec(
            "operations.order_cycle_hours",
            "Order cycle time",
            "hours",
            "lower_is_better",
            "mean",
        ),
        base=30,
        noise=0.6,
        demand=1.2,
        season=1.5,
    )
    b.kpi(
        spec(
            "operations.utilisation",
            "Warehouse utilisation",
            "%",
            "lower_is_better",
            "mean",
        ),
        base=70,
        noise=0.8,
        demand=1.6,
        season=2.0,
    )
    b.kpi(
        spec(
            "operations.cost_per_order",
            "Cost per order",
            "EUR",
            "lower_is_better",
            "mean",
        ),
        base=18,
        noise=0.35,
    )
    b.kpi(
        spec("operations.on_time", "On-time delivery", "%", aggregation="mean"),
        base=92,
        noise=0.7,
    )
    b.kpi(
        spec(
            "support.ticket_backlog",
            "Ticket backlog",
            "tickets",
            "lower_is_better",
            "last",
        ),
        base=900,
        noise=18,
        demand=30,
        season=40,
    )
    b.kpi(
        spec(
            "support.first_response_hours",
            "First response time",
            "hours",
            "lower_is_better",
            "mean",
        ),
        base=6,
        noise=0.15,
        demand=0.3,
        season=0.35,
    )
    b.kpi(
        spec(
            "support.first_contact_resolution",
            "First-contact resolution",
            "%",
            aggregation="mean",
        ),
        base=72,
        noise=0.9,
    )
    b.kpi(
        spec("support.csat", "CSAT (3-month average)", "points", aggregation="mean"),
        base=82,
        noise=0.6,
    )
    b.kpi(
        spec("support.nps", "NPS (6-month average)", "points", aggregation="mean"),
        base=35,
        noise=1.2,
    )
    b.kpi(
        spec("finance.revenue", "Revenue", "kEUR"),
        base=20_000,
        noise=300,
        demand=700,
        season=800,
        trend=60,
    )
    b.kpi(
        spec("finance.gross_margin", "Gross margin", "%", aggregation="mean"),
        base=38,
        noise=0.5,
    )
    b.kpi(
        spec(
            "finance.dso", "Days sales outstanding", "days", "lower_is_better", "mean"
        ),
        base=45,
        noise=1.0,
    )
    b.kpi(
        spec("finance.opex", "Operating expenses", "kEUR", "lower_is_better"),
        base=8_000,
        noise=90,
        trend=45,
    )
    b.kpi(spec("product.releases", "Releases", "releases"), base=20, noise=2.0)
    b.kpi(
        spec("product.features_shipped", "Features shipped", "features"),
        base=30,
        noise=1.5,
        trend=1.2,
    )
    b.kpi(
        spec(
            "product.app_rating",
            "App rating (3-month average)",
            "stars",
            aggregation="mean",
        ),
        base=4.1,
        noise=0.05,
    )
    b.kpi(
        spec(
            "marketing.brand_awareness",
            "Brand awareness (6-month average)",
            "%",
            aggregation="mean",
        ),
        base=40,
        noise=0.7,
    )

    # The planted conflicts, one per lag 0..3 (monthly), effects in raw units.
    b.plant(
        "marketing.campaigns",
        "sales.win_rate",
        lag=0,
        effect=-1.5,
        what="more campaigns, a lower win rate the same month",
    )
    b.plant(
        "sales.deals_closed",
        "support.ticket_backlog",
        lag=1,
        effect=4.2,
        what="deals above demand, a higher backlog a month later",
    )
    b.plant(
        "operations.cost_per_order",
        "support.csat",
        lag=2,
        effect=4.5,
        what="cheaper orders, lower CSAT two months later (trailing average)",
    )
    b.plant(
        "marketing.campaigns",
        "operations.order_cycle_hours",
        lag=3,
        effect=1.1,
        what="more campaigns, slower orders three months later",
    )
    # Traps that are not cross-silo conflicts.
    b.plant(
        "operations.on_time",
        "support.nps",
        lag=1,
        effect=1.3,
        truth=False,
        what="synergy: on time, higher NPS",
    )
    b.plant(
        "sales.deals_closed",
        "sales.discount_rate",
        lag=0,
        effect=0.025,
        truth=False,
        what="a trade-off inside Sales",
    )
    b.company.traps.append(
        Planted(
            "product.features_shipped",
            "finance.opex",
            0,
            0.0,
            what="independent opposite trends",
        )
    )

    company = b.company
    levels = {key: b.level(key) for key in company.kpis}

    # One-off events (trap 4): a cost reclassification shifts two KPIs for good in the
    # same month; a spike in one KPI, a dip in another's a month later; a typo; a reorg.
    shock = int(rng.integers(months // 3, 2 * months // 3))
    levels["operations.cost_per_order"][shock:] += 4.0  # worse
    levels["finance.gross_margin"][shock:] += 4.0  # better
    spike = int(rng.integers(2, months - 3))
    levels["marketing.cost_per_lead"][spike] -= 12.0  # better, once
    levels["sales.win_rate"][spike + 1] -= 9.0  # worse, once
    typo = int(rng.integers(1, months - 1))
    levels["finance.dso"][typo] *= 10
    reorg = int(rng.integers(months // 4, 3 * months // 4))
    levels["support.first_response_hours"][reorg:] -= 1.8

    # Trailing averages (trap 3): what is published is the average of the last months.
    for key, window in (
        ("support.csat", 3),
        ("product.app_rating", 3),
        ("support.nps", 6),
        ("marketing.brand_awareness", 6),
    ):
        latent = levels[key]
        published = np.full(months, np.nan)
        for t in range(window - 1, months):
            published[t] = latent[t - window + 1 : t + 1].mean()
        levels[key] = published

    # Uneven histories: gaps everywhere, two KPIs that start late.
    late = {"finance.dso": 18, "operations.utilisation": 24} if months >= 48 else {}
    for key in company.kpis:
        b.publish_monthly(key, levels[key], gaps, late.get(key, 0))

    _quarterly_follower(b, levels)
    _weekly_tickets(b, levels, gaps)
    return company


def _quarterly_follower(b: _Builder, levels: dict[str, np.ndarray]) -> None:
    """finance.forecast_accuracy, quarterly: worse a quarter after quota attainment
    (aggregated to quarters by its mean) rises. Planted on the quarterly grid."""
    company = b.company
    key = "finance.forecast_accuracy"
    company.kpis[key] = KPISpec(
        key, "Forecast accuracy", "%", "higher_is_better", "quarterly", "mean"
    )
    quarters: dict[dt.date, list[float]] = {}
    for t in range(b.months):
        day = month_start(b.start, t)
        quarter = dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
        quarters.setdefault(quarter, []).append(levels["sales.quota_attainment"][t])
    # Whole quarters only, so that the truth's leader is the mean of three months.
    starts = [q for q, values in sorted(quarters.items()) if len(values) == 3]
    leader = np.array([np.mean(quarters[q]) for q in starts])
    effect, lag = -1.1, 1
    change = 0.45 * b.rng.normal(size=len(starts))
    leader_change = np.diff(leader, prepend=leader[0])
    change[lag:] += effect * leader_change[:-lag]
    level = 88 + np.cumsum(change)
    company.values[key] = {
        q: round(float(v), 4) for q, v in zip(starts, level, strict=True)
    }
    company.planted.append(
        Planted(
            "sales.quota_attainment",
            key,
            lag,
            effect,
            "quarterly",
            "higher quota attainment, a worse forecast a quarter later",
        )
    )


def _weekly_tickets(b: _Builder, levels: dict[str, np.ndarray], gaps: float) -> None:
    """support.tickets_opened, weekly: demand and the season move it (a common-driver
    trap across frequencies). Each week sums a daily rate that follows the month."""
    company = b.company
    key = "support.tickets_opened"
    company.kpis[key] = KPISpec(
        key, "Tickets opened", "tickets", "lower_is_better", "weekly", "sum"
    )
    monthly = 3_000 + np.cumsum(
        110 * b.demand + 140 * b.season + 35 * b.rng.normal(size=b.months)
    )
    first = month_start(b.start, 0)
    monday = first + dt.timedelta(days=(7 - first.weekday()) % 7)
    last = month_start(b.start, b.months)
    values = {}
    while monday + dt.timedelta(days=6) < last:
        total = 0.0
        for offset in range(7):
            day = monday + dt.timedelta(days=offset)
            index = (day.year - b.start.year) * 12 + day.month - b.start.month
            total += monthly[index] / calendar.monthrange(day.year, day.month)[1]
        if b.rng.random() >= gaps:
            values[monday] = round(total + 12 * b.rng.normal(), 4)
        monday += dt.timedelta(days=7)
    company.values[key] = values


def clean_company(seed: int, months: int = 48) -> Company:
    """Independent random walks in six silos with planted conflicts and nothing else."""
    rng = np.random.default_rng(seed)
    start = dt.date(2022, 1, 1)
    company = Company(seed=seed, months=months, start=start)
    changes = {}
    for silo in SILOS:
        for number in range(4):
            key = f"{silo}.kpi{number}"
            direction = "higher_is_better" if number % 2 == 0 else "lower_is_better"
            company.kpis[key] = KPISpec(key, key, "count", direction)
            changes[key] = rng.normal(size=months)
    keys = list(company.kpis)
    order = rng.permutation(len(keys))
    lag = 0
    for leader_index, follower_index in zip(order[0::2], order[1::2], strict=False):
        leader, follower = keys[leader_index], keys[follower_index]
        if leader.split(".")[0] == follower.split(".")[0]:
            continue
        if lag == 0 and SILOS[leader.split(".")[0]] > SILOS[follower.split(".")[0]]:
            # At lag 0 the data cannot tell which KPI leads; detection takes the
            # upstream one of the value chain, so the planted leader is upstream.
            leader, follower = follower, leader
        if len(company.planted) == 5:
            break
        # Worse for the follower when the leader improves.
        sign = (-1 if company.kpis[leader].direction == "lower_is_better" else 1) * (
            -1 if company.kpis[follower].direction == "lower_is_better" else 1
        )
        effect = -0.9 * sign
        changes[follower][lag:] = effect * changes[leader][: months - lag] + 0.45 * (
            rng.normal(size=months - lag)
        )
        company.planted.append(Planted(leader, follower, lag, effect))
        lag = (lag + 1) % 4
    for key in keys:
        level = 1000 + np.cumsum(changes[key])
        present = rng.random(months) >= 0.05
        company.values[key] = {
            month_start(start, t): round(float(level[t]), 4)
            for t in range(months)
            if present[t]
        }
    return company


def small_company(
    seed: int,
    *,
    months: int = 60,
    effect: float | None = -0.9,
    lag: int = 1,
    follower_window: int = 1,
    follower_direction: str = "higher_is_better",
    driver: bool = False,
    joint_jump: bool = False,
    typo: bool = False,
    gaps: float = 0.1,
) -> Company:
    """A few KPIs in four silos, for tests that need one feature at a time.

    ``sales.leader`` -> ``support.follower`` at ``lag`` with ``effect`` (raw units per
    unit of the leader's own change; None plants nothing), the follower published as a
    ``follower_window``-month trailing average; ``driver``: demand moves twelve KPIs of
    six silos, the leader and follower among them; ``joint_jump``: two otherwise
    unrelated KPIs of two silos shift once in the same month, the way a conflict would
    look; ``typo``: one leader value typed ten times too large; plus noise KPIs.
    """
    b = _Builder(seed, months, dt.date(2021, 1, 1))
    rng = b.rng
    demand = 30.0 if driver else 0.0
    b.kpi(KPISpec("sales.leader", "Leader", "units"), base=500, noise=10, demand=demand)
    b.kpi(
        KPISpec(
            "support.follower",
            "Follower",
            "points",
            follower_direction,
            "monthly",
            "mean",
        ),
        base=300,
        noise=8,
        demand=demand * (-1 if follower_direction == "lower_is_better" else 1),
    )
    for key, sign in (
        ("operations.volume", 1),
        ("finance.revenue", 1),
        ("operations.queue", -1),
        ("finance.cost", -1),
        ("marketing.sessions", 1),
        ("marketing.leads", 1),
        ("operations.overtime", -1),
        ("product.signups", 1),
        ("product.incidents", -1),
        ("finance.receivables", -1),
    ):
        direction = "higher_is_better" if sign > 0 else "lower_is_better"
        b.kpi(
            KPISpec(key, key.split(".")[1].title(), "units", direction),
            base=400,
            noise=9,
            demand=demand,
        )
    for key in ("marketing.noise", "sales.noise", "support.noise", "finance.noise"):
        b.kpi(KPISpec(key, "Noise", "units"), base=100, noise=5)
    b.kpi(KPISpec("marketing.jumper", "Jumper", "units"), base=200, noise=4)
    b.kpi(
        KPISpec("finance.jumped", "Jumped", "units", "lower_is_better"),
        base=200,
        noise=4,
    )
    if effect is not None:
        b.plant(
            "sales.leader",
            "support.follower",
            lag=lag,
            effect=effect,
            what="the planted conflict",
        )
    company = b.company
    levels = {key: b.level(key) for key in company.kpis}
    if joint_jump:
        month = int(rng.integers(months // 3, 2 * months // 3))
        levels["marketing.jumper"][month:] += 60.0  # better for marketing
        levels["finance.jumped"][month:] += 60.0  # worse for finance
    if typo:
        levels["sales.leader"][int(rng.integers(5, months - 5))] *= 10
    if follower_window > 1:
        latent = levels["support.follower"]
        published = np.full(months, np.nan)
        for t in range(follower_window - 1, months):
            published[t] = latent[t - follower_window + 1 : t + 1].mean()
        levels["support.follower"] = published
    for key in company.kpis:
        b.publish_monthly(key, levels[key], gaps)
    return company
