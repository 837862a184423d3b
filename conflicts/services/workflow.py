"""The review workflow of the conflict register: the CCO team moves a conflict on."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from conflicts.models import (
    CLOSED_STATUSES,
    TRANSITIONS,
    Conflict,
    ConflictTransition,
    Status,
)
from conflicts.services.events import status_event_dispatch
from conflicts.services.register import REGISTER_LOCK
from core.roles import Account
from metrics.locks import advisory_xact_lock

#: The longest note a workflow step takes (the API and the report page alike).
MAX_NOTE_LENGTH = 5000


def conflict_transition(
    *, conflict: Conflict, user: Account, status: str, note: str
) -> Conflict:
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
        from_status = conflict.status
        transition = ConflictTransition.objects.create(
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
        status_event_dispatch(
            conflict=conflict,
            from_status=from_status,
            user=user,
            note=note,
            transition_id=transition.pk,
        )
    return conflict
