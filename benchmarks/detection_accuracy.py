"""Benchmark: does conflict detection hold on data that looks like a real company's?

Run: ``uv run python benchmarks/detection_accuracy.py`` (no database: the companies are
built in memory and go through the same code as a run, ``conflicts.engine``: grids,
preparation, the pairwise tests in blocks, the false-discovery step).

Companies (tests/conflicts/messy.py), the same seeds every time:

- **messy**: eight companies with the six features of real KPI data (common drivers,
  seasonality, trailing averages, one-off events/typos/reorgs, mixed frequencies,
  uneven histories), each with five planted cross-silo conflicts (lags 0-3 monthly, one
  with a 3-month trailing-average follower, one with a quarterly follower) and traps:
  a synergy, a trade-off inside one silo, independent opposite trends, the drivers'
  co-movement, a joint one-off shift, a spike and a dip a month apart, a typo;
- **clean**: eight companies of independent random walks with five planted conflicts.

Both methods run on the same data: **pairwise** (the first method: changes as they
are, two-sided, mixed frequencies skipped) and **drivers** (the default). Printed side
by side per company and in total: planted found (of those planted; and of those
*testable*: with at least ``min_pairs`` paired changes at their lag, so that some
method could find them), false conflicts (registered conflicts on a pair that was not
planted), and found with the right leader and lag.

Goals (issue 11): on messy companies the drivers method finds at least 75% of the
testable planted conflicts, with at most 1 false conflict per company on average, and
the right leader and lag for at least 90% of those found; on clean companies at least
90% found and at most 1 false per company. Exit 0 when it measured (the last lines say
PASS or MISS).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field

import _support

SEEDS = range(8)
OPTIONS = {"max_lag": 3, "min_pairs": 12, "q_threshold": 0.05, "block_size": 1000}
GOALS = {
    "messy": {"found": 0.75, "false": 1.0, "right": 0.90},
    "clean": {"found": 0.90, "false": 1.0, "right": 0.90},
}


@dataclass
class Score:
    planted: int = 0
    testable: int = 0
    found: int = 0
    right: int = 0
    false: int = 0
    seconds: float = 0.0
    false_pairs: list[tuple[str, str, int]] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)

    def add(self, other: Score) -> None:
        self.planted += other.planted
        self.testable += other.testable
        self.found += other.found
        self.right += other.right
        self.false += other.false
        self.seconds += other.seconds


def testable(company, planted, min_pairs: int) -> bool:  # type: ignore[no-untyped-def]
    """Whether the data holds ``min_pairs`` paired changes for the planted pair."""
    from metrics.detection import grids

    series, keys = company.as_series()
    ids = {key: kpi_id for kpi_id, key in keys.items()}
    for grid in grids.build(series):
        if grid.frequency != planted.grid:
            continue
        column = {int(k): i for i, k in enumerate(grid.kpi_ids)}
        if ids[planted.leader] not in column or ids[planted.follower] not in column:
            return False
        levels = grid.levels
        changes = ~np_isnan(levels[1:]) & ~np_isnan(levels[:-1])
        lead = changes[:, column[ids[planted.leader]]]
        follow = changes[:, column[ids[planted.follower]]]
        lag = planted.lag
        paired = lead[: lead.size - lag] & follow[lag:]
        return int(paired.sum()) >= min_pairs
    return False


def np_isnan(values):  # type: ignore[no-untyped-def]
    import numpy as np

    return np.isnan(values)


def score(company, method: str) -> Score:  # type: ignore[no-untyped-def]
    """Detect with ``method`` on ``company`` and compare with the ground truth."""
    from conflicts import engine, inputs

    began = time.perf_counter()
    series, keys = company.as_series()
    matrices = inputs.matrices_from(series, method)
    associations, _, _ = engine.scan_all(matrices, **OPTIONS)
    seconds = time.perf_counter() - began
    planted = {(p.leader, p.follower): p for p in company.planted}
    result = Score(
        planted=len(company.planted),
        testable=sum(
            testable(company, p, OPTIONS["min_pairs"]) for p in planted.values()
        ),
        seconds=seconds,
    )
    found = set()
    for association in associations:
        if association.kind != "conflict":
            continue
        leader, follower = keys[association.leader], keys[association.follower]
        truth = planted.get((leader, follower)) or planted.get((follower, leader))
        if truth is None:
            result.false += 1
            result.false_pairs.append((leader, follower, association.lag))
            continue
        found.add((truth.leader, truth.follower))
        result.found += 1
        result.right += leader == truth.leader and association.lag == truth.lag
    result.missed = [
        f"{p.leader} -> {p.follower} ({p.grid}, lag {p.lag}"
        + ("" if testable(company, p, OPTIONS["min_pairs"]) else ", untestable")
        + ")"
        for key, p in planted.items()
        if key not in found
    ]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=len(SEEDS))
    parser.add_argument("--verbose", action="store_true", help="list false conflicts")
    arguments = parser.parse_args()
    _support.setup_django_without_database()

    from tests.conflicts.messy import clean_company, messy_company

    print(
        "Detection accuracy on seeded synthetic companies "
        f"(max lag {OPTIONS['max_lag']}, min pairs {OPTIONS['min_pairs']}, "
        f"q {OPTIONS['q_threshold']})\n"
    )
    verdicts = []
    for kind, make in (("messy", messy_company), ("clean", clean_company)):
        totals = {"pairwise": Score(), "drivers": Score()}
        print(
            f"{kind:<6} {'seed':>4} {'months':>6} | "
            + " | ".join(
                f"{m:<8} found/testable right false" for m in ("pairwise", "drivers")
            )
        )
        for seed in range(arguments.seeds):
            company = make(seed)
            cells = []
            for method in ("pairwise", "drivers"):
                result = score(company, method)
                totals[method].add(result)
                cells.append(
                    f"{'':<8} {result.found:>2}/{result.testable:<2} of {result.planted}"
                    f"  {result.right:>5} {result.false:>5}"
                )
                if arguments.verbose and result.false_pairs:
                    print(f"    {method} false: {result.false_pairs}")
                if arguments.verbose and result.missed:
                    print(f"    {method} missed: {result.missed}")
            print(f"{kind:<6} {seed:>4} {company.months:>6} | " + " | ".join(cells))
        companies = arguments.seeds
        print()
        for method, total in totals.items():
            found_share = total.found / max(total.testable, 1)
            right_share = total.right / max(total.found, 1)
            false_rate = total.false / companies
            print(
                f"  {kind} {method:<8}: found {total.found}/{total.testable} testable "
                f"({found_share:.0%}; {total.found}/{total.planted} planted), "
                f"false {total.false} ({false_rate:.2f} per company), right leader "
                f"and lag {total.right}/{total.found} ({right_share:.0%}), "
                f"{total.seconds:.2f} s"
            )
            if method == "drivers":
                goal = GOALS[kind]
                verdicts.append(
                    (
                        kind,
                        found_share >= goal["found"]
                        and false_rate <= goal["false"]
                        and right_share >= goal["right"],
                        f"found >= {goal['found']:.0%}, false <= {goal['false']:g} "
                        f"per company, right >= {goal['right']:.0%}",
                    )
                )
        print()
    for kind, passed, goal in verdicts:
        print(
            f"{'PASS' if passed else 'MISS'}: {kind} companies, drivers method ({goal})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
