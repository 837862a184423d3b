"""Prepare KPI changes for the pairwise tests: what real company data needs first.

Pure numpy, no ORM. :func:`prepare` takes one grid's direction-adjusted changes
(periods x KPIs, NaN where missing) and returns what the tests read, in five steps
(the README, "Observed conflicts", says why each):

1. **Gross errors out.** A change more than ``GROSS_Z`` robust standard deviations
   (1.4826 x the median absolute deviation) from the KPI's median change is dropped:
   a value typed ten times too large gives two such changes, a reorg's level shift one.
2. **Common drivers.** The standardized changes are a periods x KPIs matrix with gaps;
   its principal components are fitted on the observed cells (EM-PCA). A component is
   kept when its eigenvalue exceeds the 95th percentile of the same eigenvalue over
   ``PERMUTATIONS`` copies of the matrix with each column rotated in time by a random
   offset (Horn's parallel analysis; rotations rather than shuffles, so that smooth
   series such as trailing averages keep their autocorrelation in the null), and it
   counts as a *company-wide driver* when it moves at least ``DRIVER_MIN_KPIS`` KPIs of
   at least ``DRIVER_MIN_SILOS`` silos and most of those KPIs' pairs correlate: a
   co-movement of a few pairs is for the tests, not a driver. Each KPI is regressed on
   the drivers' scores of its period and the one before, the scores computed without
   that KPI (leave-one-out); what is left is its *residual change*.
3. **Seasonal waves out**, with SEASONAL_YEARS or more years: a KPI whose residual
   changes follow the year (an F-test of a yearly and a half-yearly sine and cosine, at
   ``SEASONAL_P``) has the waves removed: four parameters, not one per month.
4. **One-off events out.** A residual beyond ``RESIDUAL_Z`` robust standard deviations
   is dropped: a cost reclassification that shifts two KPIs in the same month must never
   make a conflict.
5. **Prewhitening.** A clearly autocorrelated residual series (a trailing average) is
   filtered by its own autoregression of order 1..MAX_AR_ORDER (Haugh's double
   prewhitening): two independent series, one of them white, correlate with the
   variance 1/n the t-test assumes.

``Prepared.lost`` is what a lag-0 test loses in degrees of freedom: both KPIs were
residualized on the same drivers' scores (and seasonal waves); the tests take the
larger of a pair's two from n - 2 at lag 0 (at other lags the regressors differ).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from metrics.detection.drivers import (
    DRIVER_LAGS,
    Driver,
    DriverScores,
    find_drivers,
    quiet_nan_warnings,
    remove_drivers,
    standardize_columns,
)

#: A change this many robust standard deviations from the median is a gross error.
GROSS_Z = 5.0
#: A residual this many robust standard deviations out is a one-off event.
RESIDUAL_Z = 5.0
#: Seasonal means are removed from a KPI when their F-test gives p below this.
SEASONAL_P = 0.05
#: Full years of changes needed before seasonal adjustment is tried.
SEASONAL_YEARS = 3
#: Yearly waves fitted (each a sine and a cosine): 2 give a peak and a dip.
SEASONAL_HARMONICS = 2
#: Highest autoregressive order of the prewhitening filters.
MAX_AR_ORDER = 3
#: A series is prewhitened when its lag-1 autocorrelation is this many standard
#: errors (1 / sqrt(n)) from zero.
AR_EVIDENCE = 3.0


@dataclass(eq=False)
class Prepared:
    """One grid's changes, ready for the tests and the effect sizes.

    ``tested`` is what the pairwise tests correlate (standardized, prewhitened);
    ``regression`` what the effect sizes regress; ``lost`` the degrees of freedom each
    column spent; ``drivers`` the company-wide drivers found.
    """

    tested: np.ndarray
    lost: np.ndarray
    ar_order: np.ndarray
    regression: EffectInputs
    drivers: list[Driver] = field(default_factory=list)
    seasonal: np.ndarray | None = None
    gross: np.ndarray | None = None
    one_off: np.ndarray | None = None


@dataclass(eq=False)
class EffectInputs:
    """What the effect sizes regress (metrics.detection.effects): the cleaned changes,
    standardized (gross errors and one-off events left out), each column's scale in
    direction-adjusted raw units, the drivers' scores with each column's weight in
    them, and the seasonal waves where a column was adjusted."""

    standardized: np.ndarray
    scale: np.ndarray
    drivers: DriverScores
    seasonal_terms: np.ndarray | None
    seasonal: np.ndarray


def robust_scale(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return each column's median and robust standard deviation (1.4826 MAD, or the
    standard deviation when more than half the values are equal)."""
    with np.errstate(invalid="ignore"), quiet_nan_warnings():
        median = np.nanmedian(values, axis=0)
        mad = 1.4826 * np.nanmedian(np.abs(values - median), axis=0)
        std = np.nanstd(values, axis=0)
    scale = np.where(mad > 0, mad, std)
    return median, np.where(np.isfinite(scale) & (scale > 0), scale, np.nan)


