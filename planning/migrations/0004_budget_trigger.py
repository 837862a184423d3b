"""Hold "funding never exceeds the cycle's budget" in PostgreSQL itself.

The forms and the API check it first and say so with the numbers; this deferred
constraint trigger is the guarantee when two people allocate at the same time. It locks
the cycle's row, so concurrent transactions check one after the other, and it runs at
commit, so moving money between priorities in one transaction is fine.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION planning_funding_within_budget() RETURNS trigger AS $$
DECLARE
    v_cycle bigint;
    v_budget numeric;
    v_total numeric;
BEGIN
    IF TG_TABLE_NAME = 'planning_planningcycle' THEN
        v_cycle := NEW.id;
    ELSIF TG_TABLE_NAME = 'planning_priority' THEN
        v_cycle := NEW.cycle_id;
    ELSE
        SELECT p.cycle_id INTO v_cycle FROM planning_priority p WHERE p.id = NEW.priority_id;
    END IF;
    IF v_cycle IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT c.budget INTO v_budget FROM planning_planningcycle c WHERE c.id = v_cycle FOR UPDATE;
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

CREATE CONSTRAINT TRIGGER funding_within_budget
    AFTER INSERT OR UPDATE ON planning_fundingallocation
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    EXECUTE FUNCTION planning_funding_within_budget();
CREATE CONSTRAINT TRIGGER budget_covers_funding
    AFTER UPDATE OF budget ON planning_planningcycle
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    EXECUTE FUNCTION planning_funding_within_budget();
CREATE CONSTRAINT TRIGGER priority_cycle_covers_funding
    AFTER UPDATE OF cycle_id ON planning_priority
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    EXECUTE FUNCTION planning_funding_within_budget();
"""

DROP = """
DROP TRIGGER IF EXISTS funding_within_budget ON planning_fundingallocation;
DROP TRIGGER IF EXISTS budget_covers_funding ON planning_planningcycle;
DROP TRIGGER IF EXISTS priority_cycle_covers_funding ON planning_priority;
DROP FUNCTION IF EXISTS planning_funding_within_budget();
"""


def create(apps, schema_editor):
    # SQLite (the laptop default) relies on the application's checks alone.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("planning", "0003_readiness_and_budget")]

    operations = [migrations.RunPython(create, drop)]
