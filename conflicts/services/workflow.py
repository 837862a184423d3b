"""The review workflow of the conflict register: the CCO team moves a conflict on; the
CCO team and both silos' managers comment on it."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from conflicts.models import (
    CLOSED_STATUSES,
    COMMENT_MAX_LENGTH,
    TRANSITIONS,
    Conflict,
    ConflictComment,
    ConflictTransition,
    Status,
)
from conflicts.selectors import conflict_owner_candidates, conflicts_visible_to
from conflicts.services.events import status_event_dispatch
from conflicts.services.register import REGISTER_LOCK
from core.roles import Account, is_cco, is_silo_manager
from metrics.locks import advisory_xact_lock

#: The longest note a workflow step takes (the API and the report page alike).
MAX_NOTE_LENGTH = 5000


def conflict_transition(
    *,
    conflict: Conflict,
    user: Account,
    status: str,
    note: str,
    owner: Account | None = None,
    due_date: dt.date | None = None,
) -> Conflict:
    """Move ``conflict`` along the review workflow, recording who, when and why.

    Acknowledging names who follows the conflict up (``owner``: a member of the CCO
    team or a manager of one of its two silos) and by when (``due_date``, today or
    later); the other steps keep the owner and due date as they are.

    Raise ValidationError naming the problem: an unknown status, a step the workflow
    does not allow from the current status, an empty note, or an owner or due date
    missing or not allowed.
    """
    note = (note or "").strip()
    errors: dict[str, str] = {}
    if status not in Status.values:
        errors["status"] = (
            f"Unknown status {status!r}; choose one of: {', '.join(Status.values)}."
        )
    if status == Status.ACKNOWLEDGED:
        errors.update(_assignment_errors(conflict, owner, due_date))
    elif owner is not None or due_date is not None:
        errors["owner" if owner is not None else "due_date"] = (
            "An owner and a due date are set when acknowledging, not on this step."
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
        from_status = conflict.status
        transition = ConflictTransition.objects.create(
            conflict=conflict,
            from_status=conflict.status,
            to_status=status,
            note=note,
            user=user,
            owner=owner,
            due_date=due_date,
        )
        if status == Status.ACKNOWLEDGED:
            conflict.owner = owner
            conflict.due_date = due_date
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
        status_event_dispatch(
            conflict=conflict,
            from_status=from_status,
            user=user,
            note=note,
            transition_id=transition.pk,
        )
    return conflict


def _assignment_errors(
    conflict: Conflict, owner: Account | None, due_date: dt.date | None
) -> dict[str, str]:
    """What is wrong with the owner and due date of an acknowledgement, by field."""
    errors: dict[str, str] = {}
    if owner is None:
        errors["owner"] = (
            "Name an owner: who follows the conflict up (the CCO team or a manager of "
            "one of its two silos)."
        )
    elif not conflict_owner_candidates(conflict).filter(pk=owner.pk).exists():
        errors["owner"] = (
            f"{owner.get_username()} cannot own this conflict: choose a member of the "
            "CCO team or a manager of "
            f"{conflict.leader_silo.name} or {conflict.affected_silo.name}."
        )
    if due_date is None:
        errors["due_date"] = "Set a due date: when the owner reports back."
    elif due_date < timezone.localdate():
        errors["due_date"] = (
            f"The due date {due_date.isoformat()} has passed: choose today or later."
        )
    return errors


def conflict_comment_create(
    *, conflict: Conflict, user: Account, body: str
) -> ConflictComment:
    """Add ``user``'s comment to ``conflict``'s thread.

    The CCO team and the managers of the conflict's two silos comment (BI readers
    read); raise PermissionDenied for anyone else, ValidationError for an empty, too
    long or NUL-holding body.
    """
    if not (is_cco(user) or is_silo_manager(user)) or not (
        conflicts_visible_to(user).filter(pk=conflict.pk).exists()
    ):
        raise PermissionDenied(
            "Only the CCO team and the managers of the conflict's two silos comment."
        )
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": "Write the comment first."})
    if "\x00" in body:
        raise ValidationError({"body": "Null characters are not allowed."})
    if len(body) > COMMENT_MAX_LENGTH:
        raise ValidationError(
            {
                "body": f"Keep the comment to {COMMENT_MAX_LENGTH} characters "
                f"(it has {len(body)})."
            }
        )
    return ConflictComment.objects.create(conflict=conflict, author=user, body=body)
