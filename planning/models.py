"""The annual "start united" workflow on a cycle: priorities, responsibilities, funding,
sign-offs and the readiness answers. The cycle itself (``cycles.Cycle``) sits below."""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q, Sum
from simple_history.models import HistoricalRecords

from core.bounds import LONG_TEXT_MAX, length_check
from cycles.models import (
    Cycle,
    Phase,
    cycle_is_locked,
    locked_message,
    stored_cycle_lock,
)
from metrics.models import Silo

#: Forward moves, one phase at a time; committed -> aligning reopens (with a reason).
FORWARD: dict[str, Phase] = {
    Phase.DRAFT: Phase.PROPOSING,
    Phase.PROPOSING: Phase.ALIGNING,
    Phase.ALIGNING: Phase.COMMITTED,
    Phase.COMMITTED: Phase.CLOSED,
}
REOPEN = (Phase.COMMITTED, Phase.ALIGNING)


def allocated_total(cycle: Cycle, *, excluding: models.Model | None = None) -> Decimal:
    """Return the sum of ``cycle``'s funding allocations (minus ``excluding``)."""
    allocations = FundingAllocation.objects.filter(priority__cycle=cycle)
    if excluding is not None and excluding.pk is not None:
        allocations = allocations.exclude(pk=excluding.pk)
    return allocations.aggregate(total=Sum("amount"))["total"] or Decimal("0")


def budget_problem(cycle: Cycle, budget: Decimal | None) -> str:
    """Say why ``budget`` is too small for what ``cycle`` has already allocated, or
    return "" when it covers the allocations. The cycle's own model knows nothing of
    funding: the admin form and the cycle service ask here before they save a budget.
    """
    if cycle.pk is None or budget is None:
        return ""
    allocated = allocated_total(cycle)
    if allocated <= budget:
        return ""
    return (
        f"{money(allocated, cycle.currency)} is already allocated; the budget cannot "
        f"fall to {money(budget, cycle.currency)}. Reduce the allocations first."
    )


def over_budget_message(cycle: Cycle, others: Decimal, amount: Decimal) -> str:
    """Say by how much an allocation of ``amount`` would overrun ``cycle``'s budget."""
    total = others + amount
    return (
        f"This allocation of {money(amount, cycle.currency)} would bring {cycle}'s "
        f"funding to {money(total, cycle.currency)}, over its budget of "
        f"{money(cycle.budget, cycle.currency)} by "
        f"{money(total - cycle.budget, cycle.currency)} "
        f"({money(max(cycle.budget - others, Decimal('0')), cycle.currency)} is left)."
    )


def money(amount: Decimal, currency: str) -> str:
    """Format an amount the way the budget messages show it: "EUR 1,250,000.00"."""
    return f"{currency} {amount:,.2f}"


