"""A detection run's computation on its prepared matrices (conflicts.inputs), block
by block.

The statistics (metrics.detection) know nothing of the ORM; this module cuts each
matrix's pairs into blocks, scans a block, merges the blocks' results, sizes the
effects, names the drivers, and (de)serializes a block's result so that Celery workers
can compute blocks anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from conflicts.inputs import (
    FrequencyMatrix,
)
from metrics import detection
from metrics.detection import effects, grids


def scan(
    matrix: FrequencyMatrix,
    block: tuple[int, int, int, int],
    *,
    max_lag: int,
    min_pairs: int,
    q_threshold: float,
    p_keep: float,
) -> detection.BlockScan:
    """Scan one block of ``matrix`` and name its candidates by KPI id, not column."""
    leader_start, leader_stop, follower_start, follower_stop = block
    result = detection.scan_block(
        matrix.standardized,
        np.arange(leader_start, leader_stop),
        np.arange(follower_start, follower_stop),
        groups=matrix.silo_ids,
        max_lag=max_lag,
        min_pairs=min_pairs,
        q_threshold=q_threshold,
        p_keep=p_keep,
        rank=matrix.rank,
        lost=matrix.lost,
        native=matrix.native,
        one_sided=matrix.one_sided,
    )
    found = result.candidates
    return detection.BlockScan(
        tests=result.tests,
        histogram=result.histogram,
        candidates=detection.Candidates(
            tests=found.tests,
            leader=matrix.kpi_ids[found.leader],
            follower=matrix.kpi_ids[found.follower],
            lag=found.lag,
            r=found.r,
            p=found.p,
            n=found.n,
        ),
    )


def one_sided(matrices: list[FrequencyMatrix]) -> bool:
    """Whether a run's tests are one-sided (its method's; every matrix agrees)."""
    return any(matrix.one_sided for matrix in matrices)


def work_items(
    matrices: list[FrequencyMatrix], block_size: int
) -> list[tuple[int, tuple[int, int, int, int]]]:
    """Return every (matrix index, block) of a run."""
    return [
        (index, block)
        for index, matrix in enumerate(matrices)
        for block in matrix.blocks(block_size)
    ]


def scan_all(
    matrices: list[FrequencyMatrix],
    *,
    max_lag: int,
    min_pairs: int,
    q_threshold: float,
    block_size: int,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[detection.Association], int, int]:
    """Scan every block in this process and apply the false-discovery step over all.

    Return the associations (leader and follower are KPI ids), the number of tests and
    the number of blocks. ``progress(done, total)`` is called after each block. The
    Celery chord (conflicts.tasks) runs the same blocks across workers and the same
    final step (:func:`metrics.detection.merge_scans`).
    """
    p_keep = first_p_keep(matrices, max_lag=max_lag, q_threshold=q_threshold)
    work = work_items(matrices, block_size)
    while True:
        scans = []
        for done, (index, block) in enumerate(work, start=1):
            scans.append(
                scan(
                    matrices[index],
                    block,
                    max_lag=max_lag,
                    min_pairs=min_pairs,
                    q_threshold=q_threshold,
                    p_keep=p_keep,
                )
            )
            if progress is not None:
                progress(done, len(work))
        merged = detection.merge_scans(
            scans,
            p_keep=p_keep,
            q_threshold=q_threshold,
            one_sided=one_sided(matrices),
        )
        if isinstance(merged, list):
            return merged, sum(s.tests for s in scans), len(work)
        p_keep = merged


def first_p_keep(
    matrices: list[FrequencyMatrix], *, max_lag: int, q_threshold: float
) -> float:
    """Return the first cut for all blocks of a run (see detection.plan_p_keep)."""
    kpis = sum(matrix.kpi_ids.size for matrix in matrices)
    rows = max((matrix.standardized.shape[0] for matrix in matrices), default=1)
    return detection.plan_p_keep(kpis, rows, max_lag, q_threshold)


def native_frequency(matrices: list[FrequencyMatrix]) -> dict[int, str]:
    """Return each tested KPI's own frequency."""
    return {
        int(kpi): matrix.frequency
        for matrix in matrices
        for kpi in matrix.kpi_ids[matrix.native]
    }


