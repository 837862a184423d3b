"""Reads of planning cycles: with their totals computed in the same query, and what
the cycle page shows each role."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import EllipsisType
from typing import TYPE_CHECKING, Any, TypedDict

from django.conf import settings
from django.db.models import (
    Case,
    Count,
    DecimalField,
    F,
    FloatField,
    Max,
    Model,
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
from core.charts import Axis, Chart, Series
from core.roles import SILO_MANAGERS, Account, User
from cycles.models import MANAGER_PHASES, Cycle, Phase
from goals.models import Contribution, Goal, Guardrail, SharedGoal, SharedGoalSnapshot
from goals.selectors import (
    goal_attainment,
    goal_list_with_actuals,
    goals_writable_by,
    shared_goals_with_progress,
    with_pace,
)
from metrics.models import KPI, Silo
from metrics.selectors import kpis_writable_by, silo_ids_managed_by, silo_ids_of_part
from notifications.digest import Section
from planning import readiness
from planning.models import (
    FORWARD,
    Answer,
    FundingAllocation,
    Priority,
    ReadinessAnswer,
    Responsibility,
    SignOff,
    allocated_total,
    money,
)
from planning.projections import cycle_knock_ons, knock_on_message

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
    sign_off_count = signoff_counts(
        [cycle], changed={cycle.pk: changed} if changed else {}
    )[cycle.pk]
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
            "trend": progress_chart(s, history.get(s.pk, [])),
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
    knock_ons = [
        (knock_on, knock_on_message(knock_on))
        for knock_on in cycle_knock_ons(cycle)
        if mine is None
        or {knock_on.leader.kpi.silo_id, knock_on.affected.kpi.silo_id} & mine
    ]
    return dict(
        cycle=cycle,
        knock_ons=knock_ons,
        margin=settings.PLANNING_CONTRADICTION_MARGIN,
        cco=cco,
        my_silos=Silo.objects.filter(pk__in=mine or ()).order_by("position")
        if not cco
        else [],
        sign_off_rows=sign_off_rows,
        sign_off_count=sign_off_count,
        can_edit_plan=cco and not cycle.is_locked,
        can_enter_goals=(not cycle.is_locked if cco else cycle.phase in MANAGER_PHASES),
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


def progress_chart(
    shared_goal: SharedGoal, days: list[tuple[str, float | None]]
) -> Chart | None:
    """Return the chart of a shared goal's progress over its snapshot days (ISO day,
    progress in 0..1, oldest first); None under two days with progress."""
    known = [(day, value) for day, value in days if value is not None]
    if len(known) < 2:
        return None
    return Chart(
        id=f"trend-{shared_goal.pk}",
        title=f"{shared_goal.name}: progress by day",
        summary=f"Progress of {shared_goal.name} from {known[0][0]} "
        f"({known[0][1]:.0%}) to {known[-1][0]} ({known[-1][1]:.0%}).",
        labels=[day for day, _ in known],
        series=[Series(name="Progress", values=[value for _, value in known])],
        axes=[Axis(id="y", title="Progress", percent=True)],
    )


# --- The commit gate ------------------------------------------------------------------


@dataclass(frozen=True)
class Blocker:
    """One reason a cycle cannot commit yet, said so that someone can act on it:
    ``action`` says who can act, ``url`` where (a path of this site)."""

    kind: str  # "sign_off", "conflict", "budget" or "participants"
    message: str
    silo: str | None = None
    conflict: int | None = None
    action: str = ""
    url: str = ""


def _possessive(name: str) -> str:
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def _names(users: list[Any]) -> str:
    return ", ".join(user.get_username() for user in users)


def commit_blockers(
    cycle: Cycle, *, changed: datetime | EllipsisType | None = ...
) -> list[Blocker]:
    """Return what stops ``cycle`` from committing (empty: it may commit).

    Every participating silo must have signed off, the funding must fit the budget,
    and no high-severity conflict that is still open or acknowledged (not stale) may
    involve a KPI with a goal of this cycle, on either side. An accepted trade-off
    (with its note) no longer blocks. ``changed`` is :func:`plan_changed_at` when the
    caller has it already (... : not known yet; None: the cycle has no plan).
    """
    cycle_url = reverse("planning:cycle", args=[cycle.pk])
    blockers: list[Blocker] = []
    participants = list(
        cycle.silos.order_by("position", "name").prefetch_related(
            Prefetch("managers", queryset=signing_managers(), to_attr="signers")
        )
    )
    if not participants:
        blockers.append(
            Blocker(
                kind="participants",
                message="The cycle has no participating silos: add them first.",
                action="The CCO team adds them in the admin.",
                url=reverse("admin:cycles_cycle_change", args=[cycle.pk]),
            )
        )
    signed = dict(cycle.sign_offs.values_list("silo_id", "signed_at"))
    if changed is ...:
        changed = plan_changed_at(cycle)
    for silo in participants:
        if silo.pk not in signed:
            message = f"{silo.name} has not signed off."
        elif changed is not None and signed[silo.pk] < changed:
            message = (
                f"{silo.name} signed off before the plan last changed "
                f"({changed:%Y-%m-%d %H:%M} UTC) and must sign off again."
            )
        else:
            continue
        if silo.signers:
            action = (
                f"{_possessive(silo.name)} managers "
                f"({_names(silo.signers)}) can sign off here."
            )
            url = f"{cycle_url}#sign-offs"
        else:
            action = f"{silo.name} has no manager: assign one in the admin."
            url = reverse("admin:metrics_silo_change", args=[silo.pk])
        blockers.append(
            Blocker(
                kind="sign_off", silo=silo.slug, message=message, action=action, url=url
            )
        )
    allocated = allocated_total(cycle)
    if allocated > cycle.budget:
        # The budget rule holds every write; only data from outside it (a restore, a
        # hand-edited row) gets here, and the commit must not bless it.
        blockers.append(
            Blocker(
                kind="budget",
                message=f"The funding ({money(allocated, cycle.currency)}) is over the "
                f"budget ({money(cycle.budget, cycle.currency)}).",
                action="The CCO team reduces the allocations in the funding section.",
                url=f"{cycle_url}#funding",
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
                action="The CCO team does it on the conflict's page.",
                url=reverse("conflicts:detail", args=[conflict.pk]),
            )
        )
    return blockers


def signing_managers() -> QuerySet[Account]:
    """Return the users who may sign for the silos they are listed on: active, in the
    Silo managers group (being listed on a silo is not enough), by username."""
    return Account.objects.filter(is_active=True, groups__name=SILO_MANAGERS).order_by(
        "username"
    )


def plan_changed_at(cycle: Cycle) -> datetime | None:
    """Return when the cycle's plan last changed: any goal, shared goal, contribution,
    guardrail, priority, RACI role or funding allocation of the cycle created, changed
    or deleted (from their history, which keeps deletions too). None: no plan yet.
    """
    return plan_changed_at_by_cycle([cycle.pk]).get(cycle.pk)


def plan_changed_at_by_cycle(cycle_ids: Iterable[int]) -> dict[int, datetime]:
    """Return :func:`plan_changed_at` of each of ``cycle_ids`` that has a plan, in a
    constant number of queries (nine) whatever the number of cycles."""
    ids = list(cycle_ids)
    latest: dict[int, datetime] = {}

    def take(cycle_id: int | None, when: datetime | None) -> None:
        if cycle_id is None or when is None:
            return
        if cycle_id not in latest or when > latest[cycle_id]:
            latest[cycle_id] = when

    def latest_by(model: type[Model], key: str, values: Iterable[int]) -> Any:
        return (
            model.history.model.objects.filter(**{f"{key}__in": values})  # type: ignore[attr-defined]  # simple-history adds history
            .order_by()
            .values(key)
            .annotate(latest=Max("history_date"))
            .values_list(key, "latest")
        )

    for model in (Goal, SharedGoal, Priority):
        for cycle_id, when in latest_by(model, "cycle_id", ids):
            take(cycle_id, when)
    # A child reaches its cycle through every cycle its parent's history names.
    for parent, children, key in (
        (SharedGoal, (Contribution, Guardrail), "shared_goal_id"),
        (Priority, (Responsibility, FundingAllocation), "priority_id"),
    ):
        cycles_of: dict[int, set[int]] = {}
        for parent_id, cycle_id in (
            parent.history.model.objects.filter(cycle_id__in=ids)
            .order_by()
            .values_list("id", "cycle_id")
            .distinct()
        ):
            cycles_of.setdefault(parent_id, set()).add(cycle_id)
        for child in children:
            for parent_id, when in latest_by(child, key, cycles_of):
                for cycle_id in cycles_of[parent_id]:
                    take(cycle_id, when)
    return latest


@dataclass(frozen=True)
class SignOffCount:
    """How many participating silos have signed off a cycle's current plan."""

    signed: int
    participants: int

    def __str__(self) -> str:
        return f"{self.signed} of {self.participants}"


