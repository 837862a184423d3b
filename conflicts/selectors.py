"""Reads of the conflict register, with what every list shows loaded up front, and
what the report pages show."""

import datetime as dt
from collections import defaultdict
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.paginator import Page, Paginator
from django.db.models import (
    BooleanField,
    Case,
    Count,
    ExpressionWrapper,
    IntegerField,
    Q,
    QuerySet,
    Value,
    When,
)
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone

from conflicts import charts, evidence
from conflicts.filtersets import ConflictRegisterFilterSet
from conflicts.models import (
    CLOSED_STATUSES,
    SEVERITY_RANK,
    TRANSITIONS,
    Conflict,
    ConflictComment,
    DetectionRun,
    Severity,
    Status,
)
from core.roles import CCO_TEAM, SILO_MANAGERS, Account, User, is_bi_reader, is_cco
from cycles.models import Phase
from goals.models import Goal
from goals.selectors import goal_attainment, goal_list_with_actuals, with_pace
from metrics.models import Measurement, Silo
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
    "owner",
)

#: Rows per page of the register.
REGISTER_PAGE_SIZE = 50

#: The register's tabs: a name, its label and the statuses it lists (None: all).
REGISTER_TABS: list[tuple[str, str, tuple[str, ...] | None]] = [
    ("review", "Under review", WORKING),
    ("closed", "Closed and accepted trade-offs", CLOSED_STATUSES),
    ("all", "All", None),
]


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


def conflict_owner_candidates(conflict: Conflict) -> QuerySet[Account]:
    """Return who may own ``conflict`` once acknowledged: active members of the CCO
    team (superusers included) and active managers of its leading or affected silo,
    by username."""
    silos = [conflict.leader_silo_id, conflict.affected_silo_id]
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(
            Q(is_superuser=True)
            | Q(groups__name=CCO_TEAM)
            | Q(groups__name=SILO_MANAGERS, managed_silos__in=silos)
        )
        .distinct()
        .order_by("username")
    )


def conflict_comments(conflict: Conflict) -> QuerySet[ConflictComment]:
    """Return ``conflict``'s comment thread, oldest first, with each author."""
    return conflict.comments.select_related("author").order_by("created_at", "id")


def with_overdue(rows: QuerySet[Conflict], today: dt.date) -> QuerySet[Conflict]:
    """Annotate ``overdue``: still acknowledged after its due date."""
    return rows.annotate(
        overdue=ExpressionWrapper(
            Q(status=Status.ACKNOWLEDGED, due_date__lt=today),
            output_field=BooleanField(),
        )
    )


def register_filter(data: QueryDict) -> ConflictRegisterFilterSet:
    """Return the register's filters bound to ``data`` (a request's query), over the
    whole register, most severe first, then by silo pair in value-chain order."""
    rows = with_overdue(conflict_list(), timezone.localdate()).annotate(
        rank=severity_rank()
    )
    return ConflictRegisterFilterSet(
        data,
        queryset=rows.order_by(
            "rank", "leader_silo__position", "affected_silo__position", "id"
        ),
    )


def register_page(data: QueryDict) -> dict[str, Any]:
    """Return the register page: the filters, their errors, the page of conflicts
    they select (``REGISTER_PAGE_SIZE`` rows, ``?page=``), the tabs and the query
    the CSV link and the page links carry.

    A filter value the form refuses lists no conflict: the page says what is wrong.
    """
    filterset = register_filter(data)
    query = data.copy()
    query.pop("page", None)
    valid = filterset.is_valid()
    page: Page | None = None
    if valid:
        page = Paginator(filterset.qs, REGISTER_PAGE_SIZE).get_page(data.get("page"))
    statuses = set(data.getlist("status"))
    tabs = []
    for name, label, tab_statuses in REGISTER_TABS:
        tab_query = query.copy()
        tab_query.setlist("status", list(tab_statuses or ()))
        tabs.append(
            {
                "name": name,
                "label": label,
                "query": tab_query.urlencode(),
                "current": statuses == set(tab_statuses or ()),
            }
        )
    return dict(
        filter=filterset,
        errors=filterset.errors if not valid else {},
        page=page,
        conflicts=list(page.object_list) if page is not None else [],
        query=query.urlencode(),
        tabs=tabs,
    )


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
        (row["leader_silo"], row["affected_silo"]): (
            row["total"],
            row["high"],
            Severity.HIGH
            if row["high"]
            else Severity.MEDIUM
            if row["medium"]
            else Severity.LOW,
        )
        for row in Conflict.objects.filter(status__in=WORKING, stale=False)
        .values("leader_silo", "affected_silo")
        .annotate(
            total=Count("id"),
            high=Count("id", filter=Q(severity=Severity.HIGH)),
            medium=Count("id", filter=Q(severity=Severity.MEDIUM)),
        )
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
    values: dict[int, dict[dt.date, float]] = defaultdict(dict)
    for kpi_id, period, value in Measurement.objects.filter(
        kpi__in=[conflict.leader_kpi_id, conflict.affected_kpi_id]
    ).values_list("kpi_id", "period", "value"):
        values[kpi_id][period] = value
    next_statuses = [
        (value, ACTION_LABELS[value]) for value in TRANSITIONS[conflict.status]
    ]
    acknowledging = any(value == Status.ACKNOWLEDGED for value, _ in next_statuses)
    return dict(
        conflict=conflict,
        headline=evidence.headline(conflict),
        verdict=evidence.verdict(conflict),
        when=evidence.when(conflict),
        q_words=evidence.format_q(conflict.q_value),
        values_chart=charts.values_chart(conflict, values),
        unit_name=evidence.unit_of(conflict),
        overdue=conflict.is_overdue(timezone.localdate()),
        goals=goals,
        transitions=conflict.transitions.select_related("user", "run", "owner"),
        comments=conflict_comments(conflict),
        next_statuses=next_statuses,
        owner_choices=(
            list(conflict_owner_candidates(conflict)) if acknowledging else []
        ),
    )


def digest_open_conflicts(now: dt.datetime) -> Section:
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
