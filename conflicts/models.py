"""The conflict register: where one silo's success hurts another, and the runs that find it.

Conflicts sit above goals, cycles and metrics: they read KPIs, links, goals and their
cycles, and nothing below imports them.
"""

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from core.bounds import LONG_TEXT_MAX, length_check
from metrics.models import KPI, ImpactLink, Silo

#: A comment is a remark, not a report: a few paragraphs at most.
COMMENT_MAX_LENGTH = 4000


class RunStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class RunTrigger(models.TextChoices):
    COMMAND = "command", "Command"
    SCHEDULE = "schedule", "Nightly schedule"
    API = "api", "API request"


class Method(models.TextChoices):
    DRIVERS = "drivers", "Common drivers removed, one-sided tests (the default)"
    PAIRWISE = (
        "pairwise",
        "Pairwise tests of the changes as they are (the first method)",
    )


class Grid(models.TextChoices):
    WEEKLY = "weekly", "Weeks"
    MONTHLY = "monthly", "Months"
    QUARTERLY = "quarterly", "Quarters"


class DetectionRun(models.Model):
    """One pass of conflict detection over all measurements: method, parameters,
    counts, the drivers found, the KPIs left untested, timing.

    ``synergies`` keeps the strongest positive associations found (at most
    ``SYNERGIES_KEPT``): they are reported, never registered as conflicts.
    """

    SYNERGIES_KEPT = 100

    status = models.CharField(
        max_length=10, choices=RunStatus.choices, default=RunStatus.PENDING
    )
    trigger = models.CharField(max_length=10, choices=RunTrigger.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    method = models.CharField(
        max_length=10, choices=Method.choices, default=Method.DRIVERS
    )
    max_lag = models.PositiveSmallIntegerField()
    min_pairs = models.PositiveSmallIntegerField()
    q_threshold = models.FloatField()
    block_size = models.PositiveIntegerField()
    parameters = models.JSONField(
        default=dict,
        blank=True,
        help_text="The method's constants, as the run used them.",
    )
    kpis = models.PositiveIntegerField(default=0, help_text="KPIs with data tested.")
    measurements = models.PositiveIntegerField(default=0)
    blocks = models.PositiveIntegerField(default=0)
    tests = models.BigIntegerField(default=0, help_text="Correlation tests run.")
    conflicts_found = models.PositiveIntegerField(default=0)
    synergies_found = models.PositiveIntegerField(default=0)
    contradicted_links = models.PositiveIntegerField(default=0)
    new_conflicts = models.PositiveIntegerField(default=0)
    reopened = models.PositiveIntegerField(default=0)
    marked_stale = models.PositiveIntegerField(default=0)
    synergies = models.JSONField(default=list, blank=True)
    untested_kpis = models.PositiveIntegerField(
        default=0, help_text="Active KPIs the run could not test."
    )
    untested = models.JSONField(
        default=list,
        blank=True,
        help_text="The KPIs the run could not test, each with the reason (at most "
        "1,000 are listed).",
    )
    drivers = models.JSONField(
        default=list,
        blank=True,
        help_text="The company-wide drivers the run found: per grid, the KPIs that "
        "move with each, and its share of the variance.",
    )
    high_alerts = models.PositiveIntegerField(
        default=0,
        help_text="High-severity conflicts under review the run mailed about (new, "
        "reopened, or become high).",
    )
    error = models.TextField(blank=True, max_length=LONG_TEXT_MAX)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            length_check("error", LONG_TEXT_MAX, "run_error_length"),
        ]

    def __str__(self) -> str:
        return f"Detection run {self.pk} ({self.status})"


class Kind(models.TextChoices):
    DECLARED = "declared", "Declared"
    OBSERVED = "observed", "Observed"
    CONFIRMED = "confirmed", "Confirmed"


class Severity(models.TextChoices):
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


SEVERITY_RANK: dict[str, int] = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2}


class Status(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    ACCEPTED_TRADEOFF = "accepted_tradeoff", "Accepted trade-off"
    RESOLVED = "resolved", "Resolved"
    DISMISSED = "dismissed", "Dismissed"


#: The workflow: which status may follow which. Closed statuses end the workflow; only
#: a detection run reopens them (see conflicts.services.materially_stronger).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    Status.OPEN: (Status.ACKNOWLEDGED,),
    Status.ACKNOWLEDGED: (
        Status.ACCEPTED_TRADEOFF,
        Status.RESOLVED,
        Status.DISMISSED,
    ),
    Status.ACCEPTED_TRADEOFF: (),
    Status.RESOLVED: (),
    Status.DISMISSED: (),
}
CLOSED_STATUSES = (Status.ACCEPTED_TRADEOFF, Status.RESOLVED, Status.DISMISSED)


