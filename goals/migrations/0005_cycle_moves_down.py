"""Goals and shared goals belong to ``cycles.Cycle`` (state only: the foreign key
columns and their constraints are unchanged, and follow the renamed table)."""

import django.db.models.deletion
from django.db import migrations, models

HISTORICAL = dict(
    blank=True,
    db_constraint=False,
    null=True,
    on_delete=django.db.models.deletion.DO_NOTHING,
    related_name="+",
)


class Migration(migrations.Migration):
    dependencies = [
        ("cycles", "0001_initial"),
        ("goals", "0004_bounds"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="goal",
                    name="cycle",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="goals",
                        to="cycles.cycle",
                    ),
                ),
                migrations.AlterField(
                    model_name="sharedgoal",
                    name="cycle",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="shared_goals",
                        to="cycles.cycle",
                    ),
                ),
                migrations.AlterField(
                    model_name="historicalgoal",
                    name="cycle",
                    field=models.ForeignKey(to="cycles.cycle", **HISTORICAL),
                ),
                migrations.AlterField(
                    model_name="historicalsharedgoal",
                    name="cycle",
                    field=models.ForeignKey(to="cycles.cycle", **HISTORICAL),
                ),
            ],
            database_operations=[],
        ),
    ]