def grid_of(frequency: dict[int, str], leader: int, follower: int) -> str:
    """The grid a pair is tested on: the coarser of the two KPIs' frequencies ("" if
    either is not in the run's matrices)."""
    if leader not in frequency or follower not in frequency:
        return ""
    return max(frequency[leader], frequency[follower], key=grids.ORDER.index)


def effects_of(
    matrices: list[FrequencyMatrix], associations: list[detection.Association]
) -> dict[tuple[int, int], effects.Effect]:
    """Return the effect of each association, by (leader, follower).

    A lag-0 association is estimated both ways round, since the register may orient
    it along a declared link (see conflicts.services.register).
    """
    by_frequency = {matrix.frequency: matrix for matrix in matrices}
    frequency = native_frequency(matrices)
    result: dict[tuple[int, int], effects.Effect] = {}
    for association in associations:
        matrix = by_frequency.get(
            grid_of(frequency, association.leader, association.follower)
        )
        if matrix is None:
            continue
        column = {int(kpi): index for index, kpi in enumerate(matrix.kpi_ids)}
        orientations = [(association.leader, association.follower)]
        if association.lag == 0:
            orientations.append((association.follower, association.leader))
        for leader, follower in orientations:
            i, j = column[leader], column[follower]
            estimated = effects.estimate(
                matrix.regression,
                i,
                j,
                lag=association.lag,
                leader_sign=float(matrix.sign[i]),
                follower_sign=float(matrix.sign[j]),
                lost=int(max(matrix.lost[i], matrix.lost[j]))
                if association.lag == 0
                else 0,
            )
            if estimated is not None:
                result[(leader, follower)] = estimated
    return result


def drivers_of(matrices: list[FrequencyMatrix]) -> list[dict[str, Any]]:
    """Describe each grid's company-wide drivers by KPI id (largest share first)."""
    described = []
    for matrix in matrices:
        for number, driver in enumerate(matrix.drivers, start=1):
            described.append(
                {
                    "grid": matrix.frequency,
                    "number": number,
                    "share": round(driver.share, 4),
                    "kpis": [
                        {"kpi_id": int(matrix.kpi_ids[c]), "correlation": round(r, 3)}
                        for c, r in zip(
                            driver.columns, driver.correlations, strict=True
                        )
                    ],
                }
            )
    return described


def scan_to_json(
    result: detection.BlockScan, work_item: list[Any] | None = None
) -> dict[str, Any]:
    """Serialize a block's scan for the Celery result backend (floats round-trip).

    ``work_item`` ([matrix index, block]) names the block, so that the final step can
    check that it received every block exactly once.
    """
    found = result.candidates
    return {
        "work_item": work_item,
        "tests": result.tests,
        "histogram": np.asarray(result.histogram).tolist(),
        "leader": found.leader.tolist(),
        "follower": found.follower.tolist(),
        "lag": found.lag.tolist(),
        "r": found.r.tolist(),
        "p": found.p.tolist(),
        "n": found.n.tolist(),
    }


def scan_from_json(data: dict[str, Any]) -> detection.BlockScan:
    """Rebuild a block's scan from :func:`scan_to_json`."""
    return detection.BlockScan(
        tests=int(data["tests"]),
        histogram=np.atleast_2d(np.asarray(data["histogram"], dtype=np.int64)),
        candidates=detection.Candidates(
            tests=int(data["tests"]),
            leader=np.asarray(data["leader"], dtype=np.int64),
            follower=np.asarray(data["follower"], dtype=np.int64),
            lag=np.asarray(data["lag"], dtype=np.int64),
            r=np.asarray(data["r"], dtype=float),
            p=np.asarray(data["p"], dtype=float),
            n=np.asarray(data["n"], dtype=np.int64),
        ),
    )
