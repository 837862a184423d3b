"""The cycle's move down to its own app keeps every row of an existing deployment.

The database is taken back to the last state before the move (the cycle still in the
workflow app's tables), filled through the models of that state, and migrated forward
again: the rows, ids, the m2m rows, history, permissions of the role groups and the
budget trigger must all come through.
"""

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("planning", "0005_bounds"), ("goals", "0004_bounds"), ("cycles", None)]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    if targets is None:
        targets = executor.loader.graph.leaf_nodes()
    executor.migrate(targets)
    return executor.loader.project_state(
        [target for target in targets if target[1] is not None]
    ).apps


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_existing_database_keeps_its_cycles_through_the_move():
    try:
        check_the_move()
    finally:
        migrate(None)  # the other tests need the current schema, whatever happened


def check_the_move():
    old = migrate(BEFORE)
    Silo = old.get_model("metrics", "Silo")
    OldCycle = old.get_model("planning", "PlanningCycle")
    Priority = old.get_model("planning", "Priority")
    Allocation = old.get_model("planning", "FundingAllocation")
    Permission = old.get_model("auth", "Permission")
    Group = old.get_model("auth", "Group")
    sales = Silo.objects.create(slug="sales", name="Sales", position=1)
    cycle = OldCycle.objects.create(
        name="FY2026",
        start_date="2026-01-01",
        end_date="2026-12-31",
        phase="aligning",
        budget=Decimal("1000"),
    )
    cycle.silos.add(sales)
    priority = Priority.objects.create(
        cycle=cycle, title="Retain", rank=1, accountable_silo=sales
    )
    Allocation.objects.create(priority=priority, silo=sales, amount=Decimal("800"))
    managers = Group.objects.get(name="Silo managers")
    assert managers.permissions.filter(codename="view_planningcycle").exists()
    view_id = Permission.objects.get(codename="view_planningcycle").pk

    migrate(None)

    from cycles.models import Cycle
    from planning.models import FundingAllocation

    moved = Cycle.objects.get()
    assert (moved.pk, moved.name, moved.phase, moved.budget) == (
        cycle.pk,
        "FY2026",
        "aligning",
        Decimal("1000.00"),
    )
    assert list(moved.silos.values_list("slug", flat=True)) == ["sales"]
    assert FundingAllocation.objects.get().priority.cycle == moved
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.id, p.codename, p.name, t.app_label, t.model FROM auth_permission p"
            " JOIN django_content_type t ON t.id = p.content_type_id"
            " WHERE p.codename = 'view_cycle'"
        )
        assert cursor.fetchall() == [
            (view_id, "view_cycle", "Can view cycle", "cycles", "cycle")
        ]
    from django.contrib.auth.models import Group as CurrentGroup

    assert (
        CurrentGroup.objects.get(name="Silo managers")
        .permissions.filter(codename="view_cycle", content_type__app_label="cycles")
        .exists()
    )
    # The budget trigger reads the renamed table: funding above the budget is refused.
    with (
        pytest.raises(IntegrityError, match="exceeds its budget"),
        transaction.atomic(),
    ):
        Cycle.objects.filter(pk=moved.pk).update(budget=Decimal("10"))
    assert Cycle.objects.get().budget == Decimal("1000.00")
