"""Reads of the conflict register, with what every list shows loaded up front, and
what the report pages show."""

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When
from django.urls import reverse

from conflicts import charts, evidence
from conflicts.models import (
    CLOSED_STATUSES,
    SEVERITY_RANK,
    TRANSITIONS,
    Conflict,
    DetectionRun,
    Severity,
    Status,
)
from core.roles import User, is_bi_reader, is_cco
from cycles.models import Phase
from goals.models import Goal
from goals.selectors import goal_attainment, goal_list_with_actuals, with_pace
from metrics.models import Silo
from metrics.selectors import silo_ids_managed_by
from notifications.digest import Section

#: Lines each digest section lists at most.
DIGEST_LINES = 10

#: Statuses still being worked: what "open conflicts" means on the report.
WORKING = (Status.OPEN, Status.ACKNOWLEDGED)

#: The workflow buttons say what they do.
ACTION_LABELS: dict[str, str] = {
    Status.OPEN: "Reopen",
    Status.ACKNOWLEDGED: "Acknowledge",
    Status.ACCEPTED_TRADEOFF: "Accept as trade-off",
    Status.RESOLVED: "Mark resolved",
    Status.DISMISSED: "Dismiss",
}

RELATIONS = (
    "leader_kpi",
    "affected_kpi",
    "leader_silo",
    "affected_silo",
    "status_changed_by",
)


def conflicts_visible_to(user: User) -> QuerySet[Conflict]:
    """The conflicts ``user`` may read, in the API and the pages alike: all of them for
    the CCO team and BI readers; for a silo manager, those whose leading or affected
    silo they manage (another silo's conflict is "not found"); none for anyone else."""
    rows = conflict_list()
    if is_cco(user) or is_bi_reader(user):
        return rows
    managed = silo_ids_managed_by(user)
    if not managed:
        return rows.none()
    return rows.filter(Q(leader_silo__in=managed) | Q(affected_silo__in=managed))


def conflict_list() -> QuerySet[Conflict]:
    """Return the register with both KPIs and silos joined (one query per page)."""
    return Conflict.objects.select_related(*RELATIONS)


def severity_rank() -> Case:
    """An expression ordering high (0) before medium (1) before low (2)."""
    return Case(
        When(severity=Severity.HIGH, then=Value(0)),
        When(severity=Severity.MEDIUM, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )


def report_page() -> dict[str, Any]:
    """Return the report's open conflicts grouped by silo pair, most severe first, the
    silo heatmap, the totals and the last run (with its drivers)."""
    working = (
        conflict_list()
        .filter(status__in=WORKING, stale=False)
        .annotate(rank=severity_rank())
        .order_by("rank", "leader_silo__position", "affected_silo__position", "id")
    )
    groups: dict[tuple[int, int], dict[str, Any]] = {}
    for conflict in working:
        conflict.sentence = evidence.describe(conflict)  # type: ignore[attr-defined]  # for the report template; not a field
        group = groups.setdefault(
            (conflict.leader_silo_id, conflict.affected_silo_id),
            {
                "leader": conflict.leader_silo,
                "affected": conflict.affected_silo,
                "conflicts": [],
            },
        )
        group["conflicts"].append(conflict)
    for group in groups.values():
        items = group["conflicts"]
        group["worst"] = max(SEVERITY_RANK[c.severity] for c in items)
        group["worst_label"] = items[0].get_severity_display()
        group["high"] = sum(1 for c in items if c.severity == "high")
    ordered = sorted(
        groups.values(),
        key=lambda g: (
            -g["worst"],
            -g["high"],
            -len(g["conflicts"]),
            g["leader"].position,
            g["affected"].position,
        ),
    )
    counts = {
        (row["leader_silo"], row["affected_silo"]): (row["total"], row["high"])
        for row in Conflict.objects.filter(status__in=WORKING, stale=False)
        .values("leader_silo", "affected_silo")
        .annotate(total=Count("id"), high=Count("id", filter=Q(severity="high")))
    }
    silos = list(Silo.objects.order_by("position", "name"))
    return dict(
        groups=ordered,
        silos=silos,
        heatmap=charts.heatmap(silos, counts),
        open_total=sum(len(g["conflicts"]) for g in ordered),
        closed_total=Conflict.objects.filter(status__in=CLOSED_STATUSES).count(),
        stale_total=Conflict.objects.filter(stale=True).count(),
        last_run=DetectionRun.objects.order_by("-id").first(),
    )


def conflict_page(conflict: Conflict) -> dict[str, Any]:
    """Return one conflict's page: the evidence in words, both charts, the goals of
    open cycles involved, and its history."""
    goals = with_pace(
        goal_list_with_actuals(
            Goal.objects.filter(
                kpi__in=[conflict.leader_kpi_id, conflict.affected_kpi_id]
            ).exclude(cycle__phase=Phase.CLOSED)
        ).order_by("cycle__start_date", "kpi__key")
    )
    for goal in goals:
        goal.attainment_value = goal_attainment(goal)  # type: ignore[attr-defined]  # for the conflict page template; not a field
    chart = charts.change_chart(
        conflict.leader_kpi, conflict.affected_kpi, conflict.lag or 0
    )
    values = charts.values_chart(conflict.leader_kpi, conflict.affected_kpi)
    return dict(
        conflict=conflict,
        sentence=evidence.describe(conflict),
        chart=chart,
        values_chart=values,
        unit_name=evidence.unit_of(conflict),
        effect_rate=evidence.effect_rate(conflict),
        goals=goals,
        transitions=conflict.transitions.select_related("user", "run"),
        comments=conflict.comments.select_related("author"),
        next_statuses=[
            (value, ACTION_LABELS[value]) for value in TRANSITIONS[conflict.status]
        ],
    )


def digest_open_conflicts(now: datetime) -> Section:
    """The weekly digest's section: conflicts under review, counted by severity (one
    query). The digest goes to every subscriber, and a silo manager may not read other
    silos' conflicts (conflicts_visible_to): it names no pair."""
    counts = dict(
        Conflict.objects.filter(stale=False, status__in=WORKING)
        .order_by()
        .values_list("severity")
        .annotate(n=Count("pk"))
        .values_list("severity", "n")
    )
    return Section(
        heading="Open conflicts",
        count=sum(counts.values()),
        lines=[
            f"{severity}: {counts[severity]}"
            for severity in (Severity.HIGH, Severity.MEDIUM, Severity.LOW)
            if counts.get(severity)
        ],
        url=settings.SITE_URL + reverse("conflicts:report"),
    )
