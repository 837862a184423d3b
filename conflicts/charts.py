"""Server-side SVG geometry for the CCO report (no JavaScript, nothing from the internet).

The conflict chart shows both KPIs' direction-adjusted period-over-period changes, the
affected KPI shifted back by the lag, so that a conflict reads as two lines moving in
opposite directions. Each series is in standard deviations of its own changes so that
KPIs in different units share one axis.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from conflicts.inputs import SIGN, period_number
from metrics.models import KPI, Measurement

WIDTH = 720
HEIGHT = 260
PAD_LEFT = 44
PAD_RIGHT = 12
PAD_TOP = 12
PAD_BOTTOM = 28


@dataclass(frozen=True)
class Series:
    name: str
    points: str  # SVG polyline points
    dots: list[tuple[float, float]]


@dataclass(frozen=True)
class ChangeChart:
    """Coordinates of the aligned-changes chart; ``periods`` counts the paired points."""

    width: int
    height: int
    leader: Series
    affected: Series
    zero_y: float
    y_ticks: list[tuple[float, str]]
    x_labels: list[tuple[float, str]]
    periods: int


def _changes(kpi: KPI) -> dict[int, tuple[dt.date, float]]:
    """Return the KPI's direction-adjusted change per period number (end period)."""
    values = dict(Measurement.objects.filter(kpi=kpi).values_list("period", "value"))
    numbered = {
        period_number(day, kpi.frequency): (day, v) for day, v in values.items()
    }
    sign = SIGN[kpi.direction] or 1.0
    return {
        number: (day, sign * (value - numbered[number - 1][1]))
        for number, (day, value) in numbered.items()
        if number - 1 in numbered
    }


def change_chart(leader: KPI, affected: KPI, lag: int) -> ChangeChart | None:
    """Return the chart of ``leader``'s change at t against ``affected``'s at t+lag.

    None when the two KPIs share fewer than three such periods (nothing to draw).
    """
    if leader.frequency != affected.frequency:
        return None
    lead, follow = _changes(leader), _changes(affected)
    paired = sorted(t for t in lead if t + lag in follow)
    if len(paired) < 3:
        return None
    x_values = np.array([lead[t][1] for t in paired])
    y_values = np.array([follow[t + lag][1] for t in paired])

    def z(values: np.ndarray) -> np.ndarray:
        spread = values.std()
        return (values - values.mean()) / (spread if spread > 0 else 1.0)

    lead_z, follow_z = z(x_values), z(y_values)
    limit = max(2.0, float(np.ceil(max(np.abs(lead_z).max(), np.abs(follow_z).max()))))
    inner_w = WIDTH - PAD_LEFT - PAD_RIGHT
    inner_h = HEIGHT - PAD_TOP - PAD_BOTTOM

    def x_at(index: int) -> float:
        return PAD_LEFT + inner_w * index / max(len(paired) - 1, 1)

    def y_at(value: float) -> float:
        return PAD_TOP + inner_h * (limit - value) / (2 * limit)

    def series(name: str, values: np.ndarray) -> Series:
        dots = [(round(x_at(i), 1), round(y_at(v), 1)) for i, v in enumerate(values)]
        return Series(
            name=name, points=" ".join(f"{x},{y}" for x, y in dots), dots=dots
        )

    step = max(1, len(paired) // 6)
    return ChangeChart(
        width=WIDTH,
        height=HEIGHT,
        leader=series(leader.name, lead_z),
        affected=series(affected.name, follow_z),
        zero_y=round(y_at(0.0), 1),
        y_ticks=[(round(y_at(v), 1), f"{v:+.0f} sd") for v in (-limit, 0.0, limit)],
        x_labels=[
            (round(x_at(i), 1), lead[paired[i]][0].strftime("%b %Y"))
            for i in range(0, len(paired), step)
        ],
        periods=len(paired),
    )


@dataclass(frozen=True)
class HeatCell:
    count: int
    high: int
    shade: str  # CSS background colour


def heatmap(
    silos: list, counts: dict[tuple[int, int], tuple[int, int]]
) -> list[tuple[object, list[HeatCell | None]]]:
    """Return rows of (leader silo, cells per affected silo) in value-chain order.

    ``counts`` maps (leader silo id, affected silo id) to (open conflicts, of which
    high). The diagonal is None: a silo is never in conflict with itself here.
    """
    most = max((count for count, _ in counts.values()), default=0)
    rows = []
    for leader in silos:
        cells: list[HeatCell | None] = []
        for affected in silos:
            if leader.pk == affected.pk:
                cells.append(None)
                continue
            count, high = counts.get((leader.pk, affected.pk), (0, 0))
            strength = count / most if most else 0.0
            # White to a deep red, by share of the busiest cell.
            shade = f"rgb(255, {round(255 - 175 * strength)}, {round(255 - 190 * strength)})"
            cells.append(HeatCell(count=count, high=high, shade=shade))
        rows.append((leader, cells))
    return rows


@dataclass(frozen=True)
class Panel:
    """One KPI's values over time, in its own unit, on the shared time axis."""

    name: str
    unit: str
    points: str
    top: float
    bottom: float
    y_ticks: list[tuple[float, str]]


@dataclass(frozen=True)
class ValuesChart:
    """Both KPIs' stored values over time, one panel each (their units differ)."""

    width: int
    height: int
    panels: list[Panel]
    x_labels: list[tuple[float, str]]


PANEL_HEIGHT = 120
PANEL_GAP = 40


def values_chart(leader: KPI, affected: KPI) -> ValuesChart | None:
    """Return the values chart of the two KPIs, or None when either has < 2 values."""
    series = []
    for kpi in (leader, affected):
        rows = list(
            Measurement.objects.filter(kpi=kpi)
            .order_by("period")
            .values_list("period", "value")
        )
        if len(rows) < 2:
            return None
        series.append((kpi, rows))
    first = min(rows[0][0] for _, rows in series)
    last = max(rows[-1][0] for _, rows in series)
    span = max((last - first).days, 1)
    inner_w = WIDTH - PAD_LEFT - PAD_RIGHT

    def x_at(day: dt.date) -> float:
        return round(PAD_LEFT + inner_w * (day - first).days / span, 1)

    panels = []
    for index, (kpi, rows) in enumerate(series):
        top = PAD_TOP + index * (PANEL_HEIGHT + PANEL_GAP)
        bottom = top + PANEL_HEIGHT
        values = np.array([value for _, value in rows])
        low, high = float(values.min()), float(values.max())
        if high == low:
            low, high = low - 1.0, high + 1.0

        def y_at(
            value: float, top: float = top, low: float = low, high: float = high
        ) -> float:
            return round(top + PANEL_HEIGHT * (high - value) / (high - low), 1)

        panels.append(
            Panel(
                name=kpi.name,
                unit=kpi.unit,
                points=" ".join(f"{x_at(day)},{y_at(value)}" for day, value in rows),
                top=top,
                bottom=bottom,
                y_ticks=[(y_at(v), f"{v:,.4g}") for v in (high, (high + low) / 2, low)],
            )
        )
    years = range(first.year, last.year + 1)
    return ValuesChart(
        width=WIDTH,
        height=PAD_TOP + 2 * PANEL_HEIGHT + PANEL_GAP + PAD_BOTTOM,
        panels=panels,
        x_labels=[
            (x_at(dt.date(year, 1, 1)), str(year))
            for year in years
            if first <= dt.date(year, 1, 1) <= last
        ],
    )
