"""Goal arithmetic (pure: no ORM): aggregate a KPI over a goal's periods, and attainment.

Attainment is a number in [0, 1], or None when there is no data: an unknown is never
reported as a failure.

- higher is better: ``(actual - baseline) / (target - baseline)``
- lower is better: ``(baseline - actual) / (baseline - target)``
- target band: 1 inside ``[low, high]``, falling linearly to 0 at one tolerance outside
  it. The tolerance is the band's width; a zero-width band uses 10% of the edge's
  magnitude (1 unit when the edge is 0) so that it still has a slope.
- a target equal to its baseline: 1 when the target is met, else 0.

Every result is clamped to [0, 1].
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

HIGHER_IS_BETTER = "higher_is_better"
LOWER_IS_BETTER = "lower_is_better"
TARGET_BAND = "target_band"


def aggregate(values: Sequence[float], aggregation: str) -> float | None:
    """Return ``values`` (in period order) combined by ``aggregation``; None when empty."""
    if not values:
        return None
    if aggregation == "sum":
        return math.fsum(values)
    if aggregation == "mean":
        return math.fsum(values) / len(values)
    if aggregation == "last":
        return values[-1]
    raise ValueError(f"unknown aggregation {aggregation!r}")


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


def band_tolerance(low: float, high: float) -> float:
    """Return the distance outside a band at which band attainment reaches 0."""
    width = high - low
    if width > 0:
        return width
    # 10% of a subnormal edge underflows to 0: fall back to 1 unit then too.
    tolerance = 0.1 * max(abs(low), abs(high))
    return tolerance if tolerance > 0 else 1.0


def attainment(
    *,
    direction: str,
    baseline: float,
    actual: float | None,
    target: float | None = None,
    target_low: float | None = None,
    target_high: float | None = None,
) -> float | None:
    """Return how far ``actual`` has moved from ``baseline`` to the target, in [0, 1].

    None when ``actual`` is None (no data yet).
    """
    if actual is None or not math.isfinite(actual):
        return None
    if direction == TARGET_BAND:
        if target_low is None or target_high is None:
            raise ValueError("a target-band goal needs target_low and target_high")
        if target_low <= actual <= target_high:
            return 1.0
        distance = target_low - actual if actual < target_low else actual - target_high
        return _clamp(1.0 - distance / band_tolerance(target_low, target_high))
    if target is None:
        raise ValueError("a higher- or lower-is-better goal needs a target")
    if direction == HIGHER_IS_BETTER:
        if target == baseline:
            return 1.0 if actual >= target else 0.0
        return _clamp((actual - baseline) / (target - baseline))
    if direction == LOWER_IS_BETTER:
        if target == baseline:
            return 1.0 if actual <= target else 0.0
        return _clamp((baseline - actual) / (baseline - target))
    raise ValueError(f"unknown direction {direction!r}")


# --- Shared goals -----------------------------------------------------------------------

#: A breached guardrail caps a shared goal's progress at this (see shared_progress).
GUARDRAIL_CAP = 0.5


def worsening(
    *,
    direction: str,
    baseline: float,
    current: float | None,
    band_low: float | None = None,
    band_high: float | None = None,
) -> float | None:
    """Return how much ``current`` is worse than ``baseline`` (negative: better).

    Higher is better: ``baseline - current``; lower is better: ``current - baseline``;
    target band: the growth of the distance outside the band. None without data.
    """
    if current is None or not math.isfinite(current):
        return None
    if direction == HIGHER_IS_BETTER:
        return baseline - current
    if direction == LOWER_IS_BETTER:
        return current - baseline
    if direction == TARGET_BAND:
        if band_low is None or band_high is None:
            raise ValueError("a target-band guardrail needs the KPI's band")

        def outside(value: float) -> float:
            return max(band_low - value, value - band_high, 0.0)

        return outside(current) - outside(baseline)
    raise ValueError(f"unknown direction {direction!r}")


def weighted_mean(pairs: Sequence[tuple[float, float]]) -> float | None:
    """Return the mean of the values weighted by the weights; None when empty.

    ``pairs`` holds (weight, value) with positive finite weights. Weights are first
    divided by the largest, so that scaling every weight by the same factor gives the
    same result (and huge weights cannot overflow).
    """
    if not pairs:
        return None
    largest = max(weight for weight, _ in pairs)
    scaled = [(weight / largest, value) for weight, value in pairs]
    total = math.fsum(weight for weight, _ in scaled)
    return _clamp(math.fsum(weight * value for weight, value in scaled) / total)


@dataclass(frozen=True)
class Part:
    """One contribution to a shared goal: its silo, weight and attainment (None: no
    data)."""

    key: int
    silo: str
    weight: float
    attainment: float | None


@dataclass(frozen=True)
class Guard:
    """One guardrail: how much its KPI has worsened and how much may be tolerated."""

    key: int
    worsened_by: float | None
    tolerance: float

    @property
    def breached(self) -> bool:
        return self.worsened_by is not None and self.worsened_by > self.tolerance


@dataclass(frozen=True)
class SharedProgress:
    """A shared goal's progress, how many contributions it rests on, the per-silo
    breakdown, and the guardrails that capped it."""

    progress: float | None
    uncapped: float | None
    with_data: int
    total: int
    per_silo: dict[str, float | None]
    breached: tuple[int, ...]

    @property
    def capped(self) -> bool:
        return self.progress != self.uncapped


def shared_progress(
    parts: Sequence[Part], guards: Sequence[Guard] = ()
) -> SharedProgress:
    """Return the weighted mean of the parts' attainments over the parts with data.

    Parts without data are left out (not counted as 0) and reported in ``with_data``;
    with no data at all the progress is None. A breached guardrail (its KPI worse than
    its baseline by more than its tolerance) caps the progress at GUARDRAIL_CAP: a
    shared goal cannot be credited as more than half met while it hurts another silo.
    """
    known = [(p.weight, p.attainment) for p in parts if p.attainment is not None]
    uncapped = weighted_mean(known)
    per_silo: dict[str, float | None] = {}
    for silo in dict.fromkeys(p.silo for p in parts):
        per_silo[silo] = weighted_mean(
            [
                (p.weight, p.attainment)
                for p in parts
                if p.silo == silo and p.attainment is not None
            ]
        )
    breached = tuple(g.key for g in guards if g.breached)
    progress = uncapped
    if breached and progress is not None:
        progress = min(progress, GUARDRAIL_CAP)
    return SharedProgress(
        progress=progress,
        uncapped=uncapped,
        with_data=len(known),
        total=len(parts),
        per_silo=per_silo,
        breached=breached,
    )