def drop_outliers(values: np.ndarray, limit: float) -> tuple[np.ndarray, np.ndarray]:
    """Return ``values`` with the cells beyond ``limit`` robust SDs set to NaN, and the
    count dropped per column."""
    median, scale = robust_scale(values)
    with np.errstate(invalid="ignore"):
        far = np.abs(values - median) > limit * scale
    far &= ~np.isnan(values)
    cleaned = np.where(far, np.nan, values)
    return cleaned, far.sum(axis=0)


def seasonal_terms(position: np.ndarray, season: int) -> np.ndarray:
    """Return the Fourier terms of the year (periods x 2 * SEASONAL_HARMONICS): a
    yearly and a half-yearly wave, enough for a Q4 peak and a summer dip."""
    angle = 2 * np.pi * np.asarray(position, dtype=float) / season
    return np.column_stack(
        [
            wave(harmonic * angle)
            for harmonic in range(1, SEASONAL_HARMONICS + 1)
            for wave in (np.sin, np.cos)
        ]
    )


def seasonal_adjust(
    values: np.ndarray, position: np.ndarray, season: int
) -> tuple[np.ndarray, np.ndarray]:
    """Remove the seasonal waves from the columns whose F-test finds them.

    ``position`` gives each row's place in the year (0..season-1). Each column is
    regressed on the Fourier terms of :func:`seasonal_terms` over its observed rows;
    where the terms explain it (F-test at SEASONAL_P) their fit is removed. Return the
    adjusted values and which columns were adjusted. Needs SEASONAL_YEARS full years.
    """
    from scipy import stats

    periods, columns = values.shape
    adjusted = np.zeros(columns, dtype=bool)
    if season < 2 or periods < SEASONAL_YEARS * season:
        return values, adjusted
    terms = seasonal_terms(position, season)
    design = np.hstack([np.ones((periods, 1)), terms])
    present = ~np.isnan(values)
    filled = np.where(present, values, 0.0)
    gram = np.einsum("tk,tj,tl->jkl", design, present.astype(float), design)
    moment = np.einsum("tk,tj->jk", design, filled)
    coefficients = np.linalg.solve(
        gram + 1e-9 * np.eye(design.shape[1]), moment[..., None]
    )[..., 0]
    fitted = design @ coefficients.T
    count = present.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = filled.sum(axis=0) / count
        residual = np.where(present, values - fitted, 0.0)
        total = np.where(present, values - mean, 0.0)
        ss_residual = (residual**2).sum(axis=0)
        ss_seasonal = (total**2).sum(axis=0) - ss_residual
        freedom = count - design.shape[1]
        f = (ss_seasonal / terms.shape[1]) / (ss_residual / freedom)
        p = stats.f.sf(f, terms.shape[1], freedom)
    adjusted = np.isfinite(p) & (p < SEASONAL_P) & (freedom > 0)
    result = values.copy()
    seasonal_part = terms @ coefficients[:, 1:].T
    result[:, adjusted] = (values - seasonal_part)[:, adjusted]
    return result, adjusted


