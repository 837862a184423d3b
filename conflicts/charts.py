"""What the conflict pages draw: the silo heatmap of the report, and a conflict's two
KPIs over time (a core.charts.Chart, drawn by Chart.js with a table of the same values).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from django.urls import reverse

from conflicts.models import Conflict, Severity, Status
from core.charts import BLUE, RED, Axis, Chart, Series
from metrics.models import KPI, Silo

#: A heatmap cell's colours (background, text) by the worst severity among its open
#: conflicts; every pair has at least 4.5:1 contrast (WCAG AA), and the cell also says
#: the severity in words, so that the colour is never the only signal.
HEAT_COLOURS: dict[str, tuple[str, str]] = {
    Severity.HIGH: ("#b03a2e", "#ffffff"),
    Severity.MEDIUM: ("#f5c26b", "#1d2430"),
    Severity.LOW: ("#dfe8f3", "#1d2430"),
    "": ("#ffffff", "#5c6773"),
}
WORST_LABELS: dict[str, str] = {
    Severity.HIGH: "worst high",
    Severity.MEDIUM: "worst medium",
    Severity.LOW: "worst low",
}


@dataclass(frozen=True)
class HeatCell:
    """One (leader silo, affected silo) cell: open conflicts, of which high, the worst
    severity among them ("" when there is none) and the register filtered to them."""

    count: int
    high: int
    worst: str
    url: str

    @property
    def words(self) -> str:
        """What the cell says besides its count: "worst high"."""
        return WORST_LABELS.get(self.worst, "")

    @property
    def style(self) -> str:
        """The cell's inline colours (the page's CSP allows inline styles)."""
        background, text = HEAT_COLOURS[self.worst]
        return f"background: {background}; color: {text}"


def register_url(leader: Silo, affected: Silo) -> str:
    """The register filtered to the open conflicts of one silo pair, as the heatmap
    counts them (under review, found by the latest run)."""
    query = urlencode(
        [
            ("leader_silo", leader.slug),
            ("affected_silo", affected.slug),
            ("status", Status.OPEN),
            ("status", Status.ACKNOWLEDGED),
            ("stale", "false"),
        ]
    )
    return f"{reverse('conflicts:register')}?{query}"


def heatmap(
    silos: Sequence[Silo], counts: Mapping[tuple[int, int], tuple[int, int, str]]
) -> list[tuple[Silo, list[HeatCell | None]]]:
    """Return rows of (leader silo, cells per affected silo) in value-chain order.

    ``counts`` maps (leader silo id, affected silo id) to (open conflicts, of which
    high, the worst severity). The diagonal is None: a silo is never in conflict with
    itself here.
    """
    rows = []
    for leader in silos:
        cells: list[HeatCell | None] = []
        for affected in silos:
            if leader.pk == affected.pk:
                cells.append(None)
                continue
            count, high, worst = counts.get((leader.pk, affected.pk), (0, 0, ""))
            cells.append(
                HeatCell(
                    count=count,
                    high=high,
                    worst=worst,
                    url=register_url(leader, affected) if count else "",
                )
            )
        rows.append((leader, cells))
    return rows


def _period_label(day: dt.date, weekly: bool) -> str:
    return day.isoformat() if weekly else day.strftime("%b %Y")


def values_chart(
    conflict: Conflict,
    values: dict[int, dict[dt.date, float]],
    chart_id: str = "values-chart",
) -> Chart | None:
    """Return the conflict's two KPIs' stored values over time, each on its own axis
    (their units differ), or None when either has fewer than two values.

    ``values`` maps a KPI's id to its values by period; a period one KPI lacks (they
    may be measured at different frequencies) is a gap in its line.
    """
    leader, affected = conflict.leader_kpi, conflict.affected_kpi
    leader_values = values.get(leader.pk, {})
    affected_values = values.get(affected.pk, {})
    if len(leader_values) < 2 or len(affected_values) < 2:
        return None
    periods = sorted({*leader_values, *affected_values})
    weekly = "weekly" in (leader.frequency, affected.frequency)

    def title(kpi: KPI) -> str:
        return f"{kpi.name} ({kpi.unit})" if kpi.unit else kpi.name

    return Chart(
        id=chart_id,
        title=f"{leader.name} and {affected.name} over time",
        summary=(
            f"Line chart of the stored values of {title(leader)}, left axis, and of "
            f"{title(affected)}, right axis, from {_period_label(periods[0], weekly)} "
            f"to {_period_label(periods[-1], weekly)}. The table below the chart "
            "lists every value."
        ),
        labels=[_period_label(day, weekly) for day in periods],
        series=[
            Series(
                name=f"{conflict.leader_silo.name}: {leader.name}",
                values=[leader_values.get(day) for day in periods],
                color=BLUE,
                axis="y",
                unit=leader.unit,
            ),
            Series(
                name=f"{conflict.affected_silo.name}: {affected.name}",
                values=[affected_values.get(day) for day in periods],
                color=RED,
                dashed=True,
                axis="y2",
                unit=affected.unit,
            ),
        ],
        axes=[Axis(id="y", title=title(leader)), Axis(id="y2", title=title(affected))],
    )
