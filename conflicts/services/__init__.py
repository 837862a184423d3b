"""Services of the conflict register, split by concern.

- :mod:`~conflicts.services.register`: the register kept in line with the declared
  links and the evidence of runs (under one advisory lock), severity, reopening;
- :mod:`~conflicts.services.workflow`: the review workflow the CCO team moves;
- :mod:`~conflicts.services.runs`: detection runs and their one orchestration;
- :mod:`~conflicts.services.notifications`: alert mails and the plain-words evidence.
"""

from conflicts.services.notifications import (
    UNIT_WORDS,
    describe,
    effect_rate,
    effect_words,
    format_q,
    notify_high_severity,
    unit_of,
)
from conflicts.services.register import (
    CLOSED_PHASE,
    MODERATE_EFFECT,
    REGISTER_LOCK,
    REOPEN_MARGIN,
    STRONG_EFFECT,
    ReconcileResult,
    declared_links,
    kpis_with_goal_at_risk,
    materially_stronger,
    reconcile,
    severity_for,
)
from conflicts.services.runs import (
    SCHEDULE_LOCK,
    abandoned_before,
    create_run,
    create_scheduled_run,
    detection_run_execute,
    detection_run_merge,
    enqueue_run,
    fail_run,
    finish_run,
    run_as_command,
    run_detection,
    start_run,
)
from conflicts.services.workflow import MAX_NOTE_LENGTH, transition

__all__ = [
    "CLOSED_PHASE",
    "MAX_NOTE_LENGTH",
    "MODERATE_EFFECT",
    "REGISTER_LOCK",
    "REOPEN_MARGIN",
    "SCHEDULE_LOCK",
    "STRONG_EFFECT",
    "UNIT_WORDS",
    "ReconcileResult",
    "abandoned_before",
    "create_run",
    "create_scheduled_run",
    "declared_links",
    "describe",
    "detection_run_execute",
    "detection_run_merge",
    "effect_rate",
    "effect_words",
    "enqueue_run",
    "fail_run",
    "finish_run",
    "format_q",
    "kpis_with_goal_at_risk",
    "materially_stronger",
    "notify_high_severity",
    "reconcile",
    "run_as_command",
    "run_detection",
    "severity_for",
    "start_run",
    "transition",
    "unit_of",
]
