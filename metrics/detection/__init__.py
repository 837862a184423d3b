"""Statistics of observed-conflict detection on plain arrays (no ORM).

- :mod:`metrics.detection.grids` puts every KPI on the grid of each frequency it is
  compared on: its own, and each coarser one (aggregated by its own aggregation);
- :mod:`metrics.detection.prepare` turns one grid's changes into what the tests read
  (gross errors out, company-wide drivers out, seasonal waves out, one-off events out,
  prewhitening);
- :mod:`metrics.detection.pairs` runs the lagged pairwise tests in blocks and the
  false-discovery step over all of them;
- :mod:`metrics.detection.effects` says, for each conflict found, what it costs in the
  affected KPI's own units, with a 95% confidence interval.

The method and its reasons are in the README ("Observed conflicts").
"""

from metrics.detection.pairs import (
    DEFAULT_MAX_LAG,
    DEFAULT_MIN_PAIRS,
    DEFAULT_Q_THRESHOLD,
    Association,
    BlockScan,
    Candidates,
    LagResult,
    benjamini_hochberg,
    bh_upper_bound,
    block_candidates,
    block_ranges,
    combine_candidates,
    find_associations,
    histogram_edges,
    lagged_correlations,
    lagged_correlations_block,
    merge_scans,
    period_changes,
    plan_p_keep,
    scan_block,
    standardize,
)

__all__ = [
    "DEFAULT_MAX_LAG",
    "DEFAULT_MIN_PAIRS",
    "DEFAULT_Q_THRESHOLD",
    "Association",
    "BlockScan",
    "Candidates",
    "LagResult",
    "benjamini_hochberg",
    "bh_upper_bound",
    "block_candidates",
    "block_ranges",
    "combine_candidates",
    "find_associations",
    "histogram_edges",
    "lagged_correlations",
    "lagged_correlations_block",
    "merge_scans",
    "period_changes",
    "plan_p_keep",
    "scan_block",
    "standardize",
]
