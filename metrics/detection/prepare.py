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
#: Shuffled copies for the parallel analysis (seeded: a run is reproducible).
PERMUTATIONS = 20
PERMUTATION_SEED = 20261201
#: At most this many drivers, and at most one per this many periods.
MAX_DRIVERS = 5
PERIODS_PER_DRIVER = 10
#: A driver moves at least this many KPIs of at least this many silos.
DRIVER_MIN_KPIS = 5
DRIVER_MIN_SILOS = 2
DRIVER_MEMBER_R = 0.5
#: Of a driver's members, at least this share of their pairs correlate by at least
#: DRIVER_PAIR_R: a driver is one pattern shared by many KPIs, not a mix of pairs.
DRIVER_CONSISTENCY = 2 / 3
DRIVER_PAIR_R = 0.3
#: Drivers act in their own period and in the next.
DRIVER_LAGS = 2
#: Highest autoregressive order of the prewhitening filters.
MAX_AR_ORDER = 3
#: A series is prewhitened when its lag-1 autocorrelation is this many standard
#: errors (1 / sqrt(n)) from zero.
AR_EVIDENCE = 3.0
#: Columns with fewer values than this take no part in estimating the drivers.
MIN_VALUES = 8
_EM_ITERATIONS = 50
_EM_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Driver:
    """A company-wide driver: the KPIs (columns) that move with it and how much."""

    share: float  # of the standardized variance
    columns: tuple[int, ...]
    correlations: tuple[float, ...]


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
    with np.errstate(invalid="ignore"), _quiet():
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


