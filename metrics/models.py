"""Silos, their KPIs and measurements, and declared cross-silo impact links."""

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords

from core.bounds import LONG_TEXT_MAX, length_check, magnitude_check, validate_magnitude
from metrics import periods

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
    description = models.TextField(blank=True, max_length=LONG_TEXT_MAX)
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
        constraints = [
            length_check("description", LONG_TEXT_MAX, "silo_description_length"),
        ]

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


#: What a change of a KPI's direction would break, registered by the apps that build on
#: KPIs (goals: a goal sets a target, or a band, by the KPI's direction). Each check
#: takes the KPI, with its new direction, and the stored direction, and returns why the
#: change is refused, or "" when nothing depends on it. KPIs know nothing of goals.
DIRECTION_CHANGE_CHECKS: list[Callable[["KPI", str], str]] = []


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
        validators=[validate_magnitude],
        help_text="Lower edge of the target band (target-band KPIs only).",
    )
    band_high = models.FloatField(
        null=True,
        blank=True,
        validators=[validate_magnitude],
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
    description = models.TextField(blank=True, max_length=LONG_TEXT_MAX)
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
            magnitude_check("band_low", "kpi_band_low_bounded", nullable=True),
            magnitude_check("band_high", "kpi_band_high_bounded", nullable=True),
            length_check("description", LONG_TEXT_MAX, "kpi_description_length"),
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
        if frozen["direction"] != self.direction:
            for check in DIRECTION_CHANGE_CHECKS:
                problem = check(self, frozen["direction"])
                if problem:
                    raise ValidationError({"direction": problem})
        if frozen["frequency"] != self.frequency and self.measurements.exists():
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
    value = models.FloatField(validators=[validate_magnitude])
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
            magnitude_check("value", "measurement_value_bounded"),
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
    expected_effect = models.FloatField(
        null=True,
        blank=True,
        validators=[validate_magnitude],
        help_text="Optional: units of the affected KPI per unit of the leader's, per "
        "period at the lag (signed), so that the annual cycle's consistency check projects "
        "this declared trade-off onto the affected silo's goal (set by the CCO team).",
    )
    rationale = models.TextField(max_length=LONG_TEXT_MAX)
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
            length_check("rationale", LONG_TEXT_MAX, "link_rationale_length"),
            magnitude_check(
                "expected_effect", "link_expected_effect_bounded", nullable=True
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


#: The admin imports files of at most 5 MiB; decoded, they have at most as many
#: characters as bytes.
IMPORT_MAX_LENGTH = 5 * 1024 * 1024


class MeasurementImport(models.Model):
    """A CSV file of measurements uploaded in the admin, kept from preview to confirm.

    The admin's preview reads it and writes nothing (so it holds no row lock while a
    person reads it); confirming imports it through the bulk upsert and deletes it. It
    lives in the database, not a worker's memory or disk, because the preview and the
    confirmation may be served by different workers or machines. Only its uploader may
    preview or confirm it, and an import left unconfirmed is deleted a day later.
    """

    #: How long an unconfirmed import is kept.
    KEPT_FOR_HOURS = 24

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    filename = models.CharField(max_length=255)
    content = models.TextField(max_length=IMPORT_MAX_LENGTH)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            length_check(
                "content", IMPORT_MAX_LENGTH, "measurementimport_content_length"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.filename} ({self.created_at:%Y-%m-%d %H:%M})"