def signoff_counts(
    cycles: Iterable[Cycle], *, changed: dict[int, datetime] | None = None
) -> dict[int, SignOffCount]:
    """Return each cycle's :class:`SignOffCount`: a sign-off counts when its silo still
    takes part and it was given after the plan last changed (a later change voids it).

    The one count of the cycle list, the cycle page, the API's commit check and the
    admin; eleven queries whatever the number of cycles (two when the caller passes
    :func:`plan_changed_at_by_cycle` of them as ``changed``).
    """
    ids = [cycle.pk for cycle in cycles]
    if changed is None:
        changed = plan_changed_at_by_cycle(ids)
    participants = dict(
        Cycle.objects.filter(pk__in=ids)
        .order_by()
        .annotate(total=Count("silos"))
        .values_list("pk", "total")
    )
    signed = Counter(
        cycle_id
        for cycle_id, signed_at in SignOff.objects.filter(
            cycle_id__in=ids, cycle__silos=F("silo")
        ).values_list("cycle_id", "signed_at")
        if cycle_id not in changed or signed_at >= changed[cycle_id]
    )
    return {
        cycle_id: SignOffCount(signed[cycle_id], participants.get(cycle_id, 0))
        for cycle_id in ids
    }


def signoffs_voided_by_change(cycle: Cycle) -> list[SignOff]:
    """Return the sign-offs a change of ``cycle``'s plan made now would void: those
    of participating silos given to the current plan, in the silos' order."""
    changed = plan_changed_at(cycle)
    sign_offs = SignOff.objects.filter(cycle=cycle, cycle__silos=F("silo"))
    if changed is not None:
        sign_offs = sign_offs.filter(signed_at__gte=changed)
    return list(
        sign_offs.select_related("silo", "user").order_by(
            "silo__position", "silo__name"
        )
    )


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


