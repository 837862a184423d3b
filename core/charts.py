"""Charts of the pages: data for Chart.js (shipped in core/static) and a table of the same
values for screen readers and for anyone who wants the numbers.

A view builds a :class:`Chart`; ``core/_chart.html`` renders the canvas, the chart's data
as a JSON script element and the table; ``core/charts.js`` draws it. Chart.js reads no
inline script, so the Content-Security-Policy stays strict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

#: Line colours with at least 3:1 contrast on white (WCAG 1.4.11, non-text contrast).
BLUE = "#1f5fa8"
RED = "#b03a2e"
GREY = "#5c6773"
GREEN = "#1e7b34"
PURPLE = "#6c3483"


def format_value(value: float | None) -> str:
    """Format a chart value for the table: thousands separated, at most 4 significant
    digits; a dash for a period without a value."""
    if value is None or not math.isfinite(value):
        return "-"
    if abs(value) >= 10_000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


@dataclass(frozen=True)
class Series:
    """One line: ``values`` align with the chart's labels (None: no value that period)."""

    name: str
    values: Sequence[float | None]
    color: str = BLUE
    dashed: bool = False
    axis: str = "y"
    unit: str = ""


@dataclass(frozen=True)
class Axis:
    """A value axis: ``id`` "y" on the left, "y2" on the right."""

    id: str
    title: str
    percent: bool = False


@dataclass(frozen=True)
class Chart:
    """A line chart over ``labels`` (periods or days, oldest first).

    ``summary`` is what the canvas says to a screen reader; the table under the chart
    carries every value. A ``sparkline`` has no axes, legend or table caption.
    """

    id: str
    title: str
    summary: str
    labels: Sequence[str]
    series: Sequence[Series]
    axes: Sequence[Axis] = field(default_factory=tuple)
    sparkline: bool = False

    @property
    def data_id(self) -> str:
        """The id of the JSON script element that holds the chart's data."""
        return f"{self.id}-data"

    def spec(self) -> dict[str, Any]:
        """The JSON that core/charts.js draws."""
        return {
            "labels": list(self.labels),
            "sparkline": self.sparkline,
            "axes": [
                {"id": axis.id, "title": axis.title, "percent": axis.percent}
                for axis in self.axes
            ],
            "series": [
                {
                    "name": series.name,
                    "values": [
                        value if value is not None and math.isfinite(value) else None
                        for value in series.values
                    ],
                    "color": series.color,
                    "dashed": series.dashed,
                    "axis": series.axis,
                    "unit": series.unit,
                }
                for series in self.series
            ],
        }

    def rows(self) -> list[tuple[str, list[str]]]:
        """The table alternative: one row per label, one formatted cell per series."""
        percent = {axis.id for axis in self.axes if axis.percent}
        rows = []
        for index, label in enumerate(self.labels):
            cells = []
            for series in self.series:
                value = series.values[index] if index < len(series.values) else None
                if series.axis in percent and value is not None:
                    cells.append(f"{value:.0%}")
                else:
                    text = format_value(value)
                    cells.append(
                        f"{text} {series.unit}".strip() if value is not None else text
                    )
            rows.append((label, cells))
        return rows
