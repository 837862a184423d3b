"""Silo goals on KPIs, and cross-silo shared goals built from weighted contributions.

A goal belongs to a cycle (``cycles.Cycle``, below this app), and is locked with it
once the cycle commits.
"""

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords

from core.bounds import (
    LONG_TEXT_MAX,
    MAX_MAGNITUDE,
    length_check,
    magnitude_check,
    validate_magnitude,
)
from cycles.models import Cycle, cycle_is_locked, locked_message, stored_cycle_lock
from goals.rules import goal_value_problems
from metrics.models import KPI


class Goal(models.Model):
    """A silo's commitment for a cycle: move one of its KPIs from a baseline to a target.

    The goal is measured over the periods ``period_start``..``period_end`` (the period it is
    due), aggregated by the KPI's own aggregation. A target-band KPI's goal sets a band
    (``target_low``..``target_high``) instead of a single target.
    """

    cycle = models.ForeignKey(Cycle, on_delete=models.PROTECT, related_name="goals")
    kpi = models.ForeignKey(
        KPI, on_delete=models.PROTECT, related_name="goals", verbose_name="KPI"
    )
    name = models.CharField(max_length=200, blank=True)
    baseline = models.FloatField(validators=[validate_magnitude])
    target = models.FloatField(null=True, blank=True, validators=[validate_magnitude])
    target_low = models.FloatField(
        null=True, blank=True, validators=[validate_magnitude]
    )
    target_high = models.FloatField(
        null=True, blank=True, validators=[validate_magnitude]
    )
    period_start = models.DateField(help_text="First period the goal is measured over.")
    period_end = models.DateField(help_text="The period the goal is due.")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_goals",
    )
    notes = models.TextField(blank=True, max_length=LONG_TEXT_MAX)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["cycle", "kpi__silo__position", "kpi__key"]
        constraints = [
            models.UniqueConstraint(
                fields=["cycle", "kpi"],
                name="goal_unique_cycle_kpi",
                violation_error_message="This KPI already has a goal in this cycle.",
            ),
            models.CheckConstraint(
                condition=Q(period_start__lte=F("period_end")),
                name="goal_period_order",
                violation_error_message="The first period must not come after the due period.",
            ),
            models.CheckConstraint(
                condition=(
                    Q(target__isnull=False)
                    & Q(target_low__isnull=True)
                    & Q(target_high__isnull=True)
                )
                | (
                    Q(target__isnull=True)
                    & Q(target_low__isnull=False)
                    & Q(target_high__isnull=False)
                    & Q(target_low__lte=F("target_high"))
                ),
                name="goal_target_or_band",
                violation_error_message=(
                    "Set either a target, or a band with low <= high; not both."
                ),
            ),
            magnitude_check("baseline", "goal_baseline_bounded"),
            magnitude_check("target", "goal_target_bounded", nullable=True),
            magnitude_check("target_low", "goal_target_low_bounded", nullable=True),
            magnitude_check("target_high", "goal_target_high_bounded", nullable=True),
            length_check("notes", LONG_TEXT_MAX, "goal_notes_length"),
        ]

    def __str__(self) -> str:
        if self.name:
            return self.name
        try:
            return f"{self.kpi.key} in {self.cycle}"
        except ObjectDoesNotExist:
            # History can outlive the KPI and the cycle: name them by id then.
            return f"KPI {self.kpi_id} in cycle {self.cycle_id}"

    @property
    def silo(self):
        return self.kpi.silo

    def clean(self) -> None:
        super().clean()
        errors: dict[str, str] = {}
        errors.update(goal_value_problems(self))
        if self.cycle_id is not None and cycle_is_locked(self.cycle):
            raise ValidationError({"cycle": locked_message(self.cycle, "goals")})
        locked = stored_cycle_lock(Goal, self.pk, "goal", "goals")
        if locked:
            raise ValidationError(
                {
                    "cycle": f"{locked} The CCO team can reopen it (committed -> "
                    "aligning) with a reason."
                }
            )
        if self.pk is not None and self.cycle_id is not None:
            stored_cycle = (
                Goal.objects.filter(pk=self.pk)
                .values_list("cycle_id", flat=True)
                .first()
            )
            if (
                stored_cycle is not None
                and stored_cycle != self.cycle_id
                and self.contributions.exists()
            ):
                # Shared goals are the CCO team's: a silo cannot pull its goal out of one.
                errors["cycle"] = (
                    "This goal contributes to a shared goal of its cycle; the CCO team "
                    "must remove that contribution before the goal changes cycle."
                )
        if self.cycle_id is not None and self.period_start and self.period_end:
            cycle = self.cycle
            if not (cycle.start_date <= self.period_start <= cycle.end_date) or not (
                cycle.start_date <= self.period_end <= cycle.end_date
            ):
                errors.setdefault(
                    "period_end",
                    f"The goal's periods must lie within {cycle} "
                    f"({cycle.start_date:%Y-%m-%d} to {cycle.end_date:%Y-%m-%d}).",
                )
        if errors:
            raise ValidationError(errors)


