"""The cycle moves down to its own app, ``cycles``, keeping every row.

Goals and the conflict register belong to a cycle and used to name this app in strings
and raw SQL to reach it. Now the cycle (``cycles.Cycle``, with its history and
participating silos) sits below them; this app keeps the workflow on top of it.

The database keeps the same rows and ids: the tables are renamed, the through tables'
``planningcycle_id`` columns become ``cycle_id``, the content types (and so the
permissions granted to groups and the admin log) move with the model, and the budget
trigger's function reads the renamed table.
"""

from django.db import migrations, models
import django.db.models.deletion

RENAMES = [
    ("planning_planningcycle", "cycles_cycle"),
    ("planning_planningcycle_silos", "cycles_cycle_silos"),
    ("planning_historicalplanningcycle", "cycles_historicalcycle"),
    ("planning_historicalplanningcycle_silos", "cycles_historicalcycle_silos"),
]
COLUMNS = ["cycles_cycle_silos", "cycles_historicalcycle_silos"]

FORWARD_SQL = [f"ALTER TABLE {old} RENAME TO {new}" for old, new in RENAMES] + [
    f"ALTER TABLE {table} RENAME COLUMN planningcycle_id TO cycle_id" for table in COLUMNS
]
BACKWARD_SQL = [
    f"ALTER TABLE {table} RENAME COLUMN cycle_id TO planningcycle_id" for table in COLUMNS
] + [f"ALTER TABLE {new} RENAME TO {old}" for old, new in reversed(RENAMES)]

#: (old model, new model, old verbose name, new verbose name) of the content types.
CONTENT_TYPES = [
    ("planningcycle", "cycle", "planning cycle", "cycle"),
    ("historicalplanningcycle", "historicalcycle", "historical planning cycle", "historical cycle"),
    (
        "historicalplanningcycle_silos",
        "historicalcycle_silos",
        "HistoricalPlanningCycle_silos",
        "HistoricalCycle_silos",
    ),
]

# The function of migration 0004, reading the cycle's table under its new name.
FUNCTION = """
CREATE OR REPLACE FUNCTION planning_funding_within_budget() RETURNS trigger AS $$
DECLARE
    v_cycle bigint;
    v_budget numeric;
    v_total numeric;
BEGIN
    IF TG_TABLE_NAME = '{cycle_table}' THEN
        v_cycle := NEW.id;
    ELSIF TG_TABLE_NAME = 'planning_priority' THEN
        v_cycle := NEW.cycle_id;
    ELSE
        SELECT p.cycle_id INTO v_cycle FROM planning_priority p WHERE p.id = NEW.priority_id;
    END IF;
    IF v_cycle IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT c.budget INTO v_budget FROM {cycle_table} c WHERE c.id = v_cycle FOR UPDATE;
    IF v_budget IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT COALESCE(SUM(a.amount), 0) INTO v_total
    FROM planning_fundingallocation a
    JOIN planning_priority p ON p.id = a.priority_id
    WHERE p.cycle_id = v_cycle;
    IF v_total > v_budget THEN
        RAISE EXCEPTION 'The funding of cycle % (%) exceeds its budget (%).', v_cycle, v_total, v_budget
            USING ERRCODE = 'check_violation', CONSTRAINT = 'funding_within_budget';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""


def function_reading(table):
    def step(apps, schema_editor):
        # SQLite (the laptop default) has no trigger: the application checks alone.
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(FUNCTION.format(cycle_table=table), params=None)

    return step


def move_content_types(forward):
    def step(apps, schema_editor):
        ContentType = apps.get_model("contenttypes", "ContentType")
        Permission = apps.get_model("auth", "Permission")
        for old_model, new_model, old_name, new_name in CONTENT_TYPES:
            source = ("planning", old_model) if forward else ("cycles", new_model)
            target = ("cycles", new_model) if forward else ("planning", old_model)
            names = (old_name, new_name) if forward else (new_name, old_name)
            moving = ContentType.objects.filter(
                app_label=source[0], model=source[1]
            ).first()
            if moving is None:
                continue  # a fresh database: post_migrate creates the new ones
            # Created meanwhile (post_migrate of a partial run): the moving row wins,
            # as groups, users and the admin log point at it.
            ContentType.objects.filter(app_label=target[0], model=target[1]).delete()
            moving.app_label, moving.model = target
            moving.save(update_fields=["app_label", "model"])
            for permission in Permission.objects.filter(content_type=moving):
                action = permission.codename.split("_", 1)[0]
                permission.codename = f"{action}_{target[1]}"
                permission.name = permission.name.replace(names[0], names[1])
                permission.save(update_fields=["codename", "name"])

    return step


def cycle_fk(**options):
    return models.ForeignKey(to="cycles.cycle", **options)


HISTORICAL = dict(
    blank=True,
    db_constraint=False,
    null=True,
    on_delete=django.db.models.deletion.DO_NOTHING,
    related_name="+",
)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("cycles", "0001_initial"),
        ("goals", "0005_cycle_moves_down"),
        ("planning", "0005_bounds"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="priority",
                    name="cycle",
                    field=cycle_fk(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="priorities",
                    ),
                ),
                migrations.AlterField(
                    model_name="signoff",
                    name="cycle",
                    field=cycle_fk(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="sign_offs",
                    ),
                ),
                migrations.AlterField(
                    model_name="readinessanswer",
                    name="cycle",
                    field=cycle_fk(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="readiness_answers",
                    ),
                ),
                migrations.AlterField(
                    model_name="historicalpriority",
                    name="cycle",
                    field=cycle_fk(**HISTORICAL),
                ),
                migrations.AlterField(
                    model_name="historicalsignoff",
                    name="cycle",
                    field=cycle_fk(**HISTORICAL),
                ),
                migrations.AlterField(
                    model_name="historicalreadinessanswer",
                    name="cycle",
                    field=cycle_fk(**HISTORICAL),
                ),
                migrations.DeleteModel(name="HistoricalPlanningCycle_silos"),
                migrations.DeleteModel(name="HistoricalPlanningCycle"),
                migrations.DeleteModel(name="PlanningCycle"),
            ],
            database_operations=[migrations.RunSQL(FORWARD_SQL, BACKWARD_SQL)],
        ),
        migrations.RunPython(move_content_types(True), move_content_types(False)),
        migrations.RunPython(
            function_reading("cycles_cycle"), function_reading("planning_planningcycle")
        ),
    ]
