"""Silos, their KPIs and measurements, and declared cross-silo impact links."""

import math
import sys

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords

from metrics import periods

# The largest finite double bounds the CHECK: infinities fall outside it, and so does NaN,
# which PostgreSQL sorts above every number. (A literal "inf" would not survive as SQL in
# SQLite, the embedded default database.)
FINITE_MAX = sys.float_info.max


def finite_check(field: str, name: str) -> models.CheckConstraint:
    """Return a constraint that rejects NaN and infinities in the float ``field``."""
    return models.CheckConstraint(
        condition=Q(**{f"{field}__lte": FINITE_MAX})
        & Q(**{f"{field}__gte": -FINITE_MAX}),
        name=name,
        violation_error_message=f"{field} must be a finite number.",
    )


def finite_or_null_check(field: str, name: str) -> models.CheckConstraint:
    """Return a constraint that rejects NaN and infinities but allows NULL."""
    return models.CheckConstraint(
        condition=Q(**{f"{field}__isnull": True})
        | (Q(**{f"{field}__lte": FINITE_MAX}) & Q(**{f"{field}__gte": -FINITE_MAX})),
        name=name,
        violation_error_message=f"{field} must be a finite number.",
    )


def validate_finite(value: float | None) -> None:
    """Raise ValidationError for NaN and infinities (form-level twin of finite_check)."""
    if value is not None and not math.isfinite(value):
        raise ValidationError("Enter a finite number (not NaN or infinity).")


slug_validator = RegexValidator(
    r"^[a-z][a-z0-9_]*$",
    "Use lower-case letters, digits and underscores, starting with a letter.",
)


class Silo(models.Model):
    """A department rewarded for its own KPIs (Sales, Support, Finance, ...).

    ``position`` orders silos along the company's value chain, from the first touch of a
    customer (marketing) to the last (support); reports lay silos out in that order.
    """

    slug = models.SlugField(max_length=40, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    position = models.PositiveSmallIntegerField(
        default=0, help_text="Place along the value chain: lower comes first."
    )
    managers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="managed_silos"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(m2m_fields=[managers])

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class Direction(models.TextChoices):
    HIGHER_IS_BETTER = "higher_is_better", "Higher is better"
    LOWER_IS_BETTER = "lower_is_better", "Lower is better"
    TARGET_BAND = "target_band", "Within a target band"


class Frequency(models.TextChoices):
    WEEKLY = periods.WEEKLY, "Weekly"
    MONTHLY = periods.MONTHLY, "Monthly"
    QUARTERLY = periods.QUARTERLY, "Quarterly"


class Aggregation(models.TextChoices):
    SUM = "sum", "Sum"
    MEAN = "mean", "Mean"
    LAST = "last", "Last value"


class KPI(models.Model):
    """A key performance indicator owned by one silo.

    ``key`` (``"<silo slug>.<kpi slug>"``) is the KPI's public name in the API and in
    imports. It is derived once, at creation, and never changes: silo and slug are
    frozen after that, so BI reports that name a KPI keep working.
    """

    silo = models.ForeignKey(Silo, on_delete=models.PROTECT, related_name="kpis")
    slug = models.SlugField(max_length=60, validators=[slug_validator])
    key = models.CharField(max_length=101, unique=True, editable=False)
    name = models.CharField(max_length=150)
    unit = models.CharField(max_length=30, help_text="For example %, EUR, days, count.")
    direction = models.CharField(max_length=20, choices=Direction.choices)
    band_low = models.FloatField(
        null=True,
        blank=True,
        validators=[validate_finite],
        help_text="Lower edge of the target band (target-band KPIs only).",
    )
    band_high = models.FloatField(
        null=True,
        blank=True,
        validators=[validate_finite],
        help_text="Upper edge of the target band (target-band KPIs only).",
    )
    frequency = models.CharField(
        max_length=10, choices=Frequency.choices, default=Frequency.MONTHLY
    )
    aggregation = models.CharField(
        max_length=10,
        choices=Aggregation.choices,
        default=Aggregation.SUM,
        help_text="How values combine over a range of periods.",
    )
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = "KPI"
        verbose_name_plural = "KPIs"
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(
                fields=["silo", "slug"], name="kpi_unique_silo_slug"
            ),
            models.CheckConstraint(
                condition=(
                    ~Q(direction="target_band")
                    & Q(band_low__isnull=True)
                    & Q(band_high__isnull=True)
                )
                | (
                    Q(direction="target_band")
                    & Q(band_low__isnull=False)
                    & Q(band_high__isnull=False)
                    & Q(band_low__lte=F("band_high"))
                ),
                name="kpi_band_matches_direction",
                violation_error_message=(
                    "A target-band KPI needs band low <= band high; other directions "
                    "have no band."
                ),
            ),
            finite_or_null_check("band_low", "kpi_band_low_finite"),
            finite_or_null_check("band_high", "kpi_band_high_finite"),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.name})"

    def save(self, *args, **kwargs) -> None:
        if not self.key:
            self.key = self.make_key(self.silo.slug, self.slug)
        super().save(*args, **kwargs)

    @staticmethod
    def make_key(silo_slug: str, kpi_slug: str) -> str:
        return f"{silo_slug}.{kpi_slug}"

    def clean(self) -> None:
        super().clean()
        if self.pk is None:
            return
        frozen = (
            KPI.objects.filter(pk=self.pk)
            .values("silo_id", "slug", "direction", "frequency")
            .first()
        )
        if frozen is None:
            return
        if frozen["silo_id"] != self.silo_id or frozen["slug"] != self.slug:
            raise ValidationError(
                "The silo and slug of a KPI cannot change: its key "
                f"{self.key!r} is in use by reports and imports."
            )
        is_band = {frozen["direction"], self.direction} & {Direction.TARGET_BAND}
        if (
            frozen["direction"] != self.direction and is_band and self.goals.exists()  # type: ignore[attr-defined]
        ):
            raise ValidationError(
                {
                    "direction": "Goals on this KPI set a "
                    + (
                        "band"
                        if frozen["direction"] == Direction.TARGET_BAND
                        else "target"
                    )
                    + "; change or delete them before switching to or from a target band."
                }
            )
        if frozen["frequency"] != self.frequency and self.measurements.exists():  # type: ignore[attr-defined]
            raise ValidationError(
                {
                    "frequency": "This KPI has measurements for its current periods; "
                    "its frequency cannot change."
                }
            )


