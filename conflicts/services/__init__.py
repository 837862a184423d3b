"""Services of the conflict register, split by concern.

- :mod:`~conflicts.services.register`: the register kept in line with the declared
  links and the evidence of runs (under one advisory lock), severity, reopening;
- :mod:`~conflicts.services.workflow`: the review workflow the CCO team moves;
- :mod:`~conflicts.services.runs`: detection runs and their one orchestration;
- :mod:`~conflicts.services.events`: the notifications the register's changes dispatch.
"""

from conflicts.services.register import (
    MODERATE_EFFECT,
    REGISTER_LOCK,
    REOPEN_MARGIN,
    STRONG_EFFECT,
    ReconcileResult,
    declared_links,
    kpis_with_goal_at_risk,
    materially_stronger,
    register_reconcile,
    severity_for,
)
from conflicts.services.runs import (
    SCHEDULE_LOCK,
    abandoned_before,
    detection_run_create,
    detection_run_enqueue,
    detection_run_execute,
    detection_run_fail,
    detection_run_finish,
    detection_run_merge,
    detection_run_now,
    detection_run_perform,
    detection_run_schedule,
    detection_run_start,
)
from conflicts.services.workflow import (
    MAX_NOTE_LENGTH,
    conflict_comment_create,
    conflict_transition,
)

__all__ = [
    "MAX_NOTE_LENGTH",
    "MODERATE_EFFECT",
    "REGISTER_LOCK",
    "REOPEN_MARGIN",
    "SCHEDULE_LOCK",
    "STRONG_EFFECT",
    "ReconcileResult",
    "abandoned_before",
    "conflict_comment_create",
    "conflict_transition",
    "declared_links",
    "detection_run_create",
    "detection_run_enqueue",
    "detection_run_execute",
    "detection_run_fail",
    "detection_run_finish",
    "detection_run_merge",
    "detection_run_now",
    "detection_run_perform",
    "detection_run_schedule",
    "detection_run_start",
    "kpis_with_goal_at_risk",
    "materially_stronger",
    "register_reconcile",
    "severity_for",
]
