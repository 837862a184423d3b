"""Writes of planning cycles: dates and participants, the phase workflow with its
commit gate, sign-offs, and the readiness answers."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max, Q

from conflicts.models import Severity
from conflicts.models import Status as ConflictStatus
from conflicts.selectors import conflict_list
from core.roles import User
from core.services import recorded_delete, validated_save
from goals.models import (
    Contribution,
    Goal,
    Guardrail,
    SharedGoal,
    cycle_is_locked,
    locked_message,
)
from metrics.models import Silo
from metrics.selectors import silo_ids_managed_by
from planning.models import (
    FundingAllocation,
    Phase,
    PlanningCycle,
    Priority,
    ReadinessAnswer,
    Responsibility,
    SignOff,
)


def cycle_save(
    *,
    user: User,
    cycle: PlanningCycle | None = None,
    silos: list[Silo] | None = None,
    **fields: Any,
) -> PlanningCycle:
    """Create a cycle, or update ``cycle``; ``silos`` (participants) replace the old.

    A committed or closed cycle is locked: reopen it first (committed -> aligning).
    """
    if cycle is not None and cycle_is_locked(cycle):
        raise ValidationError(
            {"phase": locked_message(cycle, "dates, budget and silos")}
        )
    with transaction.atomic():
        cycle = validated_save(instance=cycle or PlanningCycle(), user=user, **fields)
        outside = cycle.goals.exclude(  # type: ignore[attr-defined]
            period_start__gte=cycle.start_date, period_end__lte=cycle.end_date
        )
        if outside.exists():
            names = ", ".join(
                str(goal) for goal in outside.select_related("kpi", "cycle")[:5]
            )
            raise ValidationError(
                {
                    "start_date": "The new dates leave goals outside the cycle "
                    f"({names}); move those goals first."
                }
            )
        if silos is not None:
            cycle.silos.set(silos)
    return cycle


# --- The phase workflow -----------------------------------------------------------------

#: Forward moves, one phase at a time; committed -> aligning reopens (with a reason).
FORWARD = {
    Phase.DRAFT: Phase.PROPOSING,
    Phase.PROPOSING: Phase.ALIGNING,
    Phase.ALIGNING: Phase.COMMITTED,
    Phase.COMMITTED: Phase.CLOSED,
}
REOPEN = (Phase.COMMITTED, Phase.ALIGNING)


@dataclass(frozen=True)
class Blocker:
    """One reason a cycle cannot commit yet, said so that someone can act on it."""

    kind: str  # "sign_off", "conflict" or "participants"
    message: str
    silo: str | None = None
    conflict: int | None = None


def commit_blockers(
    cycle: PlanningCycle, *, changed: datetime | object | None = ...
) -> list[Blocker]:
    """Return what stops ``cycle`` from committing (empty: it may commit).

    Every participating silo must have signed off, and no high-severity conflict that
    is still open or acknowledged (not stale) may involve a KPI with a goal of this
    cycle, on either side. An accepted trade-off (with its note) no longer blocks.
    ``changed`` is :func:`plan_changed_at` when the caller has it already (... : not
    known yet; None: the cycle has no plan).
    """
    blockers: list[Blocker] = []
    participants = list(cycle.silos.order_by("position", "name"))
    if not participants:
        blockers.append(
            Blocker(
                kind="participants",
                message="The cycle has no participating silos: add them first.",
            )
        )
    signed = dict(cycle.sign_offs.values_list("silo_id", "signed_at"))
    if changed is ...:
        changed = plan_changed_at(cycle)
    for silo in participants:
        if silo.pk not in signed:
            blockers.append(
                Blocker(
                    kind="sign_off",
                    silo=silo.slug,
                    message=f"{silo.name} has not signed off.",
                )
            )
        elif changed is not None and signed[silo.pk] < changed:
            blockers.append(
                Blocker(
                    kind="sign_off",
                    silo=silo.slug,
                    message=f"{silo.name} signed off before the plan last changed "
                    f"({changed:%Y-%m-%d %H:%M} UTC) and must sign off again.",
                )
            )
    kpis = Goal.objects.filter(cycle=cycle).values("kpi_id")
    conflicts = (
        conflict_list()
        .filter(
            Q(leader_kpi__in=kpis) | Q(affected_kpi__in=kpis),
            severity=Severity.HIGH,
            stale=False,
            status__in=[ConflictStatus.OPEN, ConflictStatus.ACKNOWLEDGED],
        )
        .order_by("id")
    )
    for conflict in conflicts:
        blockers.append(
            Blocker(
                kind="conflict",
                conflict=conflict.pk,
                message=(
                    f"High-severity conflict {conflict.pk} is {conflict.status}: "
                    f"{conflict.leader_kpi.key} hurts {conflict.affected_kpi.key}. "
                    "Resolve it, dismiss it, or accept it as a trade-off with a note."
                ),
            )
        )
    return blockers


def plan_changed_at(cycle: PlanningCycle) -> datetime | None:
    """Return when the cycle's plan last changed: any goal, shared goal, contribution,
    guardrail, priority, RACI role or funding allocation of the cycle created, changed
    or deleted (from their history, which keeps deletions too). None: no plan yet.
    """
    shared = SharedGoal.history.model.objects.filter(cycle_id=cycle.pk).values("id")
    ranked = Priority.history.model.objects.filter(cycle_id=cycle.pk).values("id")
    parts = [
        Goal.history.model.objects.filter(cycle_id=cycle.pk),
        SharedGoal.history.model.objects.filter(cycle_id=cycle.pk),
        Contribution.history.model.objects.filter(shared_goal_id__in=shared),
        Guardrail.history.model.objects.filter(shared_goal_id__in=shared),
        Priority.history.model.objects.filter(cycle_id=cycle.pk),
        Responsibility.history.model.objects.filter(priority_id__in=ranked),
        FundingAllocation.history.model.objects.filter(priority_id__in=ranked),
    ]
    latest = [part.aggregate(latest=Max("history_date"))["latest"] for part in parts]
    return max((when for when in latest if when is not None), default=None)


def sign_off_is_current(cycle: PlanningCycle, signed_at: datetime) -> bool:
    """Return whether a sign-off given at ``signed_at`` agreed to the current plan."""
    changed = plan_changed_at(cycle)
    return changed is None or signed_at >= changed


#: The longest free text (reasons, notes) the planning workflow stores.
MAX_TEXT = 2000


def storable_text(value: str, limit: int = MAX_TEXT) -> bool:
    """Return whether ``value`` fits ``limit`` and holds no NUL (PostgreSQL refuses it)."""
    return "\x00" not in value and len(value) <= limit


class CommitBlocked(ValidationError):
    """A refused commit, with every blocker."""

    def __init__(self, cycle: PlanningCycle, blockers: list[Blocker]) -> None:
        self.blockers = blockers
        super().__init__(
            {
                "phase": [
                    f"{cycle} cannot commit yet: "
                    + " ".join(blocker.message for blocker in blockers)
                ]
            }
        )


def move_phase(
    *, cycle: PlanningCycle, user: User, phase: str, reason: str = ""
) -> PlanningCycle:
    """Move ``cycle`` to ``phase``: one step forward, or committed -> aligning to reopen.

    Reopening needs a reason; committing needs :func:`commit_blockers` to be empty
    (else :class:`CommitBlocked`). The move and its reason are in the cycle's history.
    """
    reason = (reason or "").strip()
    if phase not in Phase.values:
        raise ValidationError(
            {"phase": f"Unknown phase {phase!r}; one of: {', '.join(Phase.values)}."}
        )
    if not storable_text(reason):
        raise ValidationError(
            {"reason": "The reason must be at most 2000 characters, without NULs."}
        )
    with transaction.atomic():
        cycle = PlanningCycle.objects.select_for_update().get(pk=cycle.pk)
        current = cycle.phase
        if (current, phase) == REOPEN:
            if not reason:
                raise ValidationError(
                    {
                        "reason": "Reopening a committed cycle needs a reason: it "
                        "unlocks every goal of the cycle."
                    }
                )
        elif FORWARD.get(current) != phase:
            allowed = [FORWARD[current]] if current in FORWARD else []
            if current == Phase.COMMITTED:
                allowed.append(Phase.ALIGNING)
            raise ValidationError(
                {
                    "phase": f"{cycle} is {current}: it can move to "
                    + (" or ".join(allowed) if allowed else "no other phase")
                    + f", not to {phase}."
                }
            )
        if phase == Phase.COMMITTED:
            blockers = commit_blockers(cycle)
            if blockers:
                raise CommitBlocked(cycle, blockers)
        cycle.phase = phase
        cycle._history_user = user  # type: ignore[attr-defined]
        cycle._change_reason = reason or f"Phase {current} -> {phase}"  # type: ignore[attr-defined]
        cycle.save(update_fields=["phase", "updated_at"])
    return cycle


# --- Sign-offs --------------------------------------------------------------------------


def sign_off(
    *, cycle: PlanningCycle, user: User, silo: Silo, note: str = ""
) -> SignOff:
    """Record ``silo``'s agreement to the cycle's plan, by one of its managers.

    Only while the cycle is aligning, only for a participating silo, once per silo
    and plan: after the plan changes (see :func:`plan_changed_at`), a sign-off no longer
    counts and the silo signs again.
    """
    note = (note or "").strip()
    if silo.pk not in silo_ids_managed_by(user):
        raise PermissionDenied(
            f"You do not manage {silo.name}: only its managers sign for it."
        )
    if not storable_text(note):
        raise ValidationError(
            {"note": "The note must be at most 2000 characters, without NULs."}
        )
    with transaction.atomic():
        # Every check runs under the cycle's row lock, which sign-offs, commits and
        # plan changes all take: of simultaneous sign-offs for one silo, exactly one
        # is recorded, and none slips in past the commit gate.
        cycle = PlanningCycle.objects.select_for_update().get(pk=cycle.pk)
        if cycle.phase != Phase.ALIGNING:
            raise ValidationError(
                {
                    "cycle": f"{cycle} is {cycle.phase}: silos sign off while it is "
                    "aligning."
                }
            )
        if not cycle.silos.filter(pk=silo.pk).exists():
            raise ValidationError(
                {"silo": f"{silo.name} does not take part in {cycle}."}
            )
        previous = cycle.sign_offs.filter(silo=silo).first()
        if previous is not None:
            if sign_off_is_current(cycle, previous.signed_at):
                raise ValidationError(
                    {"silo": f"{silo.name} has already signed off {cycle}."}
                )
            # Signing again after the plan changed replaces the outdated sign-off.
            previous._change_reason = "Signed again after the plan changed"  # type: ignore[attr-defined]
            recorded_delete(instance=previous, user=user)
        return validated_save(
            instance=SignOff(cycle=cycle, silo=silo),
            user=user,
            user_id=user.pk,
            note=note,
        )


def withdraw_sign_off(*, cycle: PlanningCycle, user: User, silo: Silo) -> None:
    """Take back ``silo``'s sign-off while the cycle is still aligning."""
    if silo.pk not in silo_ids_managed_by(user):
        raise PermissionDenied(f"You do not manage {silo.name}.")
    if cycle.phase != Phase.ALIGNING:
        raise ValidationError(
            {
                "cycle": f"{cycle} is {cycle.phase}: sign-offs change only while aligning."
            }
        )
    with transaction.atomic():
        if (
            PlanningCycle.objects.select_for_update().get(pk=cycle.pk).phase
            != Phase.ALIGNING
        ):
            raise ValidationError({"cycle": f"{cycle} is no longer aligning."})
        signed = cycle.sign_offs.filter(silo=silo).first()
        if signed is None:
            raise ValidationError({"silo": f"{silo.name} has not signed off {cycle}."})
        recorded_delete(instance=signed, user=user)


# --- Readiness --------------------------------------------------------------------------


def save_readiness(
    *, cycle: PlanningCycle, user: User, answers: list[dict[str, Any]]
) -> list[ReadinessAnswer]:
    """Store the CCO team's answers (number, answer, note), all or none."""
    for row in answers:
        note = row.get("note", "")
        if not storable_text(note):
            raise ValidationError(
                {"answers": "A note must be at most 2000 characters, without NULs."}
            )
    numbers = [row["number"] for row in answers]
    if len(set(numbers)) != len(numbers):
        raise ValidationError({"answers": "Each statement may be answered only once."})
    with transaction.atomic():
        stored = {a.number: a for a in cycle.readiness_answers.all()}
        saved = []
        for row in answers:
            saved.append(
                validated_save(
                    instance=stored.get(row["number"]) or ReadinessAnswer(cycle=cycle),
                    user=user,
                    number=row["number"],
                    answer=row["answer"],
                    note=row.get("note", ""),
                    answered_by=user if user.is_authenticated else None,
                )
            )
    return saved
