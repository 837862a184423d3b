"""The demo's measurements and goal targets, generated as plain values (no ORM)."""

import datetime as dt
import math
import random

from goals import progress
from metrics import periods
from planning.demo.data import (
    BASELINE_YEAR,
    FIRST_PERIOD,
    KPIS,
    LAST_PERIOD,
    MEAN,
    MONTHLY,
    NOISE_PERSISTENCE,
    RANDOM_SEED,
    TRADE_OFFS,
    GoalSpec,
    KpiSpec,
)

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
                    assert leader_value is not None, "a leader has a value every month"
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
