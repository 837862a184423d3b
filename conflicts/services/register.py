"""The conflict register: kept in line with the declared links and each run's evidence.

The register is written only here, always under one PostgreSQL advisory lock, so two
runs (or a run and a goal change) at once never duplicate or half-update a conflict.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from conflicts.models import (
    CLOSED_STATUSES,
    SEVERITY_RANK,
    Conflict,
    ConflictTransition,
    DetectionRun,
    Kind,
    Severity,
    Status,
)
from cycles.models import Phase
from goals.models import Goal
from goals.selectors import goal_attainment, goal_list_with_actuals, with_pace
from metrics import detection
from metrics.detection.effects import Effect as EffectSize
from metrics.locks import advisory_xact_lock
from metrics.models import KPI, Effect, ImpactLink

#: Key of the advisory lock that serializes every write of the register.
REGISTER_LOCK = 0x6475_6374  # "duct"

#: |r| from which an effect is strong / moderate (Cohen's conventions for r).
STRONG_EFFECT = 0.5
MODERATE_EFFECT = 0.3
#: How much stronger (in |r|) evidence must get to reopen a closed conflict.
REOPEN_MARGIN = 0.10


# The fields a reconciliation may change (bulk_update writes these).
_RECONCILED_FIELDS = [
    "kind",
    "alerted_high",
    "is_declared",
    "is_observed",
    "contradicted",
    "stale",
    "stale_since",
    "link",
    "lag",
    "correlation",
    "p_value",
    "q_value",
    "periods",
    "grid",
    "effect",
    "effect_low",
    "effect_high",
    "effect_step",
    "last_run",
    "severity",
    "goal_at_risk",
    "status",
    "note",
    "status_changed_at",
    "status_changed_by",
    "last_detected_at",
]


# The same, as attributes (foreign keys by id, so comparing loads no related row).
_COMPARED = [
    f"{name}_id" if name in ("link", "last_run", "status_changed_by") else name
    for name in _RECONCILED_FIELDS
]


def severity_for(
    *, correlation: float | None, goal_at_risk: bool, contradicted: bool
) -> str:
    """Return the severity of a conflict from its effect size and the affected goal.

    high: a strong effect (|r| >= 0.5) on a KPI whose goal is at risk; medium: a strong
    effect without a goal at risk, a moderate one (0.3 <= |r| < 0.5) with one, or a
    declared conflict without data evidence on a KPI whose goal is at risk; low: the
    rest, and any declared link the data contradicts.
    """
    if contradicted:
        return Severity.LOW
    if correlation is None:
        return Severity.MEDIUM if goal_at_risk else Severity.LOW
    strength = abs(correlation)
    if strength >= STRONG_EFFECT:
        return Severity.HIGH if goal_at_risk else Severity.MEDIUM
    if strength >= MODERATE_EFFECT and goal_at_risk:
        return Severity.MEDIUM
    return Severity.LOW


def materially_stronger(conflict: Conflict) -> bool:
    """Return whether a closed conflict's current evidence justifies reopening it.

    Stronger means: a higher severity than when it was closed, data evidence where it
    was closed without any, or |r| at least REOPEN_MARGIN above its value at closing.
    """
    if conflict.stale or conflict.contradicted:
        return False
    closed_rank = SEVERITY_RANK.get(conflict.closed_severity, 0)
    if SEVERITY_RANK[conflict.severity] > closed_rank:
        return True
    if not conflict.is_observed or conflict.correlation is None:
        return False
    if conflict.closed_correlation is None:
        return True
    return abs(conflict.correlation) >= abs(conflict.closed_correlation) + REOPEN_MARGIN


def declared_links() -> dict[tuple[int, int], ImpactLink]:
    """Return the hurts links whose leader KPI has an improving goal in an open cycle.

    Improving: a single target away from the baseline, or a band the baseline is
    outside of (goal validation already puts a target on the improving side).
    """
    improving = (
        Goal.objects.filter(kpi=OuterRef("leader_kpi"))
        .exclude(cycle__phase=Phase.CLOSED)
        .filter(
            (Q(target__isnull=False) & ~Q(target=F("baseline")))
            | (
                Q(target_low__isnull=False)
                & (Q(baseline__lt=F("target_low")) | Q(baseline__gt=F("target_high")))
            )
        )
    )
    links = ImpactLink.objects.filter(effect=Effect.HURTS).filter(Exists(improving))
    return {(link.leader_kpi_id, link.affected_kpi_id): link for link in links}


def kpis_with_goal_at_risk() -> set[int]:
    """Return the KPIs with a goal in an open cycle that is not met (or has no data)."""
    goals = with_pace(
        goal_list_with_actuals(Goal.objects.exclude(cycle__phase=Phase.CLOSED))
    )
    at_risk = set()
    for goal in goals:
        attainment = goal_attainment(goal)
        if attainment is None or attainment < 1.0:
            at_risk.add(goal.kpi_id)
    return at_risk


@dataclass
class ReconcileResult:
    """What one reconciliation changed."""

    created: list[Conflict]
    reopened: list[Conflict]
    escalated: list[Conflict]
    marked_stale: int
    contradicted: int


def register_reconcile(
    *,
    run: DetectionRun | None = None,
    associations: Iterable[detection.Association] | None = None,
    effects: dict[tuple[int, int], EffectSize] | None = None,
    grids: dict[frozenset[int], str] | None = None,
) -> ReconcileResult:
    """Bring the register in line with the declared links and (with a run) the data.

    Without ``run`` only the declared side and the severities are refreshed (a goal,
    link or cycle changed); the observed side keeps the last run's evidence. With a
    run, ``effects`` (by (leader, follower)) and ``grids`` (by pair) say what each
    association costs and in which periods it was found. A constant number of queries
    whatever the register's size.
    """
    effects = effects or {}
    grids = grids or {}
    now = timezone.now()
    with transaction.atomic():
        advisory_xact_lock(REGISTER_LOCK)
        existing = {
            (c.leader_kpi_id, c.affected_kpi_id): c
            for c in Conflict.objects.select_for_update()
        }
        declared = declared_links()
        hurts = {
            (link.leader_kpi_id, link.affected_kpi_id): link
            for link in ImpactLink.objects.filter(effect=Effect.HURTS)
        }
        at_risk = kpis_with_goal_at_risk()
        observed: dict[tuple[int, int], detection.Association] = {}
        positive: dict[tuple[int, int], detection.Association] = {}
        for association in associations or ():
            pair = (association.leader, association.follower)
            # A lag-0 test has no direction: follow a declared link that names the
            # pair the other way round (else the value-chain order it was tested in).
            if association.lag == 0 and (pair[1], pair[0]) in hurts:
                pair = (pair[1], pair[0])
            found = observed if association.kind == "conflict" else positive
            if pair not in found or association.p < found[pair].p:
                found[pair] = association
        if run is None:
            observed_pairs = {pair for pair, c in existing.items() if c.is_observed}
        else:
            observed_pairs = set(observed)
        new_pairs = (set(declared) | observed_pairs) - set(existing)
        silo_of = dict(
            KPI.objects.filter(
                id__in={kpi for pair in new_pairs for kpi in pair}
            ).values_list("id", "silo_id")
        )

        result = ReconcileResult(
            created=[], reopened=[], escalated=[], marked_stale=0, contradicted=0
        )
        to_update: list[Conflict] = []
        transitions: list[ConflictTransition] = []
        for pair in sorted(set(existing) | new_pairs):
            conflict = existing.get(pair)
            is_new = conflict is None
            if conflict is None:
                conflict = Conflict(
                    leader_kpi_id=pair[0],
                    affected_kpi_id=pair[1],
                    leader_silo_id=silo_of[pair[0]],
                    affected_silo_id=silo_of[pair[1]],
                    first_detected_at=now,
                    last_detected_at=now,
                    status=Status.OPEN,
                )
            before = {name: getattr(conflict, name) for name in _COMPARED}
            was_stale = conflict.stale
            conflict.is_declared = pair in declared
            link = declared.get(pair) or hurts.get(pair)
            conflict.link = link
            if run is not None:
                conflict.is_observed = pair in observed
                evidence = observed.get(pair)
                conflict.contradicted = conflict.is_declared and pair in positive
                if conflict.contradicted:
                    evidence = positive[pair]
                    result.contradicted += 1
                if evidence is not None:
                    conflict.lag = evidence.lag
                    conflict.correlation = evidence.r
                    conflict.p_value = evidence.p
                    conflict.q_value = evidence.q
                    conflict.periods = evidence.n
                    conflict.grid = grids.get(frozenset(pair), "")
                    size = effects.get(pair)
                    conflict.effect = size.effect if size else None
                    conflict.effect_low = size.low if size else None
                    conflict.effect_high = size.high if size else None
                    conflict.effect_step = size.step if size else None
                    conflict.last_run = run
                if (
                    conflict.is_declared
                    or conflict.is_observed
                    or conflict.contradicted
                ):
                    conflict.last_detected_at = now
            else:
                # A link removed since the last run takes its contradiction with it.
                conflict.contradicted = conflict.contradicted and conflict.is_declared
            if conflict.is_declared and not before["is_declared"]:
                conflict.last_detected_at = now
            conflict.stale = not (conflict.is_declared or conflict.is_observed)
            if conflict.stale and not was_stale:
                conflict.stale_since = now
                result.marked_stale += 0 if is_new else 1
            elif not conflict.stale:
                conflict.stale_since = None
            # Confirmed: a declared hurts link and evidence in the data, whether or not
            # the link's leader has a goal this cycle (README: kinds).
            if conflict.is_observed and link is not None:
                conflict.kind = Kind.CONFIRMED
            elif conflict.is_declared:
                conflict.kind = Kind.DECLARED
            elif conflict.is_observed:
                conflict.kind = Kind.OBSERVED
            conflict.goal_at_risk = pair[1] in at_risk
            previous_severity = conflict.severity
            conflict.severity = severity_for(
                correlation=conflict.correlation
                if conflict.is_observed or conflict.contradicted
                else None,
                goal_at_risk=conflict.goal_at_risk,
                contradicted=conflict.contradicted,
            )
            if conflict.severity != Severity.HIGH or (
                previous_severity != Severity.HIGH and not is_new
            ):
                # Alert again when it next becomes high (see detection_run_finish).
                conflict.alerted_high = False
            if is_new:
                result.created.append(conflict)
                continue
            if (
                conflict.severity == Severity.HIGH
                and before["severity"] != Severity.HIGH
                and not conflict.stale
            ):
                result.escalated.append(conflict)
            if (
                run is not None
                and conflict.status in CLOSED_STATUSES
                and materially_stronger(conflict)
            ):
                transitions.append(
                    ConflictTransition(
                        conflict=conflict,
                        from_status=conflict.status,
                        to_status=Status.OPEN,
                        note=_reopen_note(conflict, run),
                        run=run,
                    )
                )
                conflict.status = Status.OPEN
                conflict.alerted_high = False
                conflict.note = transitions[-1].note
                conflict.status_changed_at = now
                conflict.status_changed_by = None
                result.reopened.append(conflict)
            if any(getattr(conflict, name) != value for name, value in before.items()):
                to_update.append(conflict)

        Conflict.objects.bulk_create(result.created)
        Conflict.objects.bulk_update(to_update, _RECONCILED_FIELDS, batch_size=1000)
        ConflictTransition.objects.bulk_create(transitions)
    return result


def _reopen_note(conflict: Conflict, run: DetectionRun) -> str:
    source = f"detection run {run.pk}"
    evidence = (
        f"r = {conflict.correlation:.2f}" if conflict.correlation is not None else ""
    )
    return (
        f"Reopened by {source}: the evidence is materially stronger than when it was "
        f"closed (severity {conflict.closed_severity or 'none'} -> {conflict.severity}"
        + (f", {evidence}" if evidence else "")
        + ")."
    )
