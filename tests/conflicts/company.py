"""Synthetic companies with planted effects and traps, stored through the ORM.

Each company is described by direction-adjusted *changes*: ``plant`` makes one KPI's
change follow another's at a lag, the rest is independent noise. Levels are the
cumulative sum of changes (flipped for lower-is-better KPIs) on top of a base, so a
lower-is-better KPI that "worsens" really goes up in the stored values.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from metrics.models import KPI, Measurement, Silo

START = dt.date(2022, 1, 1)


def month(index: int) -> dt.date:
    return dt.date(START.year + (START.month - 1 + index) // 12, (index % 12) + 1, 1)


@dataclass
class Company:
    """KPIs as columns of direction-adjusted changes (months - 1 rows)."""

    months: int
    seed: int
    silos: dict[str, Silo] = field(default_factory=dict)
    kpis: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (silo, dir)
    changes: dict[str, np.ndarray] = field(default_factory=dict)
    trends: dict[str, float] = field(default_factory=dict)
    missing: dict[str, np.ndarray] = field(default_factory=dict)
    first_month: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def silo(self, slug: str, position: int) -> None:
        # Reuse a silo a fixture made (the conftest's "sales" and "support").
        self.silos[slug], _ = Silo.objects.update_or_create(
            slug=slug, defaults={"name": slug.title(), "position": position}
        )

    def kpi(
        self,
        key: str,
        *,
        direction: str = "higher_is_better",
        trend: float = 0.0,
        noise: float = 1.0,
    ) -> None:
        silo, _ = key.split(".")
        self.kpis[key] = (silo, direction)
        self.changes[key] = noise * self.rng.normal(size=self.months - 1)
        self.trends[key] = trend

    def plant(
        self, leader: str, follower: str, *, lag: int, coefficient: float
    ) -> None:
        """Make ``follower``'s change at t+lag = coefficient * leader's at t + noise."""
        source = self.changes[leader]
        planted = self.changes[follower].copy()
        planted[lag:] = coefficient * source[: source.size - lag] + 0.35 * (
            self.rng.normal(size=source.size - lag)
        )
        self.changes[follower] = planted

    def drop(self, key: str, share: float) -> None:
        """Leave out a random ``share`` of the KPI's months (gaps)."""
        self.missing[key] = self.rng.random(self.months) < share

    def only_last(self, key: str, months: int) -> None:
        """Keep only the KPI's last ``months`` months of data."""
        self.first_month[key] = self.months - months

    def levels(self, key: str) -> np.ndarray:
        _, direction = self.kpis[key]
        adjusted = np.concatenate(
            [[0.0], np.cumsum(self.changes[key] + self.trends[key])]
        )
        sign = -1.0 if direction == "lower_is_better" else 1.0
        return 1000.0 + sign * adjusted

    def present(self, key: str) -> np.ndarray:
        mask = ~self.missing.get(key, np.zeros(self.months, dtype=bool))
        mask[: self.first_month.get(key, 0)] = False
        return mask

    def paired_changes(self, leader: str, follower: str, lag: int) -> int:
        """Count the changes both KPIs have at (t, t+lag), computed independently."""
        lead, follow = self.present(leader), self.present(follower)
        lead_change = lead[1:] & lead[:-1]
        follow_change = follow[1:] & follow[:-1]
        steps = lead_change.size - lag
        return int(np.count_nonzero(lead_change[:steps] & follow_change[lag:]))

    def save(self) -> dict[str, KPI]:
        """Create the KPIs and their measurements; return the KPIs by key."""
        stored = {}
        rows = []
        for key, (silo, direction) in self.kpis.items():
            stored[key] = KPI.objects.create(
                silo=self.silos[silo],
                slug=key.split(".")[1],
                name=key.split(".")[1].replace("_", " ").capitalize(),
                unit="count",
                direction=direction,
                frequency="monthly",
                aggregation="sum",
            )
            values, present = self.levels(key), self.present(key)
            rows += [
                Measurement(kpi=stored[key], period=month(i), value=float(values[i]))
                for i in range(self.months)
                if present[i]
            ]
        Measurement.objects.bulk_create(rows)
        return stored


def standard_company(seed: int = 7, months: int = 48) -> Company:
    """One planted conflict and every trap the issue names.

    - sales.deals_closed improves -> support.ticket_backlog (lower is better) rises two
      months later: the conflict to find, with 10% of the backlog's months missing;
    - finance.revenue trends up and operations.quality trends down, independently;
    - operations.on_time improves -> support.csat improves a month later: a synergy;
    - sales.deals_closed improves -> sales.discount_depth worsens: inside one silo;
    - finance.late_kpi follows sales.deals_closed strongly but has 10 months of data;
    - plus pure-noise KPIs in every silo.
    """
    company = Company(months=months, seed=seed)
    for position, slug in enumerate(["sales", "support", "finance", "operations"]):
        company.silo(slug, position * 10)
    company.kpi("sales.deals_closed")
    company.kpi("sales.discount_depth", direction="lower_is_better")
    company.kpi("support.ticket_backlog", direction="lower_is_better")
    company.kpi("support.csat")
    company.kpi("finance.revenue", trend=3.0)
    company.kpi("finance.late_kpi")
    company.kpi("operations.quality", trend=-3.0)
    company.kpi("operations.on_time")
    for silo in ["sales", "support", "finance", "operations"]:
        company.kpi(f"{silo}.noise", direction="lower_is_better")
        company.kpi(f"{silo}.noise_two")
    company.plant(
        "sales.deals_closed", "support.ticket_backlog", lag=2, coefficient=-0.8
    )
    company.plant("operations.on_time", "support.csat", lag=1, coefficient=0.8)
    company.plant("sales.deals_closed", "sales.discount_depth", lag=0, coefficient=-0.9)
    company.plant("sales.deals_closed", "finance.late_kpi", lag=1, coefficient=-0.9)
    company.drop("support.ticket_backlog", 0.10)
    company.only_last("finance.late_kpi", 10)
    return company
