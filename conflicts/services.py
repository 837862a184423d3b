"""Detection runs, the reconciliation of the conflict register, and its review workflow.

The register is written only here, always under one PostgreSQL advisory lock, so two
runs (or a run and a goal change) at once never duplicate or half-update a conflict.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.mail import send_mass_mail
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from conflicts import engine
from conflicts.models import (
    CLOSED_STATUSES,
    SEVERITY_RANK,
    TRANSITIONS,
    Conflict,
    ConflictTransition,
    DetectionRun,
    Kind,
    RunStatus,
    RunTrigger,
    Severity,
    Status,
)
from core.text import one_line
from goals.models import Goal
from goals.selectors import goal_attainment, goal_list_with_actuals
from metrics import detection
from metrics.locks import advisory_xact_lock
from metrics.models import KPI, Effect, ImpactLink
from metrics.roles import CCO_TEAM, User

#: Key of the advisory lock that serializes every write of the register.
REGISTER_LOCK = 0x6475_6374  # "duct"

#: |r| from which an effect is strong / moderate (Cohen's conventions for r).
STRONG_EFFECT = 0.5
MODERATE_EFFECT = 0.3
#: How much stronger (in |r|) evidence must get to reopen a closed conflict.
REOPEN_MARGIN = 0.10

#: The longest note a workflow step takes (the API and the report page alike).
MAX_NOTE_LENGTH = 5000

#: A cycle in this phase is over; every other phase is open.
CLOSED_PHASE = "closed"

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
        .exclude(cycle__phase=CLOSED_PHASE)
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
    goals = goal_list_with_actuals(Goal.objects.exclude(cycle__phase=CLOSED_PHASE))
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


def reconcile(
    *,
    run: DetectionRun | None = None,
    associations: Iterable[detection.Association] | None = None,
) -> ReconcileResult:
    """Bring the register in line with the declared links and (with a run) the data.

    Without ``run`` only the declared side and the severities are refreshed (a goal,
    link or cycle changed); the observed side keeps the last run's evidence. A constant
    number of queries whatever the register's size.
    """
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
            if conflict.is_declared and conflict.is_observed:
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
                # Alert again when it next becomes high (see finish_run).
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


def transition(*, conflict: Conflict, user: User, status: str, note: str) -> Conflict:
    """Move ``conflict`` along the review workflow, recording who, when and why.

    Raise ValidationError naming the problem: an unknown status, a step the workflow
    does not allow from the current status, or an empty note.
    """
    note = (note or "").strip()
    errors: dict[str, str] = {}
    if status not in Status.values:
        errors["status"] = (
            f"Unknown status {status!r}; choose one of: {', '.join(Status.values)}."
        )
    if not note:
        errors["note"] = "A note is required: say why the status changes."
    elif "\x00" in note:
        errors["note"] = "Null characters are not allowed."
    elif len(note) > MAX_NOTE_LENGTH:
        errors["note"] = (
            f"Keep the note to {MAX_NOTE_LENGTH} characters (it has {len(note)})."
        )
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        advisory_xact_lock(REGISTER_LOCK)
        conflict = Conflict.objects.select_for_update().get(pk=conflict.pk)
        allowed = TRANSITIONS[conflict.status]
        if status not in allowed:
            after = (
                f"it can only move to {', '.join(allowed)}"
                if allowed
                else "it is closed; only a detection run reopens it"
            )
            raise ValidationError(
                {
                    "status": f"A conflict that is {conflict.status} cannot move to "
                    f"{status}: {after}."
                }
            )
        now = timezone.now()
        ConflictTransition.objects.create(
            conflict=conflict,
            from_status=conflict.status,
            to_status=status,
            note=note,
            user=user,
        )
        conflict.status = status
        conflict.note = note
        conflict.status_changed_at = now
        conflict.status_changed_by = user
        if status in CLOSED_STATUSES:
            conflict.closed_correlation = (
                conflict.correlation if conflict.is_observed else None
            )
            conflict.closed_severity = conflict.severity
        conflict.save()
    return conflict


def create_run(
    *,
    trigger: str,
    user: User | None = None,
    max_lag: int = detection.DEFAULT_MAX_LAG,
    min_pairs: int = detection.DEFAULT_MIN_PAIRS,
    q_threshold: float = detection.DEFAULT_Q_THRESHOLD,
    block_size: int = 1000,
) -> DetectionRun:
    """Record a pending detection run with its parameters."""
    return DetectionRun.objects.create(
        trigger=trigger,
        requested_by=user if user is not None and user.is_authenticated else None,
        max_lag=max_lag,
        min_pairs=min_pairs,
        q_threshold=q_threshold,
        block_size=block_size,
    )


#: Key of the advisory lock that makes the nightly schedule's check-and-create atomic.
SCHEDULE_LOCK = 0x6475_6375


def create_scheduled_run(enqueue: Callable[[DetectionRun], Any]) -> int | None:
    """Create the nightly run and enqueue it after commit, unless one is under way."""
    from django.conf import settings

    recent = timezone.now() - timedelta(seconds=2 * settings.CELERY_TASK_TIME_LIMIT)
    with transaction.atomic():
        advisory_xact_lock(SCHEDULE_LOCK)
        # Runs whose worker was lost for good (never redelivered) are closed here.
        DetectionRun.objects.filter(
            status__in=[RunStatus.PENDING, RunStatus.RUNNING], created_at__lt=recent
        ).update(
            status=RunStatus.FAILED,
            finished_at=timezone.now(),
            error="Abandoned: no worker finished it within twice the task time limit.",
        )
        if DetectionRun.objects.filter(
            trigger=RunTrigger.SCHEDULE,
            status__in=[RunStatus.PENDING, RunStatus.RUNNING],
            created_at__gte=recent,
        ).exists():
            return None
        run = create_run(trigger=RunTrigger.SCHEDULE)
        transaction.on_commit(lambda: enqueue(run))
    return run.pk


def enqueue_run(run: DetectionRun) -> None:
    """Send ``run`` to the workers once the current transaction commits."""
    from conflicts.tasks import detect_conflicts

    transaction.on_commit(lambda: detect_conflicts.delay(run.pk))


def abandoned_before() -> datetime:
    """Return the start time before which a run still marked running is abandoned.

    No task outlives CELERY_TASK_TIME_LIMIT (the worker kills it), so a run that
    started longer ago and is still "running" lost its worker: killed, or stopped by
    the hard limit before it could record a failure.
    """
    from django.conf import settings

    return timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)


def start_run(run: DetectionRun, *, takeover: bool = False) -> bool:
    """Mark a pending run running; return False when it already started.

    A second delivery of a finished run does nothing. A running run is taken over and
    starts again when ``takeover`` says its worker is gone (the broker redelivered the
    message: with acks_late a message comes back only if its worker died before
    acknowledging it), or when it started longer ago than any task may run (see
    :func:`abandoned_before`).
    """
    running_again = Q(status=RunStatus.RUNNING) & (
        Q(started_at__lt=abandoned_before()) if not takeover else Q()
    )
    updated = (
        DetectionRun.objects.filter(pk=run.pk)
        .filter(Q(status=RunStatus.PENDING) | running_again)
        .update(status=RunStatus.RUNNING, started_at=timezone.now(), error="")
    )
    run.refresh_from_db()
    return updated == 1


def finish_run(
    run: DetectionRun,
    associations: list[detection.Association],
    *,
    kpis: int,
    measurements: int,
    tests: int,
    blocks: int,
    untested: list[dict],
) -> DetectionRun:
    """Write a run's associations into the register, its counts, the KPIs it could
    not test (``engine.untested_kpis``), and mail about new high-severity conflicts
    (after commit)."""
    conflicts = [a for a in associations if a.kind == "conflict"]
    synergies = sorted(
        (a for a in associations if a.kind == "synergy"), key=lambda a: (-a.r, a.p)
    )
    with transaction.atomic():
        # A duplicated callback (redelivery) must not write the run a second time.
        locked = DetectionRun.objects.select_for_update().get(pk=run.pk)
        if locked.status != RunStatus.RUNNING:
            run.refresh_from_db()
            return run
        result = reconcile(run=run, associations=associations)
        finished = timezone.now()
        names = dict(
            KPI.objects.filter(
                id__in={
                    k
                    for a in synergies[: run.SYNERGIES_KEPT]
                    for k in (a.leader, a.follower)
                }
            ).values_list("id", "key")
        )
        DetectionRun.objects.filter(pk=run.pk).update(
            status=RunStatus.SUCCEEDED,
            finished_at=finished,
            duration_seconds=(finished - run.started_at).total_seconds()
            if run.started_at
            else None,
            kpis=kpis,
            measurements=measurements,
            tests=tests,
            blocks=blocks,
            conflicts_found=len(conflicts),
            synergies_found=len(synergies),
            contradicted_links=result.contradicted,
            new_conflicts=len(result.created),
            reopened=len(result.reopened),
            marked_stale=result.marked_stale,
            untested_kpis=len(untested),
            untested=untested[: engine.UNTESTED_KEPT],
            synergies=[
                {
                    "leader_kpi": names[a.leader],
                    "affected_kpi": names[a.follower],
                    "lag": a.lag,
                    "correlation": a.r,
                    "p_value": a.p,
                    "q_value": a.q,
                    "periods": a.n,
                }
                for a in synergies[: run.SYNERGIES_KEPT]
            ],
        )
        # Every high-severity conflict under review that nobody was told about yet:
        # new, reopened, or made high since (also by a goal change between runs).
        alarming = Conflict.objects.filter(
            severity=Severity.HIGH,
            stale=False,
            status__in=[Status.OPEN, Status.ACKNOWLEDGED],
            alerted_high=False,
        )
        ids = sorted(alarming.values_list("pk", flat=True))
        if ids:
            Conflict.objects.filter(pk__in=ids).update(alerted_high=True)
            transaction.on_commit(lambda: notify_high_severity(ids))
    run.refresh_from_db()
    return run


def fail_run(run: DetectionRun, error: str) -> None:
    """Record that a run failed, with the error, so a later run can start afresh."""
    finished = timezone.now()
    DetectionRun.objects.filter(
        pk=run.pk, status__in=[RunStatus.PENDING, RunStatus.RUNNING]
    ).update(status=RunStatus.FAILED, finished_at=finished, error=error[:5000])


def run_detection(
    run: DetectionRun, *, progress: Callable[[str], None] | None = None
) -> DetectionRun:
    """Run a pending detection run in this process: read, compute, write the register.

    ``progress`` receives one line per step and per block. A run that already started
    is returned unchanged.
    """
    say = progress or (lambda line: None)
    if not start_run(run):
        return run
    try:
        began = time.perf_counter()
        matrices, measurements = engine.load_matrices()
        kpis = sum(m.kpi_ids.size for m in matrices)
        say(
            f"Read {measurements} measurements of {kpis} KPIs "
            f"({time.perf_counter() - began:.2f} s)."
        )

        def block_done(done: int, total: int) -> None:
            say(f"Block {done}/{total} scanned ({time.perf_counter() - began:.2f} s).")

        associations, tests, blocks = engine.scan_all(
            matrices,
            max_lag=run.max_lag,
            min_pairs=run.min_pairs,
            q_threshold=run.q_threshold,
            block_size=run.block_size,
            progress=block_done,
        )
        say(f"{tests} tests, {len(associations)} significant associations.")
        return finish_run(
            run,
            associations,
            kpis=kpis,
            measurements=measurements,
            tests=tests,
            blocks=blocks,
            untested=engine.untested_kpis(matrices, min_pairs=run.min_pairs),
        )
    except Exception as error:
        fail_run(run, f"{type(error).__name__}: {error}")
        raise


def notify_high_severity(conflict_ids: list[int]) -> int:
    """Email the CCO team and both silos' managers about these high-severity conflicts.

    One message per recipient listing the conflicts that concern them; users without an
    email address are skipped. Return the number of messages sent.
    """
    from django.conf import settings
    from django.contrib.auth import get_user_model

    conflicts = list(
        Conflict.objects.filter(pk__in=conflict_ids)
        .select_related("leader_kpi", "affected_kpi", "leader_silo", "affected_silo")
        .prefetch_related("leader_silo__managers", "affected_silo__managers")
    )
    cco = list(
        get_user_model()
        .objects.filter(groups__name=CCO_TEAM, is_active=True)
        .exclude(email="")
    )
    per_recipient: dict[str, list[Conflict]] = {}
    for conflict in conflicts:
        managers = [
            *conflict.leader_silo.managers.all(),
            *conflict.affected_silo.managers.all(),
        ]
        for user in (*cco, *managers):
            if user.is_active and user.email:
                per_recipient.setdefault(user.email, [])
                if conflict not in per_recipient[user.email]:
                    per_recipient[user.email].append(conflict)
    messages = []
    for email, items in sorted(per_recipient.items()):
        lines = [
            f"{describe(c)}\n  {settings.SITE_URL}/report/conflicts/{c.pk}/"
            for c in items
        ]
        subject = (
            f"ducttape: {len(items)} new high-severity conflict"
            f"{'s' if len(items) != 1 else ''}"
        )
        body = "\n\n".join(
            [
                "Detection found conflicts where one silo's success hurts another:",
                *(f"- {line}" for line in lines),
                f"The CCO report: {settings.SITE_URL}/report/conflicts/",
            ]
        )
        messages.append((subject, body, settings.DEFAULT_FROM_EMAIL, [email]))
    return send_mass_mail(messages, fail_silently=False) if messages else 0


LAG_WORDS = {0: "in the same {unit}", 1: "one {unit} later"}
UNIT_WORDS = {"weekly": "week", "monthly": "month", "quarterly": "quarter"}


def describe(conflict: Conflict) -> str:
    """Say a conflict's evidence in plain words, as the CCO report shows it."""
    leader, affected = conflict.leader_kpi, conflict.affected_kpi
    unit = UNIT_WORDS.get(leader.frequency, "period")
    head = f"When {_possessive(conflict.leader_silo.name)} {_in_sentence(leader.name)} improves, "
    affected_owner = _possessive(conflict.affected_silo.name)
    if conflict.stale:
        found = (
            f" (last evidence: r = {conflict.correlation:.2f}, "
            f"{format_q(conflict.q_value)}, over {conflict.periods} {unit}s)"
            if conflict.correlation is not None
            else ""
        )
        return (
            head
            + f"{affected_owner} {_in_sentence(affected.name)} no longer worsens: "
            + f"neither declared nor found by the latest run{found}."
        )
    if conflict.correlation is None or not (
        conflict.is_observed or conflict.contradicted
    ):
        return (
            head
            + f"{affected_owner} {_in_sentence(affected.name)} is declared to worsen"
            + " (no evidence in the data yet)."
        )
    if conflict.lag in LAG_WORDS:
        when = LAG_WORDS[conflict.lag].format(unit=unit)
    else:
        when = f"{conflict.lag} {unit}s later"
    verb = "improves too" if conflict.contradicted else "worsens"
    return (
        head
        + f"{affected_owner} {_in_sentence(affected.name)} {verb} {when}: "
        + f"r = {conflict.correlation:.2f}, {format_q(conflict.q_value)}, "
        + f"over {conflict.periods} {unit}s"
        + (" (this contradicts the declared link)." if conflict.contradicted else ".")
    )


def _possessive(name: str) -> str:
    name = one_line(name)
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def _in_sentence(name: str) -> str:
    # A name is shown on one line, whatever someone typed into it (mail, the report).
    name = one_line(name)
    # "Deals closed" reads "deals closed" mid-sentence; "CSAT" and "NPS score" stay.
    if len(name) > 1 and name[0].isupper() and not name[1].isupper():
        return name[0].lower() + name[1:]
    return name


def format_q(q: float | None) -> str:
    """Format a q-value the way people read them: "q = 0.012", or "q < 0.001"."""
    if q is None:
        return "q n/a"
    return "q < 0.001" if q < 0.001 else f"q = {q:.3f}"


def run_as_command(**options: Any) -> DetectionRun:
    """Create and run a detection run synchronously (the management command)."""
    progress = options.pop("progress", None)
    run = create_run(trigger=RunTrigger.COMMAND, **options)
    return run_detection(run, progress=progress)
