"""The demo company: six silos along a value chain, three years of KPIs, two plans.

The company is described as data in ``planning.demo.data``; ``demo_seed`` writes it.
Measurements are generated (deterministically, in ``planning.demo.series``) from trend,
seasonality and noise, and a few trade-offs are built in as period-over-period effects
of one silo's KPI on another's: the conflicts that the Chief Customer Officer, the
company's "human duct tape", has to find and resolve. Five of them are declared as
impact links; the sixth is left for conflict detection to discover.

Seeding is idempotent: rows are looked up by natural key and saved only when a field
differs, so a second run writes nothing, not even history rows.
"""

from planning.demo.data import ADMIN_URL, DEMO_PASSWORD
from planning.demo.seed import DemoSeedError, SeedReport, demo_seed
from planning.demo.series import demo_periods, demo_series, goal_values
from planning.demo.sync import StepCounts

__all__ = [
    "ADMIN_URL",
    "DEMO_PASSWORD",
    "DemoSeedError",
    "SeedReport",
    "StepCounts",
    "demo_periods",
    "demo_seed",
    "demo_series",
    "goal_values",
]