class Conflict(models.Model):
    """A pair of KPIs of two silos where improving the leader worsens the affected KPI.

    One row per ordered (leader KPI, affected KPI), so one per (kind, leader, affected)
    as well: ``kind`` says what supports it and changes in place as support changes
    (``declared`` by a hurts link and an improving goal, ``observed`` in the data, both
    ``confirmed``), so the review workflow is never lost or duplicated. A conflict
    neither declared nor observed any more is ``stale``; rows are never deleted.
    """

    kind = models.CharField(max_length=10, choices=Kind.choices)
    is_declared = models.BooleanField(default=False)
    is_observed = models.BooleanField(default=False)
    contradicted = models.BooleanField(
        default=False,
        help_text="A declared link whose data shows a significant positive association.",
    )
    stale = models.BooleanField(default=False)
    stale_since = models.DateTimeField(null=True, blank=True)
    leader_kpi = models.ForeignKey(KPI, on_delete=models.PROTECT, related_name="+")
    affected_kpi = models.ForeignKey(KPI, on_delete=models.PROTECT, related_name="+")
    leader_silo = models.ForeignKey(Silo, on_delete=models.PROTECT, related_name="+")
    affected_silo = models.ForeignKey(Silo, on_delete=models.PROTECT, related_name="+")
    link = models.ForeignKey(
        ImpactLink,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="conflicts",
    )
    # Evidence from the last run that tested the pair significantly (None: no evidence).
    lag = models.PositiveSmallIntegerField(null=True, blank=True)
    correlation = models.FloatField(null=True, blank=True)
    p_value = models.FloatField(null=True, blank=True)
    q_value = models.FloatField(null=True, blank=True)
    periods = models.PositiveIntegerField(
        null=True, blank=True, help_text="Paired period-over-period changes tested."
    )
    grid = models.CharField(
        max_length=10,
        choices=Grid.choices,
        blank=True,
        help_text="The periods the evidence is in (the coarser KPI's): the lag counts "
        "them.",
    )
    effect = models.FloatField(
        null=True,
        blank=True,
        help_text="Change of the affected KPI's value (its unit) per unit change of the "
        "leader's beyond what the common drivers explain, at the lag.",
    )
    effect_low = models.FloatField(null=True, blank=True, help_text="95% CI, low end.")
    effect_high = models.FloatField(
        null=True, blank=True, help_text="95% CI, high end."
    )
    effect_step = models.FloatField(
        null=True,
        blank=True,
        help_text="A typical change of the leader beyond the drivers (its unit), to say "
        "the effect in words.",
    )
    last_run = models.ForeignKey(
        DetectionRun,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    severity = models.CharField(max_length=10, choices=Severity.choices)
    goal_at_risk = models.BooleanField(default=False)
    alerted_high = models.BooleanField(
        default=False,
        help_text="The CCO team and both silos were mailed about it being high.",
    )
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.OPEN
    )
    note = models.TextField(
        blank=True,
        max_length=LONG_TEXT_MAX,
        help_text="The note of the last status change.",
    )
    status_changed_at = models.DateTimeField(null=True, blank=True)
    status_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who follows the conflict up once acknowledged: a member of the CCO "
        "team or a manager of one of its two silos.",
    )
    due_date = models.DateField(
        null=True,
        blank=True,
        help_text="When the owner reports back; set on acknowledging.",
    )
    # The evidence when the conflict was closed, for the reopening rule.
    closed_correlation = models.FloatField(null=True, blank=True)
    closed_severity = models.CharField(
        max_length=10, choices=Severity.choices, blank=True
    )
    first_detected_at = models.DateTimeField()
    last_detected_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["leader_kpi", "affected_kpi"], name="conflict_unique_pair"
            ),
            models.CheckConstraint(
                condition=~Q(leader_silo=F("affected_silo")),
                name="conflict_across_silos",
            ),
            length_check("note", LONG_TEXT_MAX, "conflict_note_length"),
        ]
        indexes = [
            models.Index(fields=["status", "severity"]),
            models.Index(fields=["leader_silo", "affected_silo"]),
        ]

    def __str__(self) -> str:
        return f"{self.leader_kpi.key} hurts {self.affected_kpi.key} ({self.kind})"

    def is_overdue(self, today: dt.date) -> bool:
        """Return whether the conflict is still acknowledged past its due date."""
        return (
            self.status == Status.ACKNOWLEDGED
            and self.due_date is not None
            and self.due_date < today
        )


class ConflictTransition(models.Model):
    """One step of a conflict's review: who moved it, when, from what to what, and why.

    ``user`` is None when a detection run reopened the conflict (``run`` says which).
    """

    conflict = models.ForeignKey(
        Conflict, on_delete=models.CASCADE, related_name="transitions"
    )
    from_status = models.CharField(max_length=20, choices=Status.choices)
    to_status = models.CharField(max_length=20, choices=Status.choices)
    note = models.TextField(max_length=LONG_TEXT_MAX)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # The owner and due date the step set (acknowledging), kept for the history.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    due_date = models.DateField(null=True, blank=True)
    run = models.ForeignKey(
        DetectionRun,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            length_check("note", LONG_TEXT_MAX, "transition_note_length"),
        ]

    def __str__(self) -> str:
        return f"{self.from_status} -> {self.to_status}"


class ConflictComment(models.Model):
    """A remark on a conflict by someone who may read it (the CCO team, or a manager
    of its leading or affected silo): the thread both silos see beside the evidence."""

    conflict = models.ForeignKey(
        Conflict, on_delete=models.CASCADE, related_name="comments"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    body = models.TextField(max_length=COMMENT_MAX_LENGTH)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            length_check("body", COMMENT_MAX_LENGTH, "conflict_comment_body_length"),
        ]

    def __str__(self) -> str:
        return f"{self.author} on conflict {self.conflict_id}"