# --- What the plan's edit pages choose from and change ------------------------------


def participants_of(cycle: Cycle) -> QuerySet[Silo]:
    """Return the cycle's participating silos in value-chain order."""
    return cycle.silos.order_by("position", "name")


def priorities_of(cycle: Cycle) -> QuerySet[Priority]:
    """Return the cycle's priorities by rank."""
    return Priority.objects.filter(cycle=cycle).select_related(
        "cycle", "accountable_silo"
    )


def responsibilities_of(cycle: Cycle) -> QuerySet[Responsibility]:
    """Return the RACI roles on the cycle's priorities."""
    return Responsibility.objects.filter(priority__cycle=cycle).select_related(
        "priority__cycle", "silo"
    )


def allocations_of(cycle: Cycle) -> QuerySet[FundingAllocation]:
    """Return the funding allocations of the cycle's priorities."""
    return FundingAllocation.objects.filter(priority__cycle=cycle).select_related(
        "priority__cycle", "silo"
    )


def goals_editable_in(cycle: Cycle, user: User) -> QuerySet[Goal]:
    """Return the cycle's goals ``user`` may change (another silo's goal is not
    there: its page is "not found")."""
    return (
        goals_writable_by(user).filter(cycle=cycle).select_related("cycle", "kpi__silo")
    )


def goal_kpis_for(cycle: Cycle, user: User) -> QuerySet[KPI]:
    """Return the active KPIs of the cycle's participating silos that ``user`` may
    set goals on, by key."""
    return (
        kpis_writable_by(user)
        .filter(silo__cycles=cycle, is_active=True)
        .select_related("silo")
        .order_by("key")
    )


def cycle_list_rows() -> list[tuple[Cycle, SignOffCount]]:
    """Return what the cycle list shows: each cycle, newest first, with its totals and
    its :func:`signoff_counts`."""
    cycles = list(cycle_list().order_by("-start_date"))
    counts = signoff_counts(cycles)
    return [(cycle, counts[cycle.pk]) for cycle in cycles]


#: What a commit or a close does to the plan, said on the confirmation page.
PHASE_CONSEQUENCES = {
    Phase.COMMITTED: "Committing locks the plan: goals, shared goals, priorities, RACI "
    "roles and funding change only after the CCO team reopens the cycle with a reason.",
    Phase.CLOSED: "Closing ends the cycle for good: its plan stays locked and it "
    "cannot be reopened.",
}


def phase_confirmation(*, cycle: Cycle, phase: str) -> dict[str, Any]:
    """Return what the page confirming a commit or a close of ``cycle`` shows: what the
    move does, the sign-off count and, for a commit, what still blocks it."""
    return {
        "cycle": cycle,
        "phase": phase,
        "phase_label": Phase(phase).label,
        "consequence": PHASE_CONSEQUENCES[Phase(phase)],
        "sign_off_count": signoff_counts([cycle])[cycle.pk],
        "blockers": commit_blockers(cycle) if phase == Phase.COMMITTED else [],
        "movable": FORWARD.get(cycle.phase) == phase,
    }
