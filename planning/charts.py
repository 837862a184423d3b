"""Server-side SVG geometry of a shared goal's progress trend (no JavaScript)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 320
HEIGHT = 90
PAD = 6


@dataclass(frozen=True)
class Trend:
    """A polyline of progress (0..1) over the snapshot days, with its first and last
    day for the axis labels."""

    width: int
    height: int
    points: str
    first_day: str
    last_day: str
    last: float | None


def progress_trend(days: Sequence[tuple[str, float | None]]) -> Trend | None:
    """Return the trend of (ISO day, progress) pairs, oldest first; None under 2 days.

    Days without progress (no data yet) are left out of the line.
    """
    known = [(day, value) for day, value in days if value is not None]
    if len(known) < 2:
        return None
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    step = inner_w / (len(known) - 1)
    points = " ".join(
        f"{PAD + index * step:.1f},{PAD + inner_h * (1 - value):.1f}"
        for index, (_, value) in enumerate(known)
    )
    return Trend(
        width=WIDTH,
        height=HEIGHT,
        points=points,
        first_day=known[0][0],
        last_day=known[-1][0],
        last=known[-1][1],
    )
