"""The events ducttape tells people about, by name.

The apps that cause an event dispatch it by one of these names; channels and
subscriptions choose among them. ``test`` is sent only by a channel's "send test".
"""

from django.db import models


class EventName(models.TextChoices):
    CONFLICT_NEW = (
        "conflict.new",
        "A conflict registered or reopened by a detection run",
    )
    CONFLICT_HIGH = "conflict.high", "A conflict became high-severity"
    CONFLICT_STATUS_CHANGED = (
        "conflict.status_changed",
        "A conflict moved along the review workflow",
    )
    CYCLE_PHASE_CHANGED = "cycle.phase_changed", "A cycle changed phase"
    SIGNOFF_VOIDED = "signoff.voided", "A plan change voided a silo's sign-off"
    GUARDRAIL_BREACHED = "guardrail.breached", "A shared goal's guardrail was breached"
    DIGEST = "digest", "The weekly digest"
    TEST = "test", "A test sent from a channel"


#: The names a channel or a subscription may choose (``test`` is sent on request only).
SUBSCRIBABLE = [name for name in EventName.values if name != EventName.TEST]