class Priority(models.Model):
    """A ranked priority of the cycle, with one accountable silo."""

    cycle = models.ForeignKey(
        Cycle, on_delete=models.CASCADE, related_name="priorities"
    )
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=LONG_TEXT_MAX)
    rank = models.PositiveSmallIntegerField(help_text="1 is the most important.")
    accountable_silo = models.ForeignKey(
        Silo, on_delete=models.PROTECT, related_name="accountable_priorities"
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "priorities"
        ordering = ["cycle", "rank"]
        constraints = [
            models.UniqueConstraint(
                fields=["cycle", "rank"],
                name="priority_unique_rank",
                violation_error_message="Another priority of this cycle has this rank.",
            ),
            models.CheckConstraint(
                condition=Q(rank__gte=1), name="priority_rank_positive"
            ),
            length_check("description", LONG_TEXT_MAX, "priority_description_length"),
        ]

    def __str__(self) -> str:
        return f"{self.rank}. {self.title}"

    def clean(self) -> None:
        super().clean()
        if self.cycle_id is not None and cycle_is_locked(self.cycle):
            raise ValidationError(locked_message(self.cycle, "priorities"))
        locked = stored_cycle_lock(Priority, self.pk, "priority", "priorities")
        if locked:
            raise ValidationError(locked)


class Role(models.TextChoices):
    RESPONSIBLE = "responsible", "Responsible"
    ACCOUNTABLE = "accountable", "Accountable"
    CONSULTED = "consulted", "Consulted"
    INFORMED = "informed", "Informed"


class Responsibility(models.Model):
    """A silo's RACI role on a priority."""

    priority = models.ForeignKey(
        Priority, on_delete=models.CASCADE, related_name="responsibilities"
    )
    silo = models.ForeignKey(
        Silo, on_delete=models.PROTECT, related_name="responsibilities"
    )
    role = models.CharField(max_length=12, choices=Role.choices)

    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "responsibilities"
        ordering = ["priority", "silo__position"]
        constraints = [
            models.UniqueConstraint(
                fields=["priority", "silo"],
                name="responsibility_unique_silo",
                violation_error_message="This silo already has a role on this priority.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.silo}: {self.get_role_display()}"

    def clean(self) -> None:
        super().clean()
        if self.priority_id is not None and cycle_is_locked(self.priority.cycle):
            raise ValidationError(
                locked_message(self.priority.cycle, "responsibilities")
            )


class FundingAllocation(models.Model):
    """Money the cycle's budget gives a silo for a priority."""

    priority = models.ForeignKey(
        Priority, on_delete=models.CASCADE, related_name="allocations"
    )
    silo = models.ForeignKey(Silo, on_delete=models.PROTECT, related_name="allocations")
    amount = models.DecimalField(
        max_digits=16, decimal_places=2, validators=[MinValueValidator(Decimal("0"))]
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["priority", "silo__position"]
        constraints = [
            models.UniqueConstraint(
                fields=["priority", "silo"],
                name="allocation_unique_silo",
                violation_error_message="This silo already has funding for this priority.",
            ),
            models.CheckConstraint(
                condition=Q(amount__gte=0), name="allocation_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.silo}: {self.amount}"

    def clean(self) -> None:
        super().clean()
        if self.priority_id is None or self.amount is None:
            return
        cycle = self.priority.cycle
        if cycle_is_locked(cycle):
            raise ValidationError(locked_message(cycle, "funding allocations"))
        others = allocated_total(cycle, excluding=self)
        if others + self.amount > cycle.budget:
            raise ValidationError(
                {"amount": over_budget_message(cycle, others, self.amount)}
            )


class SignOff(models.Model):
    """A silo leader's agreement to the cycle's plan."""

    cycle = models.ForeignKey(Cycle, on_delete=models.CASCADE, related_name="sign_offs")
    silo = models.ForeignKey(Silo, on_delete=models.PROTECT, related_name="sign_offs")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="sign_offs"
    )
    signed_at = models.DateTimeField(auto_now_add=True)
    note = models.TextField(blank=True, max_length=LONG_TEXT_MAX)

    history = HistoricalRecords()

    class Meta:
        ordering = ["cycle", "silo__position"]
        constraints = [
            models.UniqueConstraint(
                fields=["cycle", "silo"],
                name="signoff_unique_silo",
                violation_error_message="This silo has already signed off this cycle.",
            ),
            length_check("note", LONG_TEXT_MAX, "signoff_note_length"),
        ]

    def __str__(self) -> str:
        return f"{self.silo} signed {self.cycle}"


class Answer(models.TextChoices):
    YES = "yes", "Yes"
    PARTLY = "partly", "Partly"
    NO = "no", "No"


class ReadinessAnswer(models.Model):
    """The CCO team's answer to one of the readiness statements for a cycle.

    The statements are planning.readiness.STATEMENTS (numbered 1 to 11); an unanswered
    statement counts as "no" in the score.
    """

    cycle = models.ForeignKey(
        Cycle, on_delete=models.CASCADE, related_name="readiness_answers"
    )
    number = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(11)]
    )
    answer = models.CharField(max_length=6, choices=Answer.choices)
    note = models.TextField(blank=True, max_length=LONG_TEXT_MAX)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["cycle", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["cycle", "number"], name="readiness_unique_statement"
            ),
            models.CheckConstraint(
                condition=Q(number__gte=1) & Q(number__lte=11),
                name="readiness_statement_1_to_11",
            ),
            length_check("note", LONG_TEXT_MAX, "readiness_note_length"),
        ]

    def __str__(self) -> str:
        return f"{self.cycle} #{self.number}: {self.answer}"
