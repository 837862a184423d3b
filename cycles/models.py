"""The annual cycle and its phases, at the bottom of the house.

Goals, shared goals and the conflict register belong to a cycle and ask whether its plan
is locked; the workflow that moves a cycle through its phases (the commit gate, the
sign-offs, priorities, responsibilities and funding) is built on top and names this
model, never the other way round. The cycle knows only its own fields and its
participating silos.
"""

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords

from metrics.models import Silo


class Phase(models.TextChoices):
    """The phases a cycle goes through, in order: see the workflow for the moves."""

    DRAFT = "draft", "Draft"
    PROPOSING = "proposing", "Proposing"
    ALIGNING = "aligning", "Aligning"
    COMMITTED = "committed", "Committed"
    CLOSED = "closed", "Closed"


#: The phases in which a cycle's plan is locked. Goals, shared goals, contributions,
#: guardrails, priorities and funding of such a cycle change only after the CCO team
#: reopens it (committed -> aligning, with a reason).
LOCKED_PHASES: tuple[str, ...] = (Phase.COMMITTED, Phase.CLOSED)
#: The phases in which silo managers enter and change their own silos' goals.
MANAGER_PHASES: tuple[str, ...] = (Phase.PROPOSING, Phase.ALIGNING)


class Cycle(models.Model):
    """One annual cycle (for example "FY2027") that the silo leaders go through together.

    ``silos`` are the participating silos: each must sign off before the cycle commits.
    ``budget`` is what the cycle's funding may allocate; the allocations and the rule
    that they stay within it belong to the workflow above.
    """

    name = models.CharField(max_length=50, unique=True)
    start_date = models.DateField()
    end_date = models.DateField()
    phase = models.CharField(max_length=12, choices=Phase.choices, default=Phase.DRAFT)
    budget = models.DecimalField(
        max_digits=16,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    currency = models.CharField(max_length=3, default="EUR", help_text="ISO 4217 code.")
    silos = models.ManyToManyField(
        Silo, blank=True, related_name="cycles", help_text="Participating silos."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(m2m_fields=[silos])

    class Meta:
        ordering = ["-start_date"]
        constraints = [
            models.CheckConstraint(
                condition=Q(start_date__lt=F("end_date")),
                name="cycle_dates_in_order",
                violation_error_message="The cycle must end after it starts.",
            ),
            models.CheckConstraint(
                condition=Q(budget__gte=0), name="cycle_budget_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_locked(self) -> bool:
        """Whether the plan is locked (committed or closed)."""
        return self.phase in LOCKED_PHASES


def cycle_is_locked(cycle: Cycle | None) -> bool:
    """Return whether ``cycle`` is committed or closed (``None`` is not)."""
    return cycle is not None and cycle.is_locked


def locked_message(cycle: Cycle, what: str) -> str:
    """Say why ``what`` of a committed or closed ``cycle`` cannot change."""
    return (
        f"The cycle {cycle} is {cycle.phase}: its {what} are locked. The CCO team can "
        "reopen it (committed -> aligning) with a reason."
    )


def stored_cycle_lock(
    model: type[models.Model], pk: int | None, noun: str, plural: str
) -> str:
    """Say why the stored ``model`` row ``pk`` may not change (its cycle, as stored, is
    committed or closed), or return "" when it may: moving a row out of a locked cycle
    is a change of that cycle's plan too. ``model`` has a ``cycle`` foreign key."""
    if pk is None:
        return ""
    stored = (
        model._default_manager.filter(pk=pk)
        .values_list("cycle__phase", "cycle__name")
        .first()
    )
    if stored is None or stored[0] not in LOCKED_PHASES:
        return ""
    return f"This {noun} belongs to {stored[1]}, which is {stored[0]}: its {plural} are locked."


def cycles_lock(*cycles: Cycle | int | None) -> None:
    """Lock the rows of these cycles (ids or instances) until the transaction ends.

    Sorted, so that two transactions locking the same cycles never deadlock.
    """
    ids = sorted({c.pk if isinstance(c, Cycle) else c for c in cycles if c is not None})
    if ids:
        list(Cycle.objects.select_for_update().filter(pk__in=ids).values_list("pk"))