class SharedGoal(models.Model):
    """A cross-silo goal for a cycle that no silo can meet alone.

    Its progress is the weighted mean of its contributions' attainments (issue: roll-ups).
    """

    cycle = models.ForeignKey(
        Cycle, on_delete=models.PROTECT, related_name="shared_goals"
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=LONG_TEXT_MAX)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_shared_goals",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["cycle", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["cycle", "name"], name="shared_goal_unique_cycle_name"
            ),
            length_check(
                "description", LONG_TEXT_MAX, "shared_goal_description_length"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if self.cycle_id is not None and cycle_is_locked(self.cycle):
            raise ValidationError({"cycle": locked_message(self.cycle, "shared goals")})
        locked = stored_cycle_lock(SharedGoal, self.pk, "shared goal", "shared goals")
        if locked:
            raise ValidationError({"cycle": locked})


class Contribution(models.Model):
    """A silo goal's weighted share in a shared goal."""

    shared_goal = models.ForeignKey(
        SharedGoal, on_delete=models.CASCADE, related_name="contributions"
    )
    goal = models.ForeignKey(
        Goal, on_delete=models.PROTECT, related_name="contributions"
    )
    weight = models.FloatField(default=1.0, validators=[validate_magnitude])

    history = HistoricalRecords()

    class Meta:
        ordering = ["shared_goal", "goal__kpi__key"]
        constraints = [
            models.UniqueConstraint(
                fields=["shared_goal", "goal"],
                name="contribution_unique_goal",
                violation_error_message="This goal already contributes to the shared goal.",
            ),
            models.CheckConstraint(
                condition=Q(weight__gt=0) & Q(weight__lt=MAX_MAGNITUDE),
                name="contribution_weight_positive_bounded",
                violation_error_message="The weight must be a positive number below "
                "1e15.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.goal} x {self.weight:g}"

    def clean(self) -> None:
        super().clean()
        if self.shared_goal_id is not None and cycle_is_locked(self.shared_goal.cycle):
            raise ValidationError(
                locked_message(self.shared_goal.cycle, "shared goals")
            )
        if (
            self.goal_id is not None
            and self.shared_goal_id is not None
            and self.goal.cycle_id != self.shared_goal.cycle_id
        ):
            raise ValidationError(
                {"goal": "The goal belongs to another cycle than the shared goal."}
            )


class Guardrail(models.Model):
    """A KPI of any silo that a shared goal may not worsen beyond a tolerance.

    For example "Support CSAT may not fall more than 2 points": KPI support.csat,
    baseline 84, tolerance 2. The KPI's current level is its latest value inside the
    cycle; a breach is flagged on the shared goal and caps its progress (see
    goals.progress.shared_progress). This is how a silo stops being credited for a win
    that hurts another silo.
    """

    shared_goal = models.ForeignKey(
        SharedGoal, on_delete=models.CASCADE, related_name="guardrails"
    )
    kpi = models.ForeignKey(KPI, on_delete=models.PROTECT, related_name="guardrails")
    baseline = models.FloatField(validators=[validate_magnitude])
    tolerance = models.FloatField(
        validators=[validate_magnitude],
        help_text="How much the KPI may worsen from its baseline, in the KPI's unit.",
    )
    note = models.CharField(max_length=200, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["shared_goal", "kpi__key"]
        constraints = [
            models.UniqueConstraint(
                fields=["shared_goal", "kpi"],
                name="guardrail_unique_kpi",
                violation_error_message="This KPI is already a guardrail of the shared goal.",
            ),
            magnitude_check("baseline", "guardrail_baseline_bounded"),
            models.CheckConstraint(
                condition=Q(tolerance__gte=0) & Q(tolerance__lt=MAX_MAGNITUDE),
                name="guardrail_tolerance_not_negative_bounded",
                violation_error_message="The tolerance must be a number >= 0 and "
                "below 1e15.",
            ),
        ]

    def __str__(self) -> str:
        try:
            return f"{self.kpi.key} may worsen by at most {self.tolerance:g}"
        except ObjectDoesNotExist:
            return f"KPI {self.kpi_id} guardrail"

    def clean(self) -> None:
        super().clean()
        if self.shared_goal_id is not None and cycle_is_locked(self.shared_goal.cycle):
            raise ValidationError(
                locked_message(self.shared_goal.cycle, "shared goals")
            )


class SharedGoalSnapshot(models.Model):
    """A shared goal's progress as computed on one day by the roll-up job.

    One row per shared goal and day: a second roll-up the same day replaces it.
    ``contributions`` and ``guardrails`` keep the breakdown the progress came from.
    """

    shared_goal = models.ForeignKey(
        SharedGoal, on_delete=models.CASCADE, related_name="snapshots"
    )
    day = models.DateField()
    progress = models.FloatField(null=True, blank=True)
    uncapped_progress = models.FloatField(null=True, blank=True)
    contributions_with_data = models.PositiveIntegerField()
    contributions_total = models.PositiveIntegerField()
    per_silo = models.JSONField(default=dict)
    contributions = models.JSONField(default=list)
    guardrails = models.JSONField(default=list)
    guardrail_breached = models.BooleanField(default=False)
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["shared_goal", "day"]
        constraints = [
            models.UniqueConstraint(
                fields=["shared_goal", "day"], name="snapshot_unique_day"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.shared_goal_id} on {self.day}"


class RollupRun(models.Model):
    """One run of the shared-goal roll-up: why it ran, what it did, how long it took."""

    class Reason(models.TextChoices):
        SCHEDULE = "schedule", "Nightly schedule"
        MEASUREMENTS = "measurements", "New measurements"
        CATCH_UP = "catch_up", "Catch-up after missed runs"
        COMMAND = "command", "Command"

    class Status(models.TextChoices):
        DONE = "done", "Done"
        SKIPPED = "skipped", "Skipped: another run held the lock"
        FAILED = "failed", "Failed"

    reason = models.CharField(max_length=15, choices=Reason.choices)
    status = models.CharField(max_length=10, choices=Status.choices)
    day = models.DateField()
    shared_goals = models.PositiveIntegerField(default=0)
    breached = models.PositiveIntegerField(
        default=0, help_text="Shared goals with a breached guardrail."
    )
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    duration_seconds = models.FloatField(null=True, blank=True)
    error = models.TextField(
        blank=True,
        max_length=LONG_TEXT_MAX,
        help_text="Why a failed run failed (the error, cut to fit).",
    )

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            length_check("error", LONG_TEXT_MAX, "rollup_run_error_length"),
        ]

    def __str__(self) -> str:
        return f"Roll-up {self.day} ({self.status})"


class RollupDemand(models.Model):
    """How many measurement changes asked for a roll-up, and up to which one the last
    roll-up covered (one row).

    Written in PostgreSQL, not Redis, so that a change made while Redis is down is not
    forgotten: the catch-up job runs the roll-up whenever ``requested`` is ahead of
    ``satisfied``. A roll-up reads ``requested`` before it reads any data, so a change
    that commits during a roll-up always leaves ``requested`` ahead.
    """

    requested = models.BigIntegerField(default=0)
    satisfied = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"roll-up demand {self.satisfied}/{self.requested}"
