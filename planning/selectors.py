"""Reads of planning cycles: with their totals computed in the same query, and what
the cycle page shows each role."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import EllipsisType
from typing import TYPE_CHECKING, Any, TypedDict

from django.conf import settings
from django.db.models import (
    Case,
    DecimalField,
    FloatField,
    Max,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from conflicts import evidence
from conflicts.models import Severity
from conflicts.models import Status as ConflictStatus
from conflicts.selectors import conflict_list, severity_rank
from core.roles import User
from cycles.models import Cycle, Phase
from goals.models import Contribution, Goal, Guardrail, SharedGoal, SharedGoalSnapshot
from goals.selectors import (
    goal_attainment,
    goal_list_with_actuals,
    shared_goals_with_progress,
    with_pace,
)
from metrics.models import Silo
from metrics.selectors import silo_ids_managed_by, silo_ids_of_part
from notifications.digest import Section
from planning import charts, readiness
from planning.models import (
    FORWARD,
    Answer,
    FundingAllocation,
    Priority,
    ReadinessAnswer,
    Responsibility,
    SignOff,
)

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class CycleTotals(TypedDict):
    """What :func:`cycle_list` annotates."""

    allocated: Decimal
    readiness_score: float


def cycle_list() -> QuerySet[WithAnnotations[Cycle, CycleTotals]]:
    """Return cycles with ``allocated`` (funding total) and ``readiness_score``
    annotated, and their priorities, RACI, funding and sign-offs prefetched."""
    allocated = (
        FundingAllocation.objects.filter(priority__cycle=OuterRef("pk"))
        .order_by()
        .values("priority__cycle")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    points = (
        ReadinessAnswer.objects.filter(cycle=OuterRef("pk"))
        .order_by()
        .values("cycle")
        .annotate(
            total=Sum(
                Case(
                    When(answer="yes", then=Value(1.0)),
                    When(answer="partly", then=Value(0.5)),
                    default=Value(0.0),
                    output_field=FloatField(),
                )
            )
        )
        .values("total")
    )
    return Cycle.objects.annotate(
        allocated=Coalesce(
            Subquery(
                allocated, output_field=DecimalField(max_digits=16, decimal_places=2)
            ),
            Value(0, output_field=DecimalField(max_digits=16, decimal_places=2)),
        ),
        readiness_score=Coalesce(
            Subquery(points, output_field=FloatField()), Value(0.0)
        ),
    ).prefetch_related(
        "silos",
        Prefetch(
            "priorities",
            queryset=Priority.objects.select_related(
                "accountable_silo"
            ).prefetch_related("responsibilities__silo", "allocations__silo"),
        ),
        Prefetch("sign_offs", queryset=SignOff.objects.select_related("silo", "user")),
    )


def readiness_summary(cycle: Cycle) -> dict[str, Any]:
    """Return every statement with the cycle's answer (None: unanswered) and the score."""
    stored = {
        answer.number: answer
        for answer in cycle.readiness_answers.select_related("answered_by")
    }
    rows = []
    for number, statement in enumerate(readiness.STATEMENTS, start=1):
        answer = stored.get(number)
        rows.append(
            {
                "number": number,
                "statement": statement,
                "answer": answer.answer if answer else None,
                "note": answer.note if answer else "",
                "answered_by": answer.answered_by.get_username()
                if answer and answer.answered_by
                else None,
            }
        )
    answers = {number: answer.answer for number, answer in stored.items()}
    return {
        "score": readiness.score(answers),
        "out_of": len(readiness.STATEMENTS),
        "answers": rows,
    }


#: Days of shared-goal snapshots the cycle page's trends show.
TREND_DAYS = 120


