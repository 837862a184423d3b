"""Statistics of observed-conflict detection on plain arrays (no ORM).

- :mod:`metrics.detection.grids` puts every KPI on the grid of each frequency it is
  compared on: its own, and each coarser one (aggregated by its own aggregation);
- :mod:`metrics.detection.prepare` turns one grid's changes into what the tests read
  (gross errors out, company-wide drivers out, seasonal waves out, one-off events out,
  prewhitening);
- :mod:`metrics.detection.pairs` holds the pairwise tests together: the changes, and
  :func:`find_associations`, which runs the whole scan in this process;
- :mod:`metrics.detection.scan` runs the lagged pairwise tests of one block of pairs;
- :mod:`metrics.detection.fdr` is the false-discovery step over all blocks
  (Benjamini-Hochberg, and the bound that lets blocks ship only a few tests);
- :mod:`metrics.detection.effects` says, for each conflict found, what it costs in the
  affected KPI's own units, with a 95% confidence interval.

The method and its reasons are in the README ("Observed conflicts").
"""

from metrics.detection.fdr import (
    DEFAULT_Q_THRESHOLD,
    Association,
    BlockScan,
    Candidates,
    benjamini_hochberg,
    bh_upper_bound,
    combine_candidates,
    histogram_edges,
    merge_scans,
    plan_p_keep,
)
from metrics.detection.pairs import find_associations, period_changes, standardize
from metrics.detection.scan import (
    DEFAULT_MAX_LAG,
    DEFAULT_MIN_PAIRS,
    block_ranges,
    scan_block,
)

__all__ = [
    "DEFAULT_MAX_LAG",
    "DEFAULT_MIN_PAIRS",
    "DEFAULT_Q_THRESHOLD",
    "Association",
    "BlockScan",
    "Candidates",
    "benjamini_hochberg",
    "bh_upper_bound",
    "block_ranges",
    "combine_candidates",
    "find_associations",
    "histogram_edges",
    "merge_scans",
    "period_changes",
    "plan_p_keep",
    "scan_block",
    "standardize",
]