def _standardize(values: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"), _quiet():
        mean = np.nanmean(values, axis=0)
        scale = np.nanstd(values, axis=0)
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    return (values - np.where(np.isfinite(mean), mean, 0.0)) / scale


def _top_eigenvalues(filled: np.ndarray, count: int) -> np.ndarray:
    # Eigenvalues of the (columns x columns) correlation matrix, from the small
    # (periods x periods) Gram matrix: they share their non-zero eigenvalues.
    gram = filled @ filled.T / filled.shape[0]
    eigenvalues = np.linalg.eigvalsh(gram)[::-1]
    return eigenvalues[:count]


def em_pca(
    standardized: np.ndarray, components: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (scores: periods x k, weights: columns x k, filled: periods x columns).

    Missing cells start at 0 (the column mean) and are replaced by the rank-k fit
    until it settles (EM-PCA, as in Stock and Watson's factor models with gaps).
    ``scores = filled @ weights``: each score is a weighted sum of the columns.
    """
    present = ~np.isnan(standardized)
    filled = np.where(present, standardized, 0.0)
    fit = np.zeros_like(filled)
    for _ in range(_EM_ITERATIONS):
        u, s, vt = np.linalg.svd(filled, full_matrices=False)
        new_fit = (u[:, :components] * s[:components]) @ vt[:components]
        change = np.sum((new_fit - fit)[~present] ** 2)
        fit = new_fit
        filled = np.where(present, standardized, fit)
        if change <= _EM_TOLERANCE * max(1.0, float(np.sum(fit**2))):
            break
    u, s, vt = np.linalg.svd(filled, full_matrices=False)
    root = np.sqrt(filled.shape[0])
    scores = u[:, :components] * root
    weights = vt[:components].T / np.maximum(s[:components], 1e-12) * root
    return scores, weights, filled


@dataclass(frozen=True, eq=False)
class DriverScores:
    """The drivers' scores over time, and how each column weighs in them.

    ``scores = filled @ weights`` (periods x drivers): a column's own share of a score
    is ``filled[:, j] * weights[j]``, which :func:`remove_drivers` leaves out when it
    explains column j.
    """

    scores: np.ndarray
    weights: np.ndarray
    filled: np.ndarray

    @classmethod
    def none(cls, periods: int, columns: int) -> DriverScores:
        return cls(
            np.zeros((periods, 0)), np.zeros((columns, 0)), np.zeros((periods, columns))
        )


def find_drivers(
    standardized: np.ndarray, groups: np.ndarray
) -> tuple[DriverScores, list[Driver]]:
    """Return the drivers' scores and their description.

    See the module docstring for the rule (parallel analysis, then company-wide).
    """
    periods, columns = standardized.shape
    usable = (~np.isnan(standardized)).sum(axis=0) >= MIN_VALUES
    limit = min(MAX_DRIVERS, periods // PERIODS_PER_DRIVER, int(usable.sum()) // 2)
    if limit < 1:
        return DriverScores.none(periods, columns), []
    data = standardized[:, usable]
    filled = np.nan_to_num(data, nan=0.0)
    observed = _top_eigenvalues(filled, limit)
    rng = np.random.default_rng(PERMUTATION_SEED)
    null = np.empty((PERMUTATIONS, limit))
    rows = np.arange(periods)[:, None]
    for copy in range(PERMUTATIONS):
        # Each column rotated in time by its own random offset: the columns keep their
        # autocorrelation (a trailing average stays smooth) but lose each other.
        offsets = rng.integers(0, periods, size=filled.shape[1])
        shifted = filled[(rows + offsets) % periods, np.arange(filled.shape[1])]
        null[copy] = _top_eigenvalues(shifted, limit)
    threshold = np.quantile(null, 0.95, axis=0)
    above = 0
    while above < limit and observed[above] > threshold[above]:
        above += 1
    if above == 0:
        return DriverScores.none(periods, columns), []
    scores, weights, filled_data = em_pca(data, above)
    used = np.flatnonzero(usable)
    drivers: list[Driver] = []
    kept = []
    total = float(np.sum(filled**2)) / periods
    for component in range(above):
        correlations = _correlations(standardized, scores[:, component])
        members = np.flatnonzero(np.abs(correlations) >= DRIVER_MEMBER_R)
        members = members[np.isin(members, used)]
        if (
            members.size < DRIVER_MIN_KPIS
            or np.unique(groups[members]).size < DRIVER_MIN_SILOS
            or not _moves_together(standardized[:, members])
        ):
            continue
        order = members[np.argsort(-np.abs(correlations[members]))]
        drivers.append(
            Driver(
                share=float(observed[component] / total) if total > 0 else 0.0,
                columns=tuple(int(c) for c in order),
                correlations=tuple(float(correlations[c]) for c in order),
            )
        )
        kept.append(component)
    all_weights = np.zeros((columns, len(kept)))
    all_weights[usable] = weights[:, kept]
    all_filled = np.zeros((periods, columns))
    all_filled[:, usable] = filled_data
    return DriverScores(scores[:, kept], all_weights, all_filled), drivers


def _moves_together(members: np.ndarray) -> bool:
    """Whether most pairs of these columns correlate (see DRIVER_CONSISTENCY)."""
    filled = np.nan_to_num(members, nan=0.0)
    present = (~np.isnan(members)).astype(float)
    count = present.T @ present
    with np.errstate(invalid="ignore", divide="ignore"):
        products = (filled.T @ filled) / np.maximum(count, 1)
        scale = np.sqrt(np.diag(filled.T @ filled) / np.maximum(np.diag(count), 1))
        correlation = products / np.outer(scale, scale)
    upper = np.triu_indices(members.shape[1], k=1)
    strong = np.abs(np.nan_to_num(correlation[upper])) >= DRIVER_PAIR_R
    return bool(strong.mean() >= DRIVER_CONSISTENCY)


def _correlations(values: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Correlation of each column (over its observed rows) with ``score``."""
    present = ~np.isnan(values)
    x = np.where(present, values, 0.0)
    s = np.where(present, score[:, None], 0.0)
    n = present.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        sx, ss = x.sum(axis=0), s.sum(axis=0)
        cov = (x * s).sum(axis=0) - sx * ss / n
        vx = (x**2).sum(axis=0) - sx**2 / n
        vs = (s**2).sum(axis=0) - ss**2 / n
        r = cov / np.sqrt(vx * vs)
    return np.where(n >= 3, np.nan_to_num(r), 0.0)


def remove_drivers(values: np.ndarray, drivers: DriverScores) -> np.ndarray:
    """Return each column's residual after regressing it, over its observed rows, on the
    drivers' scores of the same period (and, with DRIVER_LAGS = 2, the one before).

    A column is explained by scores computed without it (leave-one-out): a driver's
    score is a weighted sum of its members, and a KPI's own change must not explain
    itself, or a KPI that weighs much in a small company's driver would lose its own
    change, the very thing a conflict is made of.
    """
    periods, columns = values.shape
    k = drivers.scores.shape[1]
    if k == 0:
        return values.copy()
    # Per column j and period t: the scores without column j's own share.
    own = drivers.filled.T[:, :, None] * drivers.weights[:, None, :]  # j x t x k
    without = drivers.scores[None, :, :] - own
    parts = [without]
    for lag in range(1, DRIVER_LAGS):
        shifted = np.zeros_like(without)
        shifted[:, lag:] = without[:, :-lag]
        parts.append(shifted)
    design = np.concatenate([np.ones((columns, periods, 1)), *parts], axis=2)
    present = ~np.isnan(values)
    weights = present.T.astype(float)  # j x t
    filled = np.where(present, values, 0.0).T  # j x t
    gram = np.einsum("jtk,jt,jtl->jkl", design, weights, design)
    moment = np.einsum("jtk,jt->jk", design, filled)
    ridge = 1e-9 * np.eye(design.shape[2])
    coefficients = np.linalg.solve(gram + ridge, moment[..., None])[..., 0]
    fitted = np.einsum("jtk,jk->tj", design, coefficients)
    return np.where(present, values - fitted, np.nan)


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
    with _quiet():
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
    with np.errstate(invalid="ignore"), _quiet():
        scale = np.nanstd(cleaned, axis=0)
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    standardized = _standardize(cleaned)
    scores, drivers = find_drivers(standardized, np.asarray(groups))
    residual = remove_drivers(standardized, scores)
    seasonal = np.zeros(columns, dtype=bool)
    if position is not None and season:
        residual, seasonal = seasonal_adjust(residual, np.asarray(position), season)
    residual, one_off = drop_outliers(residual, RESIDUAL_Z)
    whitened, order = prewhiten(residual)
    tested = _standardize(whitened)
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


class _quiet:
    """Silence numpy's "mean of empty slice" for all-NaN columns (they stay NaN)."""

    def __enter__(self) -> None:
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc: object) -> None:
        self._catch.__exit__(*exc)