def cycle_page(
    *, cycle: WithAnnotations[Cycle, CycleTotals], user: User
) -> dict[str, Any]:
    """Return what the cycle page shows ``user``: the CCO team everything (the commit
    gate included), a silo manager their own silos' part."""
    mine = silo_ids_of_part(user)
    cco = mine is None

    participants = list(cycle.silos.all())
    signable = silo_ids_managed_by(user)
    signed = {sign_off.silo_id: sign_off for sign_off in cycle.sign_offs.all()}
    changed = plan_changed_at(cycle)
    sign_off_rows = [
        {
            "silo": silo,
            "sign_off": signed.get(silo.pk),
            "current": silo.pk in signed
            and (changed is None or signed[silo.pk].signed_at >= changed),
            "can_sign": silo.pk in signable,
        }
        for silo in participants
        if mine is None or silo.pk in mine
    ]

    goals = goal_list_with_actuals(
        Goal.objects.filter(cycle=cycle).order_by("kpi__silo__position", "kpi__key")
    )
    if mine is not None:
        goals = goals.filter(kpi__silo_id__in=mine)
    goal_rows = [(goal, goal_attainment(goal)) for goal in with_pace(goals)]

    kpis = Goal.objects.filter(cycle=cycle).values("kpi_id")
    conflicts = (
        conflict_list()
        .filter(
            Q(leader_kpi__in=kpis) | Q(affected_kpi__in=kpis),
            stale=False,
            status__in=[ConflictStatus.OPEN, ConflictStatus.ACKNOWLEDGED],
        )
        .annotate(rank=severity_rank())
        .order_by("rank", "id")
    )
    if not cco:
        conflicts = conflicts.filter(
            Q(leader_silo_id__in=mine) | Q(affected_silo_id__in=mine)
        )
    conflict_rows = [(c, evidence.describe(c)) for c in conflicts]

    priorities = list(cycle.priorities.all())
    funding_rows = []
    for priority in priorities:
        allocations = [
            a for a in priority.allocations.all() if mine is None or a.silo_id in mine
        ]
        responsibilities = [
            r
            for r in priority.responsibilities.all()
            if mine is None or r.silo_id in mine
        ]
        funding_rows.append(
            {
                "priority": priority,
                "allocations": allocations,
                "responsibilities": responsibilities,
                "total": sum((a.amount for a in allocations), Decimal("0")),
            }
        )

    shared = list(
        shared_goals_with_progress()
        .filter(cycle=cycle)
        .prefetch_related(
            Prefetch("guardrails", queryset=Guardrail.objects.select_related("kpi")),
            "contributions__goal__kpi__silo",
        )
        .order_by("name")
    )
    history: dict[int, list[tuple[str, float | None]]] = {}
    since = timezone.localdate() - dt.timedelta(days=TREND_DAYS)
    for shared_goal_id, day, progress in (
        SharedGoalSnapshot.objects.filter(
            shared_goal__in=[s.pk for s in shared], day__gte=since
        )
        .order_by("shared_goal_id", "day")
        .values_list("shared_goal_id", "day", "progress")
    ):
        history.setdefault(shared_goal_id, []).append((day.isoformat(), progress))
    shared_rows = [
        {
            "shared_goal": s,
            "trend": charts.progress_trend(history.get(s.pk, [])),
            "silos": sorted({c.goal.kpi.silo.name for c in s.contributions.all()}),
        }
        for s in shared
        if mine is None
        or any(c.goal.kpi.silo_id in mine for c in s.contributions.all())
    ]

    # The commit gate is the CCO team's view; a manager sees their own part.
    blockers = (
        commit_blockers(cycle, changed=changed)
        if cco and cycle.phase == Phase.ALIGNING
        else []
    )
    next_phase = FORWARD.get(cycle.phase)
    return dict(
        cycle=cycle,
        cco=cco,
        my_silos=Silo.objects.filter(pk__in=mine or ()).order_by("position")
        if not cco
        else [],
        sign_off_rows=sign_off_rows,
        signed_count=sum(1 for row in sign_off_rows if row["current"]),
        goal_rows=goal_rows,
        conflict_rows=conflict_rows,
        high_conflicts=sum(1 for c, _ in conflict_rows if c.severity == Severity.HIGH),
        funding_rows=funding_rows,
        budget_left=cycle.budget - cycle.allocated,
        readiness=readiness_summary(cycle),
        answer_choices=Answer.choices,
        shared_rows=shared_rows,
        blockers=blockers,
        next_phase=next_phase,
        next_phase_label=Phase(next_phase).label if next_phase else "",
        can_reopen=cycle.phase == Phase.COMMITTED,
        phases=Phase.choices,
        statements=readiness.STATEMENTS,
    )


# --- The commit gate ------------------------------------------------------------------


@dataclass(frozen=True)
class Blocker:
    """One reason a cycle cannot commit yet, said so that someone can act on it."""

    kind: str  # "sign_off", "conflict" or "participants"
    message: str
    silo: str | None = None
    conflict: int | None = None


