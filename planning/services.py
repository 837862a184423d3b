"""Writes of planning cycles: dates and participants, the phase workflow with its
commit gate, sign-offs, and the readiness answers."""

from typing import Any, TypeVar

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, models, transaction

from core.roles import User, is_cco
from core.services import (
    recorded_delete,
    set_change_reason,
    set_history_user,
    validated_save,
)
from cycles.models import (
    Cycle,
    Phase,
    cycle_is_locked,
    locked_message,
)
from metrics.models import Silo
from metrics.selectors import silo_ids_managed_by
from planning.events import cycle_phase_event_dispatch
from planning.models import (
    FORWARD,
    REOPEN,
    FundingAllocation,
    Priority,
    ReadinessAnswer,
    Responsibility,
    SignOff,
    budget_problem,
)
from planning.selectors import Blocker, commit_blockers, sign_off_is_current

ModelT = TypeVar("ModelT", bound=models.Model)


def cycle_save(
    *,
    user: User,
    cycle: Cycle | None = None,
    silos: list[Silo] | None = None,
    **fields: Any,
) -> Cycle:
    """Create a cycle, or update ``cycle``; ``silos`` (participants) replace the old.

    A committed or closed cycle is locked: reopen it first (committed -> aligning).
    """
    if cycle is not None and cycle_is_locked(cycle):
        raise ValidationError(
            {"phase": locked_message(cycle, "dates, budget and silos")}
        )
    if cycle is not None and "budget" in fields:
        # The cycle's model knows nothing of funding: the budget rule is the workflow's
        # (and the database trigger's, when two people change money at once).
        problem = budget_problem(cycle, fields["budget"])
        if problem:
            raise ValidationError({"budget": problem})
    with transaction.atomic():
        cycle = validated_save(instance=cycle or Cycle(), user=user, **fields)
        outside = cycle.goals.exclude(
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


#: The longest free text (reasons, notes) the planning workflow stores.
MAX_TEXT = 2000


def storable_text(value: str, limit: int = MAX_TEXT) -> bool:
    """Return whether ``value`` fits ``limit`` and holds no NUL (PostgreSQL refuses it)."""
    return "\x00" not in value and len(value) <= limit


class CommitBlocked(ValidationError):
    """A refused commit, with every blocker."""

    def __init__(self, cycle: Cycle, blockers: list[Blocker]) -> None:
        self.blockers = blockers
        super().__init__(
            {
                "phase": [
                    f"{cycle} cannot commit yet: "
                    + " ".join(blocker.message for blocker in blockers)
                ]
            }
        )


def cycle_phase_move(
    *, cycle: Cycle, user: User, phase: str, reason: str = ""
) -> Cycle:
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
        cycle = Cycle.objects.select_for_update().get(pk=cycle.pk)
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
        set_history_user(cycle, user)
        set_change_reason(cycle, reason or f"Phase {current} -> {phase}")
        cycle.save(update_fields=["phase", "updated_at"])
        cycle_phase_event_dispatch(
            cycle=cycle, from_phase=current, user=user, reason=reason
        )
    return cycle


# --- Sign-offs --------------------------------------------------------------------------


def signoff_create(*, cycle: Cycle, user: User, silo: Silo, note: str = "") -> SignOff:
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
        cycle = Cycle.objects.select_for_update().get(pk=cycle.pk)
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
            set_change_reason(previous, "Signed again after the plan changed")
            recorded_delete(instance=previous, user=user)
        return validated_save(
            instance=SignOff(cycle=cycle, silo=silo),
            user=user,
            user_id=user.pk,
            note=note,
        )


def signoff_withdraw(*, cycle: Cycle, user: User, silo: Silo) -> None:
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
        if Cycle.objects.select_for_update().get(pk=cycle.pk).phase != Phase.ALIGNING:
            raise ValidationError({"cycle": f"{cycle} is no longer aligning."})
        signed = cycle.sign_offs.filter(silo=silo).first()
        if signed is None:
            raise ValidationError({"silo": f"{silo.name} has not signed off {cycle}."})
        recorded_delete(instance=signed, user=user)


# --- Readiness --------------------------------------------------------------------------


def readiness_answers_save(
    *, cycle: Cycle, user: User, answers: list[dict[str, Any]]
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


# --- The plan: priorities, RACI and funding ---------------------------------------------


def _check_plan_editor(user: User) -> None:
    """Refuse anyone but the CCO team: the ranked plan is theirs to write."""
    if not is_cco(user):
        raise PermissionDenied(
            "Only the CCO team changes the cycle's priorities, RACI and funding."
        )


def _budget_guarded_save(instance: ModelT, *, user: User, **fields: Any) -> ModelT:
    """Save through :func:`validated_save`, turning the database's budget trigger (two
    people allocating at once) into a ValidationError on the amount."""
    try:
        with transaction.atomic():
            return validated_save(instance=instance, user=user, **fields)
    except IntegrityError as error:
        if "exceeds its budget" not in str(error):
            raise
        raise ValidationError(
            {
                "amount": "Another change took the cycle's funding over its budget "
                "in the meantime; nothing was saved. Check the allocations and try "
                "again."
            }
        ) from error


def _plan_cycle(cycle_id: int) -> Cycle:
    """Lock the cycle's row, as commits and sign-offs do, and return it as stored: no
    plan change slips past the commit gate, and the lock check sees the phase now."""
    return Cycle.objects.select_for_update().get(pk=cycle_id)


def priority_save(
    *, user: User, cycle: Cycle, priority: Priority | None = None, **fields: Any
) -> Priority:
    """Create a priority of ``cycle``, or update ``priority``, from ``fields`` (title,
    description, rank, accountable_silo), validated in full. The CCO team only; a
    committed or closed cycle's priorities are locked."""
    _check_plan_editor(user)
    if priority is not None and priority.cycle_id != cycle.pk:
        raise ValidationError({"cycle": "This priority belongs to another cycle."})
    with transaction.atomic():
        return validated_save(
            instance=priority or Priority(),
            user=user,
            cycle=_plan_cycle(cycle.pk),
            **fields,
        )


def priority_delete(*, user: User, priority: Priority) -> None:
    """Delete ``priority`` with its RACI roles and funding (each deletion in history)."""
    _check_plan_editor(user)
    with transaction.atomic():
        cycle = _plan_cycle(priority.cycle_id)
        if cycle_is_locked(cycle):
            raise ValidationError({"cycle": locked_message(cycle, "priorities")})
        for part in [*priority.responsibilities.all(), *priority.allocations.all()]:
            recorded_delete(instance=part, user=user)
        recorded_delete(instance=priority, user=user)


def responsibility_save(
    *,
    user: User,
    priority: Priority,
    responsibility: Responsibility | None = None,
    **fields: Any,
) -> Responsibility:
    """Give a silo a RACI role on ``priority``, or change ``responsibility`` (silo,
    role). The CCO team only; locked with the cycle."""
    _check_plan_editor(user)
    with transaction.atomic():
        priority.cycle = _plan_cycle(priority.cycle_id)
        return validated_save(
            instance=responsibility or Responsibility(),
            user=user,
            priority=priority,
            **fields,
        )


def responsibility_delete(*, user: User, responsibility: Responsibility) -> None:
    """Take a silo's RACI role off its priority."""
    _check_plan_editor(user)
    with transaction.atomic():
        cycle = _plan_cycle(responsibility.priority.cycle_id)
        if cycle_is_locked(cycle):
            raise ValidationError({"cycle": locked_message(cycle, "responsibilities")})
        recorded_delete(instance=responsibility, user=user)


def funding_allocation_save(
    *,
    user: User,
    priority: Priority,
    allocation: FundingAllocation | None = None,
    **fields: Any,
) -> FundingAllocation:
    """Fund a silo for ``priority``, or change ``allocation`` (silo, amount), within
    the cycle's budget (the model's rule, and the database trigger's when two people
    allocate at once). The CCO team only; locked with the cycle."""
    _check_plan_editor(user)
    with transaction.atomic():
        priority.cycle = _plan_cycle(priority.cycle_id)
        return _budget_guarded_save(
            allocation or FundingAllocation(),
            user=user,
            priority=priority,
            **fields,
        )


def funding_allocation_delete(*, user: User, allocation: FundingAllocation) -> None:
    """Remove a silo's funding for a priority."""
    _check_plan_editor(user)
    with transaction.atomic():
        cycle = _plan_cycle(allocation.priority.cycle_id)
        if cycle_is_locked(cycle):
            raise ValidationError(
                {"cycle": locked_message(cycle, "funding allocations")}
            )
        recorded_delete(instance=allocation, user=user)
