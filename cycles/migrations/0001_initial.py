"""The cycle, its history and its participating silos, as state only.

The three tables already exist: the cycle was first defined one layer up, by the
workflow that now builds on it, and that app's migration 0006 renames its tables to
these names in the same deployment. Declaring the models here without touching the
database keeps every row, id, history record and permission.
"""

import django.core.validators
import django.db.models.deletion
import simple_history.models
from decimal import Decimal
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("metrics", "0003_measurement_import"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Cycle",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("name", models.CharField(max_length=50, unique=True)),
                        ("start_date", models.DateField()),
                        ("end_date", models.DateField()),
                        (
                            "phase",
                            models.CharField(
                                choices=[
                                    ("draft", "Draft"),
                                    ("proposing", "Proposing"),
                                    ("aligning", "Aligning"),
                                    ("committed", "Committed"),
                                    ("closed", "Closed"),
                                ],
                                default="draft",
                                max_length=12,
                            ),
                        ),
                        (
                            "budget",
                            models.DecimalField(
                                decimal_places=2,
                                default=Decimal("0"),
                                max_digits=16,
                                validators=[
                                    django.core.validators.MinValueValidator(
                                        Decimal("0")
                                    )
                                ],
                            ),
                        ),
                        (
                            "currency",
                            models.CharField(
                                default="EUR", help_text="ISO 4217 code.", max_length=3
                            ),
                        ),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                        (
                            "silos",
                            models.ManyToManyField(
                                blank=True,
                                help_text="Participating silos.",
                                related_name="cycles",
                                to="metrics.silo",
                            ),
                        ),
                    ],
                    options={
                        "ordering": ["-start_date"],
                    },
                ),
                migrations.CreateModel(
                    name="HistoricalCycle",
                    fields=[
                        (
                            "id",
                            models.BigIntegerField(
                                auto_created=True,
                                blank=True,
                                db_index=True,
                                verbose_name="ID",
                            ),
                        ),
                        ("name", models.CharField(db_index=True, max_length=50)),
                        ("start_date", models.DateField()),
                        ("end_date", models.DateField()),
                        (
                            "phase",
                            models.CharField(
                                choices=[
                                    ("draft", "Draft"),
                                    ("proposing", "Proposing"),
                                    ("aligning", "Aligning"),
                                    ("committed", "Committed"),
                                    ("closed", "Closed"),
                                ],
                                default="draft",
                                max_length=12,
                            ),
                        ),
                        (
                            "budget",
                            models.DecimalField(
                                decimal_places=2,
                                default=Decimal("0"),
                                max_digits=16,
                                validators=[
                                    django.core.validators.MinValueValidator(
                                        Decimal("0")
                                    )
                                ],
                            ),
                        ),
                        (
                            "currency",
                            models.CharField(
                                default="EUR", help_text="ISO 4217 code.", max_length=3
                            ),
                        ),
                        (
                            "created_at",
                            models.DateTimeField(blank=True, editable=False),
                        ),
                        (
                            "updated_at",
                            models.DateTimeField(blank=True, editable=False),
                        ),
                        (
                            "history_id",
                            models.AutoField(primary_key=True, serialize=False),
                        ),
                        ("history_date", models.DateTimeField(db_index=True)),
                        (
                            "history_change_reason",
                            models.CharField(max_length=100, null=True),
                        ),
                        (
                            "history_type",
                            models.CharField(
                                choices=[
                                    ("+", "Created"),
                                    ("~", "Changed"),
                                    ("-", "Deleted"),
                                ],
                                max_length=1,
                            ),
                        ),
                        (
                            "history_user",
                            models.ForeignKey(
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "historical cycle",
                        "verbose_name_plural": "historical cycles",
                        "ordering": ("-history_date", "-history_id"),
                        "get_latest_by": ("history_date", "history_id"),
                    },
                    bases=(simple_history.models.HistoricalChanges, models.Model),
                ),
                migrations.CreateModel(
                    name="HistoricalCycle_silos",
                    fields=[
                        (
                            "id",
                            models.BigIntegerField(
                                auto_created=True,
                                blank=True,
                                db_index=True,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "m2m_history_id",
                            models.AutoField(primary_key=True, serialize=False),
                        ),
                        (
                            "cycle",
                            models.ForeignKey(
                                blank=True,
                                db_constraint=False,
                                db_tablespace="",
                                null=True,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                to="cycles.cycle",
                            ),
                        ),
                        (
                            "history",
                            models.ForeignKey(
                                db_constraint=False,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                to="cycles.historicalcycle",
                            ),
                        ),
                        (
                            "silo",
                            models.ForeignKey(
                                blank=True,
                                db_constraint=False,
                                db_tablespace="",
                                null=True,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                to="metrics.silo",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "HistoricalCycle_silos",
                    },
                    bases=(simple_history.models.HistoricalChanges, models.Model),
                ),
                migrations.AddConstraint(
                    model_name="cycle",
                    constraint=models.CheckConstraint(
                        condition=models.Q(("start_date__lt", models.F("end_date"))),
                        name="cycle_dates_in_order",
                        violation_error_message="The cycle must end after it starts.",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="cycle",
                    constraint=models.CheckConstraint(
                        condition=models.Q(("budget__gte", 0)),
                        name="cycle_budget_not_negative",
                    ),
                ),
            ],
            database_operations=[],
        ),
    ]