class Measurement(models.Model):
    """The value of a KPI for one period (named by its first day)."""

    kpi = models.ForeignKey(
        KPI, on_delete=models.PROTECT, related_name="measurements", verbose_name="KPI"
    )
    period = models.DateField(help_text="First day of the period.")
    value = models.FloatField(validators=[validate_finite])
    source = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["kpi", "period"]
        constraints = [
            models.UniqueConstraint(
                fields=["kpi", "period"],
                name="measurement_unique_kpi_period",
                violation_error_message="This KPI already has a value for this period.",
            ),
            finite_check("value", "measurement_value_finite"),
        ]

    def __str__(self) -> str:
        return f"{self.kpi_id} {self.period:%Y-%m-%d} = {self.value}"

    def clean(self) -> None:
        super().clean()
        if self.kpi_id is not None and self.period is not None:
            frequency = self.kpi.frequency
            if not periods.is_period_start(self.period, frequency):
                raise ValidationError(
                    {
                        "period": f"A {frequency} KPI's period must be "
                        f"{periods.describe_period_start(frequency)}; got "
                        f"{self.period:%Y-%m-%d}."
                    }
                )


class Effect(models.TextChoices):
    HURTS = "hurts", "Hurts"
    HELPS = "helps", "Helps"


class ImpactLink(models.Model):
    """A declared effect of improving one silo's KPI on another silo's KPI.

    The silos are copied from the KPIs (a KPI's silo never changes) so that the database
    itself refuses a link inside one silo: such a link is not a cross-silo concern.
    """

    MAX_LAG = 12

    leader_kpi = models.ForeignKey(
        KPI,
        on_delete=models.PROTECT,
        related_name="links_out",
        help_text="The KPI whose improvement has the effect.",
    )
    affected_kpi = models.ForeignKey(
        KPI,
        on_delete=models.PROTECT,
        related_name="links_in",
        help_text="The KPI of another silo that the improvement affects.",
    )
    leader_silo = models.ForeignKey(
        Silo, on_delete=models.PROTECT, related_name="+", editable=False
    )
    affected_silo = models.ForeignKey(
        Silo, on_delete=models.PROTECT, related_name="+", editable=False
    )
    effect = models.CharField(max_length=10, choices=Effect.choices)
    lag = models.PositiveSmallIntegerField(
        default=0,
        validators=[MaxValueValidator(MAX_LAG)],
        help_text="Periods between the leader's change and the effect (0-12).",
    )
    rationale = models.TextField()
    declared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["leader_kpi__key", "affected_kpi__key"]
        constraints = [
            models.UniqueConstraint(
                fields=["leader_kpi", "affected_kpi"],
                name="link_unique_pair",
                violation_error_message="A link between these two KPIs already exists.",
            ),
            models.CheckConstraint(
                condition=~Q(leader_silo=F("affected_silo")),
                name="link_across_silos",
                violation_error_message="A link must join KPIs of two different silos.",
            ),
            models.CheckConstraint(
                condition=Q(lag__lte=12), name="link_lag_at_most_12"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.leader_kpi.key} {self.effect} {self.affected_kpi.key}"

    def save(self, *args, **kwargs) -> None:
        self.copy_silos()
        super().save(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        if self.leader_kpi_id and self.affected_kpi_id:
            self.copy_silos()
            if self.leader_silo_id == self.affected_silo_id:
                raise ValidationError(
                    {"affected_kpi": "A link must join KPIs of two different silos."}
                )

    def copy_silos(self) -> None:
        self.leader_silo_id = self.leader_kpi.silo_id
        self.affected_silo_id = self.affected_kpi.silo_id
