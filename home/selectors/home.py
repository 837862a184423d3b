"""Reads behind each role's home page (``/``): a section per role the user holds."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, F, Q, QuerySet, Window
from django.db.models.functions import RowNumber
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from conflicts.models import Conflict, DetectionRun, RunStatus, Severity
from conflicts.selectors import WORKING, conflict_list, severity_rank
from core import charts
from core.roles import Account, is_bi_reader, is_cco, is_silo_manager
from cycles.models import MANAGER_PHASES, Cycle, Phase
from goals import progress
from goals.models import Goal, SharedGoal, SharedGoalSnapshot
from goals.rollups import guardrails_with_current
from goals.selectors import (
    goal_list_with_actuals,
    shared_goals_with_progress,
    with_pace,
)
from home.selectors.kpi import featured_goal
from metrics.models import KPI, Measurement, Silo
from metrics.selectors import kpi_list_with_latest, silo_ids_managed_by
from planning.models import SignOff
from planning.selectors import commit_blockers, plan_changed_at_by_cycle

#: Values a KPI's sparkline draws, and snapshots a shared goal's trend draws.
SPARKLINE_POINTS = 12
#: New conflicts the CCO home lists by name (the count covers them all).
NEW_LISTED = 10


def home_page(
    *,
    user: Account,
    previous_visit: dt.datetime | None = None,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """Return the home of ``user``: one section for each role they hold (a silo
    manager's silos, the CCO team's company-wide view, a BI reader's sources), and
    the page's title. ``previous_visit``: when the user last opened it before now
    (home.services.home_visit_record), for what is new since. A constant number of queries for each section, whatever the
    number of KPIs, goals, conflicts or shared goals; the CCO section adds ten per
    cycle in aligning (its commit check) and a manager's section seven per aligning
    cycle of theirs (when its plan last changed)."""
    today = timezone.localdate() if today is None else today
    manager = manager_home(user, today) if is_silo_manager(user) else None
    cco = cco_home(previous_visit) if is_cco(user) else None
    reader = reader_home(user) if is_bi_reader(user) else None
    return {
        "title": home_title(user, manager, cco, reader),
        "manager": manager,
        "cco": cco,
        "reader": reader,
    }


def home_title(
    user: Account, manager: dict | None, cco: dict | None, reader: dict | None
) -> str:
    """Name the page for its one role ("Sales manager home"), else "Home"."""
    roles = [section for section in (manager, cco, reader) if section is not None]
    if len(roles) != 1:
        return "Home"
    if manager is not None:
        names = " and ".join(silo.name for silo in manager["silos"])
        return f"{names} manager home" if names else "Silo manager home"
    return "CCO team home" if cco is not None else "BI reader home"


# --- Silo manager -----------------------------------------------------------------


@dataclass(frozen=True)
class Need:
    """Something the current cycle needs from a silo manager, with where to do it."""

    kind: str  # "goals", "sign_off" or "sign_again"
    message: str
    url: str
    action: str


def manager_home(user: Account, today: dt.date) -> dict[str, Any]:
    """Return a silo manager's section: their silos' KPIs (latest value, the last
    twelve values, the status of the current cycle's goal), their goals of cycles not
    closed with pace and status, the conflicts under review where their silos lead or
    are hurt, and what the cycles in proposing or aligning need from them."""
    silo_ids = silo_ids_managed_by(user)
    silos = list(Silo.objects.filter(pk__in=silo_ids).order_by("position", "name"))
    kpis = list(
        kpi_list_with_latest(
            KPI.objects.filter(silo_id__in=silo_ids, is_active=True)
        ).order_by("silo__position", "key")
    )
    recent = recent_values([kpi.pk for kpi in kpis])
    goals = with_pace(
        goal_list_with_actuals(
            Goal.objects.filter(kpi__silo_id__in=silo_ids)
            .exclude(cycle__phase=Phase.CLOSED)
            .order_by(
                "-cycle__start_date", "-cycle_id", "kpi__silo__position", "kpi__key"
            )
        ),
        today=today,
    )
    goals_by_kpi: dict[int, list[Goal]] = defaultdict(list)
    for goal in goals:
        goals_by_kpi[goal.kpi_id].append(goal)
    kpi_rows = [
        {
            "kpi": kpi,
            "goal": featured_goal(goals_by_kpi[kpi.pk]),
            "sparkline": sparkline(kpi, recent.get(kpi.pk, [])),
        }
        for kpi in kpis
    ]
    conflicts = list(
        conflict_list()
        .filter(
            Q(leader_silo_id__in=silo_ids) | Q(affected_silo_id__in=silo_ids),
            status__in=WORKING,
            stale=False,
        )
        .annotate(rank=severity_rank())
        .order_by("rank", "-last_detected_at", "id")
    )
    return {
        "silos": silos,
        "kpi_rows": kpi_rows,
        "goals": goals,
        "conflicts": conflicts,
        "needs": manager_needs(silo_ids, kpis),
    }


def recent_values(kpi_ids: list[int]) -> dict[int, list[tuple[dt.date, float]]]:
    """Return each KPI's last SPARKLINE_POINTS values, oldest first (one query)."""
    if not kpi_ids:
        return {}
    rows = (
        Measurement.objects.filter(kpi_id__in=kpi_ids)
        .annotate(
            recency=Window(
                RowNumber(), partition_by=[F("kpi_id")], order_by=F("period").desc()
            )
        )
        .filter(recency__lte=SPARKLINE_POINTS)
        .order_by("kpi_id", "period")
        .values_list("kpi_id", "period", "value")
    )
    values: dict[int, list[tuple[dt.date, float]]] = defaultdict(list)
    for kpi_id, period, value in rows:
        values[kpi_id].append((period, value))
    return values


def sparkline(kpi: KPI, values: list[tuple[dt.date, float]]) -> charts.Chart | None:
    """Return a KPI's sparkline over ``values``; None under two values."""
    if len(values) < 2:
        return None
    (first_period, first), (last_period, last) = values[0], values[-1]
    return charts.Chart(
        id=f"spark-kpi-{kpi.pk}",
        title=f"{kpi.name}, last {len(values)} values",
        summary=(
            f"{kpi.name}, last {len(values)} values: from "
            f"{charts.format_value(first)} {kpi.unit} in {first_period:%b %Y} to "
            f"{charts.format_value(last)} {kpi.unit} in {last_period:%b %Y}"
        ),
        labels=[period.isoformat() for period, _ in values],
        series=[charts.Series(kpi.name, [v for _, v in values], unit=kpi.unit)],
        sparkline=True,
    )


def possessive(name: str) -> str:
    """Return "Sales'" for Sales, "Finance's" for Finance."""
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def manager_needs(silo_ids: set[int], kpis: list[KPI]) -> list[Need]:
    """Return what the cycles in proposing or aligning that the manager's silos take
    part in need from them: goals to enter on KPIs that have none, a sign-off to give
    (aligning), and a sign-off that a later change of the plan voided (aligning)."""
    cycles = list(
        Cycle.objects.filter(phase__in=MANAGER_PHASES, silos__in=silo_ids)
        .distinct()
        .order_by("start_date", "pk")
    )
    if not cycles:
        return []
    taking_part = defaultdict(set)
    for cycle_id, silo_id in Cycle.silos.through.objects.filter(
        cycle__in=cycles, silo_id__in=silo_ids
    ).values_list("cycle_id", "silo_id"):
        taking_part[cycle_id].add(silo_id)
    with_goal = set(
        Goal.objects.filter(
            cycle__in=cycles, kpi_id__in=[k.pk for k in kpis]
        ).values_list("cycle_id", "kpi_id")
    )
    aligning = [cycle for cycle in cycles if cycle.phase == Phase.ALIGNING]
    signed = {
        (sign_off.cycle_id, sign_off.silo_id): sign_off
        for sign_off in SignOff.objects.filter(
            cycle__in=aligning, silo_id__in=silo_ids
        ).select_related("user")
    }
    silos = {kpi.silo_id: kpi.silo for kpi in kpis} | {
        silo.pk: silo
        for silo in Silo.objects.filter(pk__in=silo_ids - {k.silo_id for k in kpis})
    }
    changed_at = plan_changed_at_by_cycle([cycle.pk for cycle in aligning])
    needs: list[Need] = []
    for cycle in cycles:
        page = reverse("planning:cycle", args=[cycle.pk])
        changed = changed_at.get(cycle.pk)
        for silo_id in sorted(taking_part[cycle.pk], key=lambda s: silos[s].position):
            silo = silos[silo_id]
            missing = [
                kpi.key
                for kpi in kpis
                if kpi.silo_id == silo_id and (cycle.pk, kpi.pk) not in with_goal
            ]
            if missing:
                needs.append(
                    Need(
                        kind="goals",
                        message=f"{cycle.name}: {len(missing)} of {possessive(silo.name)} KPIs "
                        f"{'has' if len(missing) == 1 else 'have'} no goal yet "
                        f"({', '.join(missing)}).",
                        url=f"{page}#goals",
                        action="Enter the goals",
                    )
                )
            if cycle.phase != Phase.ALIGNING:
                continue
            sign_off = signed.get((cycle.pk, silo_id))
            if sign_off is None:
                needs.append(
                    Need(
                        kind="sign_off",
                        message=f"{cycle.name}: {silo.name} has not signed off the "
                        "plan.",
                        url=f"{page}#sign-offs",
                        action="Sign off",
                    )
                )
            elif changed is not None and sign_off.signed_at < changed:
                needs.append(
                    Need(
                        kind="sign_again",
                        message=f"{cycle.name}: {possessive(silo.name)} sign-off of "
                        f"{sign_off.signed_at:%Y-%m-%d} (by "
                        f"{sign_off.user.get_username()}) was voided when the plan "
                        f"changed on {changed:%Y-%m-%d %H:%M} UTC.",
                        url=f"{page}#sign-offs",
                        action="Sign off again",
                    )
                )
    return needs


# --- CCO team ---------------------------------------------------------------------


def cco_home(previous_visit: dt.datetime | None) -> dict[str, Any]:
    """Return the CCO team's section: conflicts under review by severity and by silo
    pair, those first detected since ``previous_visit`` (all when None), cycles not
    closed with what blocks their commit, shared goals of open cycles with their
    progress trend and guardrails, and the company-wide drivers of the last
    successful detection run."""
    working = Conflict.objects.filter(status__in=WORKING, stale=False)
    by_severity = dict(
        working.order_by()
        .values_list("severity")
        .annotate(total=Count("pk"))
        .values_list("severity", "total")
    )
    new = conflict_list().filter(status__in=WORKING, stale=False)
    if previous_visit is not None:
        new = new.filter(first_detected_at__gt=previous_visit)
    new_conflicts = list(new.annotate(rank=severity_rank()).order_by("rank", "-id"))
    return {
        "severities": [
            (severity, label, by_severity.get(severity, 0))
            for severity, label in Severity.choices
        ],
        "open_total": sum(by_severity.values()),
        "pairs": conflict_pairs(working),
        "previous_visit": previous_visit,
        "new_count": len(new_conflicts),
        "new_conflicts": new_conflicts[:NEW_LISTED],
        "new_more": max(0, len(new_conflicts) - NEW_LISTED),
        "cycles": cycles_with_blockers(),
        "shared_goals": shared_goal_rows(),
        "last_run": DetectionRun.objects.filter(status=RunStatus.SUCCEEDED)
        .order_by("-id")
        .first(),
    }


def conflict_pairs(working: QuerySet[Conflict]) -> list[dict[str, Any]]:
    """Return the conflicts under review counted by (leading silo, affected silo),
    the pairs with the most high-severity ones first (one query)."""
    rows = (
        working.order_by()
        .values(
            "leader_silo_id",
            "affected_silo_id",
            leader=F("leader_silo__name"),
            affected=F("affected_silo__name"),
            leader_slug=F("leader_silo__slug"),
            affected_slug=F("affected_silo__slug"),
            leader_position=F("leader_silo__position"),
            affected_position=F("affected_silo__position"),
        )
        .annotate(
            total=Count("pk"),
            high=Count("pk", filter=Q(severity=Severity.HIGH)),
            medium=Count("pk", filter=Q(severity=Severity.MEDIUM)),
            low=Count("pk", filter=Q(severity=Severity.LOW)),
        )
    )
    return sorted(
        (dict(row) for row in rows),
        key=lambda row: (
            -row["high"],
            -row["medium"],
            -row["total"],
            row["leader_position"],
            row["affected_position"],
        ),
    )


#: The aligning cycles whose commit check the CCO home runs (the latest-starting ones):
#: a check costs a dozen queries, so the home's cost stays bounded however many cycles
#: are aligning at once (a company aligns one or two plans a year); the others link to
#: their page, which checks them.
CHECKED_CYCLES = 3


def cycles_with_blockers() -> list[dict[str, Any]]:
    """Return the cycles not closed, earliest first; the CHECKED_CYCLES latest aligning
    ones with the blockers of their commit check (planning.selectors.commit_blockers)."""
    cycles = list(
        Cycle.objects.exclude(phase=Phase.CLOSED).order_by("start_date", "pk")
    )
    aligning = [cycle for cycle in cycles if cycle.phase == Phase.ALIGNING]
    checked = {cycle.pk for cycle in aligning[-CHECKED_CYCLES:]}
    return [
        {
            "cycle": cycle,
            "checked": cycle.pk in checked,
            "blockers": commit_blockers(cycle) if cycle.pk in checked else [],
        }
        for cycle in cycles
    ]


def shared_goal_rows() -> list[dict[str, Any]]:
    """Return the shared goals of cycles not closed with their latest progress, a
    sparkline of their last SPARKLINE_POINTS snapshots, and their guardrails: the
    KPI's current value against baseline and tolerance, breached or not (three
    queries)."""
    shared = list(
        shared_goals_with_progress(
            SharedGoal.objects.exclude(cycle__phase=Phase.CLOSED).select_related(
                "cycle"
            )
        ).order_by("cycle__start_date", "name")
    )
    ids = [shared_goal.pk for shared_goal in shared]
    history: dict[int, list[tuple[dt.date, float]]] = defaultdict(list)
    if ids:
        for shared_goal_id, day, value in (
            SharedGoalSnapshot.objects.filter(shared_goal_id__in=ids)
            .exclude(progress=None)
            .annotate(
                recency=Window(
                    RowNumber(),
                    partition_by=[F("shared_goal_id")],
                    order_by=F("day").desc(),
                )
            )
            .filter(recency__lte=SPARKLINE_POINTS)
            .order_by("shared_goal_id", "day")
            .values_list("shared_goal_id", "day", "progress")
        ):
            if value is not None:  # excluded above; the type checker cannot tell
                history[shared_goal_id].append((day, value))
    guardrails: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for guardrail in guardrails_with_current(ids) if ids else []:
        worsened_by = progress.worsening(
            direction=guardrail.kpi.direction,
            baseline=guardrail.baseline,
            current=guardrail.current,
            band_low=guardrail.kpi.band_low,
            band_high=guardrail.kpi.band_high,
        )
        guard = progress.Guard(
            key=guardrail.pk, worsened_by=worsened_by, tolerance=guardrail.tolerance
        )
        guardrails[guardrail.shared_goal_id].append(
            {
                "guardrail": guardrail,
                "current": guardrail.current,
                "worsened_by": worsened_by,
                "breached": guard.breached,
            }
        )
    return [
        {
            "shared_goal": shared_goal,
            "trend": progress_sparkline(shared_goal, history[shared_goal.pk]),
            "guardrails": guardrails[shared_goal.pk],
        }
        for shared_goal in shared
    ]


def progress_sparkline(
    shared_goal: SharedGoal, days: list[tuple[dt.date, float]]
) -> charts.Chart | None:
    """Return a shared goal's progress over its snapshots; None under two."""
    if len(days) < 2:
        return None
    (first_day, first), (last_day, last) = days[0], days[-1]
    return charts.Chart(
        id=f"spark-shared-{shared_goal.pk}",
        title=f"{shared_goal.name}: progress by roll-up",
        summary=(
            f"{shared_goal.name}, progress over the last {len(days)} roll-ups: from "
            f"{first:.0%} on {first_day:%d %b %Y} to {last:.0%} on {last_day:%d %b %Y}"
        ),
        labels=[day.isoformat() for day, _ in days],
        series=[charts.Series("Progress", [value for _, value in days])],
        axes=[charts.Axis("y", "Progress", percent=True)],
        sparkline=True,
    )


# --- BI reader --------------------------------------------------------------------


def reader_home(user: Account) -> dict[str, Any]:
    """Return a BI reader's section: what they may pull, and their API token (only
    whether it exists and since when; its key is shown once, on the token page)."""
    figures = reverse("figure-list")
    return {
        "sources": [
            (
                "Goal figures (JSON)",
                figures,
                "Every goal with actual, attainment, "
                "expected and status, filtered and paged.",
            ),
            (
                "Goal figures (CSV)",
                f"{figures}?format=csv",
                "The same table as one streamed CSV, for a spreadsheet or a BI tool.",
            ),
            (
                "API root",
                reverse("api-root"),
                "Every collection of the API: silos, "
                "KPIs, measurements, goals, conflicts, cycles.",
            ),
            (
                "OpenAPI schema",
                reverse("schema"),
                "The machine-readable description of every endpoint.",
            ),
            (
                "API documentation",
                reverse("api-docs"),
                "Try every endpoint in the browser with your session.",
            ),
        ],
        "token": Token.objects.filter(user=user).first(),
    }