def commit_blockers(
    cycle: Cycle, *, changed: datetime | EllipsisType | None = ...
) -> list[Blocker]:
    """Return what stops ``cycle`` from committing (empty: it may commit).

    Every participating silo must have signed off, and no high-severity conflict that
    is still open or acknowledged (not stale) may involve a KPI with a goal of this
    cycle, on either side. An accepted trade-off (with its note) no longer blocks.
    ``changed`` is :func:`plan_changed_at` when the caller has it already (... : not
    known yet; None: the cycle has no plan).
    """
    blockers: list[Blocker] = []
    participants = list(cycle.silos.order_by("position", "name"))
    if not participants:
        blockers.append(
            Blocker(
                kind="participants",
                message="The cycle has no participating silos: add them first.",
            )
        )
    signed = dict(cycle.sign_offs.values_list("silo_id", "signed_at"))
    if changed is ...:
        changed = plan_changed_at(cycle)
    for silo in participants:
        if silo.pk not in signed:
            blockers.append(
                Blocker(
                    kind="sign_off",
                    silo=silo.slug,
                    message=f"{silo.name} has not signed off.",
                )
            )
        elif changed is not None and signed[silo.pk] < changed:
            blockers.append(
                Blocker(
                    kind="sign_off",
                    silo=silo.slug,
                    message=f"{silo.name} signed off before the plan last changed "
                    f"({changed:%Y-%m-%d %H:%M} UTC) and must sign off again.",
                )
            )
    kpis = Goal.objects.filter(cycle=cycle).values("kpi_id")
    conflicts = (
        conflict_list()
        .filter(
            Q(leader_kpi__in=kpis) | Q(affected_kpi__in=kpis),
            severity=Severity.HIGH,
            stale=False,
            status__in=[ConflictStatus.OPEN, ConflictStatus.ACKNOWLEDGED],
        )
        .order_by("id")
    )
    for conflict in conflicts:
        blockers.append(
            Blocker(
                kind="conflict",
                conflict=conflict.pk,
                message=(
                    f"High-severity conflict {conflict.pk} is {conflict.status}: "
                    f"{conflict.leader_kpi.key} hurts {conflict.affected_kpi.key}. "
                    "Resolve it, dismiss it, or accept it as a trade-off with a note."
                ),
            )
        )
    return blockers


def plan_changed_at(cycle: Cycle) -> datetime | None:
    """Return when the cycle's plan last changed: any goal, shared goal, contribution,
    guardrail, priority, RACI role or funding allocation of the cycle created, changed
    or deleted (from their history, which keeps deletions too). None: no plan yet.
    """
    shared = SharedGoal.history.model.objects.filter(cycle_id=cycle.pk).values("id")
    ranked = Priority.history.model.objects.filter(cycle_id=cycle.pk).values("id")
    parts = [
        Goal.history.model.objects.filter(cycle_id=cycle.pk),
        SharedGoal.history.model.objects.filter(cycle_id=cycle.pk),
        Contribution.history.model.objects.filter(shared_goal_id__in=shared),
        Guardrail.history.model.objects.filter(shared_goal_id__in=shared),
        Priority.history.model.objects.filter(cycle_id=cycle.pk),
        Responsibility.history.model.objects.filter(priority_id__in=ranked),
        FundingAllocation.history.model.objects.filter(priority_id__in=ranked),
    ]
    latest = [part.aggregate(latest=Max("history_date"))["latest"] for part in parts]
    return max((when for when in latest if when is not None), default=None)


def sign_off_is_current(cycle: Cycle, signed_at: datetime) -> bool:
    """Return whether a sign-off given at ``signed_at`` agreed to the current plan."""
    changed = plan_changed_at(cycle)
    return changed is None or signed_at >= changed


def digest_cycles_waiting(now: datetime) -> Section:
    """The weekly digest's section: aligning cycles with silos whose sign-off is
    missing or was voided by a later plan change."""
    lines = []
    for cycle in cycle_list().filter(phase=Phase.ALIGNING).order_by("start_date", "pk"):
        changed = plan_changed_at(cycle)
        signed = {
            s.silo_id
            for s in cycle.sign_offs.all()
            if changed is None or s.signed_at >= changed
        }
        waiting = [silo.name for silo in cycle.silos.all() if silo.pk not in signed]
        if waiting:
            lines.append(f"{cycle.name}: waiting for {', '.join(waiting)}")
    return Section(
        heading="Cycles waiting for sign-offs",
        count=len(lines),
        lines=lines,
        url=settings.SITE_URL + reverse("planning:cycles"),
    )