def prewhiten(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Filter each clearly autocorrelated column by its own AR(p) fit, p in
    1..MAX_AR_ORDER by BIC (Yule-Walker, Durbin-Levinson); leave the others as they are.

    Return the filtered columns and the order used per column (0: not filtered). A
    missing earlier value counts as the mean (0): dropping every row after a gap would
    cost a tenth of the data for each tenth missing. The first p rows are NaN.
    """
    periods, columns = values.shape
    centered = values - _column_mean(values)
    present = ~np.isnan(centered)
    count = present.sum(axis=0)
    filled = np.where(present, centered, 0.0)
    variance = (filled**2).sum(axis=0) / np.maximum(count, 1)
    rho = np.zeros((MAX_AR_ORDER + 1, columns))
    rho[0] = 1.0
    for lag in range(1, min(MAX_AR_ORDER, periods - 1) + 1):
        both = present[lag:] & present[:-lag]
        products = np.where(both, filled[lag:] * filled[:-lag], 0.0).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            rho[lag] = products / np.maximum(both.sum(axis=0), 1) / variance
    rho = np.clip(np.nan_to_num(rho), -0.99, 0.99)
    rho[0] = 1.0
    n = np.maximum(count, 1).astype(float)
    # Durbin-Levinson: the AR(p) coefficients and innovation variance for each p.
    phi = np.zeros((MAX_AR_ORDER + 1, MAX_AR_ORDER + 1, columns))
    sigma = np.ones((MAX_AR_ORDER + 1, columns))
    bic = np.full((MAX_AR_ORDER + 1, columns), np.inf)
    for p in range(1, MAX_AR_ORDER + 1):
        previous = phi[p - 1]
        numerator = rho[p] - np.sum(previous[1:p] * rho[p - 1 : 0 : -1], axis=0)
        reflection = np.clip(numerator / np.maximum(sigma[p - 1], 1e-12), -0.95, 0.95)
        phi[p, p] = reflection
        for k in range(1, p):
            phi[p, k] = previous[k] - reflection * previous[p - k]
        sigma[p] = sigma[p - 1] * (1.0 - reflection**2)
        bic[p] = n * np.log(np.maximum(sigma[p], 1e-12)) + p * np.log(n)
    # Only a clearly autocorrelated series is filtered (a trailing average is): a
    # filter fitted to white noise from 20-40 values costs more power than it saves.
    autocorrelated = (np.abs(rho[1]) * np.sqrt(n) >= AR_EVIDENCE) & (
        count >= 3 * MAX_AR_ORDER + 6
    )
    order = np.where(autocorrelated, np.argmin(bic[1:], axis=0) + 1, 0)
    whitened = centered.copy()
    chosen = phi[order, :, np.arange(columns)].T  # (MAX_AR_ORDER + 1) x columns
    for k in range(1, min(MAX_AR_ORDER, periods - 1) + 1):
        whitened[k:] -= chosen[k] * filled[:-k]
    for k in range(min(MAX_AR_ORDER, periods)):
        whitened[k, order > k] = np.nan
    return whitened, order


def _column_mean(values: np.ndarray) -> np.ndarray:
    with quiet_nan_warnings():
        mean = np.nanmean(values, axis=0)
    return np.where(np.isfinite(mean), mean, 0.0)


def prepare(
    changes: np.ndarray,
    *,
    groups: np.ndarray,
    position: np.ndarray | None = None,
    season: int = 0,
) -> Prepared:
    """Run the five steps of the module docstring on one grid's changes.

    ``changes`` are direction-adjusted (periods x KPIs, NaN where missing); ``groups``
    holds each column's silo; ``position`` each row's place in the year (0..season-1).
    """
    changes = np.asarray(changes, dtype=float)
    columns = changes.shape[1]
    cleaned, gross = drop_outliers(changes, GROSS_Z)
    with np.errstate(invalid="ignore"), quiet_nan_warnings():
        scale = np.nanstd(cleaned, axis=0)
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    standardized = standardize_columns(cleaned)
    scores, drivers = find_drivers(standardized, np.asarray(groups))
    residual = remove_drivers(standardized, scores)
    seasonal = np.zeros(columns, dtype=bool)
    if position is not None and season:
        residual, seasonal = seasonal_adjust(residual, np.asarray(position), season)
    residual, one_off = drop_outliers(residual, RESIDUAL_Z)
    whitened, order = prewhiten(residual)
    tested = standardize_columns(whitened)
    lost = (
        DRIVER_LAGS * scores.scores.shape[1]
        + np.where(seasonal, 2 * SEASONAL_HARMONICS, 0)
    ).astype(np.int64)
    return Prepared(
        tested=tested,
        lost=lost,
        ar_order=order,
        regression=EffectInputs(
            standardized=np.where(np.isnan(residual), np.nan, standardized),
            scale=scale,
            drivers=scores,
            seasonal_terms=seasonal_terms(position, season)
            if seasonal.any() and position is not None
            else None,
            seasonal=seasonal,
        ),
        drivers=drivers,
        seasonal=seasonal,
        gross=gross,
        one_off=one_off,
    )
