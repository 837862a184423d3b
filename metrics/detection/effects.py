"""What a conflict costs, in the affected KPI's own units (pure: no ORM).

The effect of a conflict is the coefficient of the leader's change at t in a least-
squares regression of the follower's change at t + lag on it, with the company-wide
drivers' scores as controls: those of the leader's period and the one before, and
those of the follower's period and the one before (and the seasonal waves when either
KPI was seasonally adjusted). By Frisch-Waugh-Lovell this is the slope on what the
drivers do not explain of each. The scores are computed without the leader and the
follower (leave-two-out): a driver's score is a weighted sum of its members, so a
member's own change would otherwise count as a driver's and the slope would shrink.

The coefficient is in raw units — how much the follower's value moves per unit change
of the leader's value beyond what the drivers explain — signed as the raw values move
(more deals, more tickets: positive). Its 95% confidence interval uses Student's t
with Bartlett's effective number of pairs, n / (1 + 2 sum_k r_x(k) r_e(k)) over the
first ``BARTLETT_LAGS`` autocorrelations of the leader and of the residual, so that
trailing averages do not make it too narrow.

Limits: the drivers are estimated, so some of their movement stays in the leader's
residual and biases the slope towards zero; with a trailing-average follower the effect
spreads over several periods and the coefficient at the conflict's lag is the part that
arrives then, not the total.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from metrics.detection.prepare import DRIVER_LAGS, EffectInputs

BARTLETT_LAGS = 5
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Effect:
    """A slope in raw units with its confidence interval and a typical leader step."""

    effect: float
    low: float
    high: float
    step: float


def nice_step(spread: float) -> float:
    """Round a typical change to 1, 2 or 5 times a power of ten ("10 more deals")."""
    if not math.isfinite(spread) or spread <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(spread))
    for factor in (1.0, 2.0, 5.0, 10.0):
        if spread <= factor * power * 1.5:
            return factor * power
    return 10.0 * power


def _autocorrelations(values: np.ndarray, lags: int) -> np.ndarray:
    centered = values - values.mean()
    variance = float(np.sum(centered**2)) / max(values.size, 1)
    result = np.zeros(lags)
    if variance <= 0:
        return result
    for lag in range(1, min(lags, values.size - 3) + 1):
        result[lag - 1] = float(np.sum(centered[lag:] * centered[:-lag])) / (
            values.size * variance
        )
    return result


def _shifted(matrix: np.ndarray, by: int) -> np.ndarray:
    """Row t of the result is row t - by of ``matrix`` (NaN where there is none)."""
    result = np.full(matrix.shape, np.nan)
    if by == 0:
        return matrix.copy()
    if by > 0:
        result[by:] = matrix[:-by]
    else:
        result[:by] = matrix[-by:]
    return result


def estimate(
    inputs: EffectInputs,
    leader: int,
    follower: int,
    *,
    lag: int,
    leader_sign: float,
    follower_sign: float,
    lost: int = 0,
) -> Effect | None:
    """Return the effect of column ``leader`` on column ``follower`` ``lag`` periods
    later, or None when too few periods pair up for the regression."""
    values = inputs.standardized
    periods = values.shape[0]
    drivers = inputs.drivers
    # The drivers' scores without either KPI's own share (leave-two-out).
    scores = (
        drivers.scores
        - drivers.filled[:, [leader]] * drivers.weights[leader]
        - drivers.filled[:, [follower]] * drivers.weights[follower]
    )
    # Everything at the leader's period t: row t.
    x = values[:, leader]
    y = _shifted(values[:, [follower]], -lag)[:, 0]
    controls: list[np.ndarray] = []
    if scores.shape[1]:
        # The leader's periods (t, t-1) and the follower's (t+lag, t+lag-1), once each.
        shifts = {back - offset for offset in (0, lag) for back in range(DRIVER_LAGS)}
        controls.extend(_shifted(scores, by) for by in sorted(shifts))
    if inputs.seasonal_terms is not None and (
        inputs.seasonal[leader] or inputs.seasonal[follower]
    ):
        controls.append(inputs.seasonal_terms)
    design = np.column_stack([np.ones(periods), x, *controls])
    rows = ~np.isnan(y) & ~np.isnan(design).any(axis=1)
    n = int(rows.sum())
    parameters = design.shape[1]
    if n < parameters + 3:
        return None
    design, y = design[rows], y[rows]
    coefficients, *_ = np.linalg.lstsq(design, y, rcond=None)
    residuals = y - design @ coefficients
    try:
        inverse = np.linalg.inv(design.T @ design)
    except np.linalg.LinAlgError:
        return None
    bartlett = 1.0 + 2.0 * float(
        np.sum(
            _autocorrelations(design[:, 1], BARTLETT_LAGS)
            * _autocorrelations(residuals, BARTLETT_LAGS)
        )
    )
    effective = min(float(n), max(float(parameters + 2), n / max(bartlett, 1e-9)))
    freedom = max(effective - parameters - lost, 1.0)
    variance = float(np.sum(residuals**2)) / max(n - parameters, 1)
    # The variance of the slope as if the regression had only the effective pairs.
    error = math.sqrt(max(variance * inverse[1, 1] * n / effective, 0.0))
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2.0, freedom)) * error
    slope = float(coefficients[1])
    # To raw units: both columns were standardized, and a lower-is-better KPI's
    # adjusted change is minus its raw one.
    to_raw = inputs.scale[follower] / inputs.scale[leader] * leader_sign * follower_sign
    low, high = sorted(((slope - half) * to_raw, (slope + half) * to_raw))
    # A typical change of the leader beyond the drivers, for the words.
    others = np.delete(design, 1, axis=1)
    own, *_ = np.linalg.lstsq(others, design[:, 1], rcond=None)
    leader_spread = float(np.std(design[:, 1] - others @ own)) * inputs.scale[leader]
    return Effect(
        effect=slope * to_raw, low=low, high=high, step=nice_step(leader_spread)
    )
