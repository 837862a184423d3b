"""Writes of silo goals and shared goals."""

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from core.roles import User, is_cco
from core.services import recorded_delete, set_history_user, validated_save
from cycles.models import MANAGER_PHASES, cycle_is_locked, cycles_lock, locked_message
from goals.models import Contribution, Goal, Guardrail, SharedGoal


def goal_save(*, user: User, goal: Goal | None = None, **fields: Any) -> Goal:
    """Create a silo goal, or update ``goal``, from ``fields`` (validated in full).

    Silo managers write goals while the cycle is proposing or aligning; the CCO team
    also in draft. A committed or closed cycle's goals are locked for everyone (the
    model refuses them).
    """
    _check_manager_phase(user, goal.cycle if goal is not None else None)
    if "cycle" in fields:
        _check_manager_phase(user, fields["cycle"])
    with transaction.atomic():
        # Hold the cycle's row as a commit does, so that no goal changes past the
        # commit gate while the cycle commits.
        cycles_lock(goal.cycle_id if goal is not None else None, fields.get("cycle"))
        return validated_save(instance=goal or Goal(), user=user, **fields)


def _check_manager_phase(user: User, cycle: Any) -> None:
    """Refuse a silo manager's goal write outside the proposing and aligning phases."""
    if cycle is None or is_cco(user) or cycle_is_locked(cycle):
        return  # the CCO team may; a locked cycle is refused by the model's own rule
    if cycle.phase not in MANAGER_PHASES:
        raise ValidationError(
            {
                "cycle": f"{cycle} is {cycle.phase}: silo managers enter their goals "
                "while the cycle is proposing or aligning."
            }
        )


def goal_delete(*, user: User, goal: Goal) -> None:
    """Delete ``goal`` unless its cycle's plan is locked (or the manager's phase
    rule refuses it)."""
    if cycle_is_locked(goal.cycle):
        raise ValidationError({"cycle": locked_message(goal.cycle, "goals")})
    _check_manager_phase(user, goal.cycle)
    recorded_delete(instance=goal, user=user)


def shared_goal_delete(*, user: User, shared_goal: SharedGoal) -> None:
    """Delete ``shared_goal`` unless its cycle's plan is locked."""
    if cycle_is_locked(shared_goal.cycle):
        raise ValidationError(
            {"cycle": locked_message(shared_goal.cycle, "shared goals")}
        )
    recorded_delete(instance=shared_goal, user=user)


def shared_goal_save(
    *,
    user: User,
    shared_goal: SharedGoal | None = None,
    contributions: Sequence[dict[str, Any]] | None = None,
    guardrails: Sequence[dict[str, Any]] | None = None,
    **fields: Any,
) -> SharedGoal:
    """Create or update a shared goal; ``contributions`` (goal, weight) and
    ``guardrails`` (kpi, baseline, tolerance, note), when given, replace the old ones.

    A shared goal needs contributions from goals of at least two different silos, all in
    its own cycle; otherwise ValidationError, and nothing is written.
    """
    with transaction.atomic():
        shared_goal = validated_save(
            instance=shared_goal or SharedGoal(), user=user, **fields
        )
        if contributions is None:
            foreign = shared_goal.contributions.exclude(
                goal__cycle=shared_goal.cycle_id
            )
            if foreign.exists():
                raise ValidationError(
                    {
                        "cycle": "The contributing goals belong to another cycle; "
                        "send the new cycle's contributions with it."
                    }
                )
        if contributions is not None:
            goals = [row["goal"] for row in contributions]
            if len({goal.kpi.silo_id for goal in goals}) < 2:
                raise ValidationError(
                    {
                        "contributions": "A shared goal needs contributions from goals "
                        "of at least two different silos."
                    }
                )
            if len({goal.pk for goal in goals}) != len(goals):
                raise ValidationError(
                    {"contributions": "Each goal may contribute only once."}
                )
            for goal in goals:
                if goal.cycle_id != shared_goal.cycle_id:
                    raise ValidationError(
                        {
                            "contributions": f"The goal {goal.pk} belongs to another "
                            "cycle than the shared goal."
                        }
                    )
            for contribution in shared_goal.contributions.all():
                set_history_user(contribution, user)
                contribution.delete()
            for row in contributions:
                validated_save(
                    instance=Contribution(shared_goal=shared_goal),
                    user=user,
                    goal=row["goal"],
                    weight=row.get("weight", 1.0),
                )
        if guardrails is not None:
            kpis = [row["kpi"].pk for row in guardrails]
            if len(set(kpis)) != len(kpis):
                raise ValidationError(
                    {"guardrails": "Each KPI may be a guardrail only once."}
                )
            for guardrail in shared_goal.guardrails.all():
                set_history_user(guardrail, user)
                guardrail.delete()
            for row in guardrails:
                validated_save(
                    instance=Guardrail(shared_goal=shared_goal),
                    user=user,
                    kpi=row["kpi"],
                    baseline=row["baseline"],
                    tolerance=row["tolerance"],
                    note=row.get("note", ""),
                )
    return shared_goal
