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
    edge = max(abs(low), abs(high))
    return 0.1 * edge if edge > 0 else 1.0


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
