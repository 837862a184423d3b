"""Company-wide drivers: the common patterns (market demand, the season, a price
change) that move many KPIs of several silos at once, found by EM-PCA with Horn's
parallel analysis and removed from each KPI leave-one-out (step 2 of
metrics.detection.prepare, whose docstring says how and why).

Pure numpy, no ORM.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

import numpy as np

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


def standardize_columns(values: np.ndarray) -> np.ndarray:
    """Each column to mean 0 and standard deviation 1, ignoring NaN (a constant or
    empty column keeps scale 1)."""
    with np.errstate(invalid="ignore", divide="ignore"), quiet_nan_warnings():
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


class quiet_nan_warnings:
    """Silence numpy's "mean of empty slice" for all-NaN columns (they stay NaN)."""

    def __enter__(self) -> None:
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._catch.__exit__(exc_type, exc, traceback)
