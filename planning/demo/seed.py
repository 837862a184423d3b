"""Write the demo company to the database: ``demo_seed`` and its steps."""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.db import transaction
from django.utils import timezone

from conflicts.models import Conflict
from conflicts.services import conflict_comment_create, register_reconcile
from core.roles import BI_READERS, CCO_TEAM, SILO_MANAGERS, Account
from cycles.models import Cycle
from goals import rollups
from goals.models import Contribution, Goal, Guardrail, SharedGoal, SharedGoalSnapshot
from metrics.models import KPI, ImpactLink, Measurement, Silo
from metrics.periods import next_period
from planning.demo.data import (
    CCO_USERNAME,
    COMMENTS,
    CYCLES,
    DEMO_PASSWORD,
    FIRST_PERIOD,
    GOAL_DUE_PERIOD,
    GOAL_FIRST_PERIOD,
    GOALS,
    GUARDRAILS,
    KPIS,
    LAST_PERIOD,
    PLANNED_CYCLE,
    PRIORITIES,
    READINESS,
    SHARED_GOALS,
    SIGN_OFFS,
    SILOS,
    SOURCE,
    TRADE_OFFS,
    USERS,
)
from planning.demo.series import demo_series, goal_values
from planning.demo.sync import StepCounts, _add_missing, _sync
from planning.models import (
    FundingAllocation,
    Priority,
    ReadinessAnswer,
    Responsibility,
    SignOff,
)


@dataclass
class SeedReport:
    """The counts of every step of a seed run, in order, and the demo logins."""

    steps: dict[str, StepCounts] = field(default_factory=dict)
    logins: list[tuple[str, str]] = field(default_factory=list)
    password: str = DEMO_PASSWORD

    @property
    def changed_anything(self) -> bool:
        return any(step.created or step.updated for step in self.steps.values())


class DemoSeedError(Exception):
    """The database is not ready for the demo (for example, not migrated)."""


def _seed_users(report: SeedReport) -> dict[str, AbstractUser]:
    groups = {
        group.name: group
        for group in Group.objects.filter(
            name__in=[CCO_TEAM, SILO_MANAGERS, BI_READERS]
        )
    }
    missing = {CCO_TEAM, SILO_MANAGERS, BI_READERS} - set(groups)
    if missing:
        raise DemoSeedError(
            f"The role group(s) {', '.join(sorted(missing))} do not exist; "
            "run `python manage.py migrate` first."
        )
    user_model = get_user_model()
    user_counts = report.steps.setdefault("Users", StepCounts())
    membership_counts = report.steps.setdefault("Role memberships", StepCounts())
    users: dict[str, AbstractUser] = {}
    for spec in USERS:
        values = {
            "first_name": spec.first_name,
            "last_name": spec.last_name,
            "email": f"{spec.username}@example.com",
            "is_staff": True,
            "is_superuser": spec.is_superuser,
            "is_active": True,
        }
        user = user_model.objects.filter(username=spec.username).first()
        if user is None:
            user = user_model(username=spec.username, **values)
            # Only on creation: setting it again would change the hash on every run.
            user.set_password(DEMO_PASSWORD)
            user.save()
            user_counts.created += 1
        else:
            changed = [
                name for name, wanted in values.items() if getattr(user, name) != wanted
            ]
            for name in changed:
                setattr(user, name, values[name])
            if changed:
                user.save(update_fields=changed)
                user_counts.updated += 1
            else:
                user_counts.unchanged += 1
        if spec.group is not None:
            _add_missing(user.groups, [groups[spec.group]], membership_counts)
        users[spec.username] = user
        report.logins.append((spec.username, spec.role))
    return users


def _seed_silos(report: SeedReport, users: dict[str, AbstractUser]) -> dict[str, Silo]:
    counts = report.steps.setdefault("Silos", StepCounts())
    manager_counts = report.steps.setdefault("Silo managers", StepCounts())
    silos = {
        spec.slug: _sync(
            Silo,
            counts,
            lookup={"slug": spec.slug},
            values={
                "name": spec.name,
                "position": spec.position,
                "description": spec.description,
            },
        )
        for spec in SILOS
    }
    for spec in USERS:
        for slug in spec.manages:
            _add_missing(silos[slug].managers, [users[spec.username]], manager_counts)
    return silos


def _seed_kpis(report: SeedReport, silos: dict[str, Silo]) -> dict[str, KPI]:
    counts = report.steps.setdefault("KPIs", StepCounts())
    return {
        spec.key: _sync(
            KPI,
            counts,
            lookup={"key": spec.key},
            values={
                "silo": silos[spec.silo_slug],
                "slug": spec.slug,
                "name": spec.name,
                "unit": spec.unit,
                "direction": spec.direction,
                "band_low": float(spec.band[0]) if spec.band else None,
                "band_high": float(spec.band[1]) if spec.band else None,
                "frequency": spec.frequency,
                "aggregation": spec.aggregation,
                "is_active": True,
            },
        )
        for spec in KPIS
    }


def _seed_measurements(
    report: SeedReport,
    kpis: dict[str, KPI],
    series: dict[str, dict[dt.date, float]],
    stdout_progress: Callable[[str], None],
) -> None:
    """Write measurements with bulk queries: Measurement keeps no history to bypass."""
    total = report.steps.setdefault("Measurements", StepCounts())
    for silo_spec in SILOS:
        counts = StepCounts()
        silo_kpis = [
            kpis[spec.key] for spec in KPIS if spec.silo_slug == silo_spec.slug
        ]
        existing = {
            (measurement.kpi_id, measurement.period): measurement
            for measurement in Measurement.objects.filter(
                kpi__in=silo_kpis, period__gte=FIRST_PERIOD, period__lte=LAST_PERIOD
            ).only("id", "kpi_id", "period", "value", "source")
        }
        to_create: list[Measurement] = []
        to_update: list[Measurement] = []
        now = timezone.now()
        for kpi in silo_kpis:
            for period, value in series[kpi.key].items():
                measurement = existing.get((kpi.pk, period))
                if measurement is None:
                    to_create.append(
                        Measurement(kpi=kpi, period=period, value=value, source=SOURCE)
                    )
                elif measurement.value != value or measurement.source != SOURCE:
                    measurement.value = value
                    measurement.source = SOURCE
                    measurement.updated_at = now
                    to_update.append(measurement)
                else:
                    counts.unchanged += 1
        Measurement.objects.bulk_create(to_create, batch_size=500)
        Measurement.objects.bulk_update(
            to_update, ["value", "source", "updated_at"], batch_size=500
        )
        counts.created = len(to_create)
        counts.updated = len(to_update)
        stdout_progress(f"  measurements of {silo_spec.name}: {counts}")
        total.created += counts.created
        total.updated += counts.updated
        total.unchanged += counts.unchanged


def _seed_links(
    report: SeedReport, kpis: dict[str, KPI], users: dict[str, AbstractUser]
) -> None:
    counts = report.steps.setdefault("Impact links", StepCounts())
    for trade_off in TRADE_OFFS:
        if trade_off.effect is None:
            continue
        _sync(
            ImpactLink,
            counts,
            lookup={
                "leader_kpi": kpis[trade_off.leader],
                "affected_kpi": kpis[trade_off.follower],
            },
            values={
                "effect": trade_off.effect,
                "lag": trade_off.lag,
                "rationale": trade_off.rationale,
                "declared_by": users[CCO_USERNAME],
            },
        )


def _seed_cycles(report: SeedReport, silos: dict[str, Silo]) -> dict[str, Cycle]:
    counts = report.steps.setdefault("Planning cycles", StepCounts())
    participant_counts = report.steps.setdefault("Cycle participants", StepCounts())
    cycles = {}
    for name, start, end, phase, budget in CYCLES:
        cycle = _sync(
            Cycle,
            counts,
            lookup={"name": name},
            values={
                "start_date": start,
                "end_date": end,
                "phase": phase,
                "budget": Decimal(budget),
                "currency": "EUR",
            },
        )
        _add_missing(cycle.silos, silos.values(), participant_counts)
        cycles[name] = cycle
    return cycles


def _seed_goals(
    report: SeedReport,
    cycle: Cycle,
    kpis: dict[str, KPI],
    series: dict[str, dict[dt.date, float]],
    users: dict[str, AbstractUser],
) -> dict[str, Goal]:
    counts = report.steps.setdefault("Goals", StepCounts())
    specs = {spec.key: spec for spec in KPIS}
    goals = {}
    for spec in GOALS:
        goals[spec.kpi] = _sync(
            Goal,
            counts,
            lookup={"cycle": cycle, "kpi": kpis[spec.kpi]},
            values={
                "name": spec.name,
                **goal_values(spec, specs[spec.kpi], series[spec.kpi]),
                "period_start": GOAL_FIRST_PERIOD,
                "period_end": GOAL_DUE_PERIOD,
                "owner": users[spec.owner] if spec.owner else None,
            },
        )
    return goals


def _seed_shared_goals(
    report: SeedReport,
    cycle: Cycle,
    goals: dict[str, Goal],
    users: dict[str, AbstractUser],
) -> None:
    counts = report.steps.setdefault("Shared goals", StepCounts())
    contribution_counts = report.steps.setdefault("Contributions", StepCounts())
    for name, description, weights in SHARED_GOALS:
        shared_goal = _sync(
            SharedGoal,
            counts,
            lookup={"cycle": cycle, "name": name},
            values={"description": description, "owner": users[CCO_USERNAME]},
        )
        for kpi_key, weight in weights.items():
            _sync(
                Contribution,
                contribution_counts,
                lookup={"shared_goal": shared_goal, "goal": goals[kpi_key]},
                values={"weight": weight},
            )
    guardrail_counts = report.steps.setdefault("Guardrails", StepCounts())
    for shared_name, kpi_key, tolerance, note in GUARDRAILS:
        _sync(
            Guardrail,
            guardrail_counts,
            lookup={
                "shared_goal": SharedGoal.objects.get(cycle=cycle, name=shared_name),
                "kpi": goals[kpi_key].kpi,
            },
            # The KPI's level where its own goal starts from.
            values={
                "baseline": goals[kpi_key].baseline,
                "tolerance": tolerance,
                "note": note,
            },
        )


def _seed_plan(
    report: SeedReport,
    cycle: Cycle,
    silos: dict[str, Silo],
    users: dict[str, AbstractUser],
) -> None:
    priority_counts = report.steps.setdefault("Priorities", StepCounts())
    role_counts = report.steps.setdefault("Responsibilities", StepCounts())
    funding_counts = report.steps.setdefault("Funding allocations", StepCounts())
    sign_off_counts = report.steps.setdefault("Sign-offs", StepCounts())
    for spec in PRIORITIES:
        priority = _sync(
            Priority,
            priority_counts,
            lookup={"cycle": cycle, "rank": spec.rank},
            values={
                "title": spec.title,
                "description": spec.description,
                "accountable_silo": silos[spec.accountable],
            },
        )
        for slug, role in spec.roles.items():
            _sync(
                Responsibility,
                role_counts,
                lookup={"priority": priority, "silo": silos[slug]},
                values={"role": role},
            )
        for slug, amount in spec.funding.items():
            _sync(
                FundingAllocation,
                funding_counts,
                lookup={"priority": priority, "silo": silos[slug]},
                values={"amount": Decimal(amount)},
            )
    for slug, username, note in SIGN_OFFS:
        _sync(
            SignOff,
            sign_off_counts,
            lookup={"cycle": cycle, "silo": silos[slug]},
            values={"user": users[username], "note": note},
        )
    readiness_counts = report.steps.setdefault("Readiness answers", StepCounts())
    for number, answer in READINESS.items():
        _sync(
            ReadinessAnswer,
            readiness_counts,
            lookup={"cycle": cycle, "number": number},
            values={"answer": answer, "answered_by": users[CCO_USERNAME]},
        )


def _seed_rollup_history(report: SeedReport, cycle: Cycle) -> None:
    """A snapshot of the cycle's shared goals at the end of each month with figures,
    each computed from the figures of the months up to it (the real roll-up's
    arithmetic, read as of that day), so that the pages show a progress trend. Only
    missing snapshots are written: a second seed changes nothing."""
    counts = report.steps.setdefault("Roll-up history", StepCounts())
    shared_goals = list(SharedGoal.objects.filter(cycle=cycle).select_related("cycle"))
    month = max(cycle.start_date, FIRST_PERIOD)
    while month <= LAST_PERIOD:
        following = next_period(month, "monthly")
        day = following - dt.timedelta(days=1)
        have = set(
            SharedGoalSnapshot.objects.filter(
                shared_goal__in=shared_goals, day=day
            ).values_list("shared_goal_id", flat=True)
        )
        missing = [goal for goal in shared_goals if goal.pk not in have]
        counts.unchanged += len(shared_goals) - len(missing)
        if missing:
            results = rollups.compute(missing, day=day, through=month)
            SharedGoalSnapshot.objects.bulk_create(rollups.snapshots(results, day))
            counts.created += len(missing)
        month = following


def _seed_comments(report: SeedReport, users: dict[str, AbstractUser]) -> None:
    """The managers' conversation on a declared conflict (COMMENTS), through the
    comment service, on a conflict that has no comment yet. The register is reconciled
    first (idempotent): the links' declared conflicts otherwise appear only once the
    seed's transaction has committed."""
    counts = report.steps.setdefault("Conflict comments", StepCounts())
    register_reconcile()
    for leader, affected, thread in COMMENTS:
        conflict = Conflict.objects.filter(
            leader_kpi__key=leader, affected_kpi__key=affected
        ).first()
        if conflict is None:
            continue
        if conflict.comments.exists():
            counts.unchanged += len(thread)
            continue
        for username, body in thread:
            author = Account.objects.get(pk=users[username].pk)
            conflict_comment_create(conflict=conflict, user=author, body=body)
            counts.created += 1


def demo_seed(
    *, stdout_progress: Callable[[str], None] = lambda message: None
) -> SeedReport:
    """Create or repair the demo company, its measurements, links, plans and users.

    Idempotent: a second run finds every row as it should be and writes nothing.
    ``stdout_progress`` receives a line per step (and per silo while measurements are
    written). Raise DemoSeedError when the database lacks the role groups.
    """
    report = SeedReport()
    announced: set[str] = set()

    def announce() -> None:
        for name, counts in report.steps.items():
            if name not in announced:
                announced.add(name)
                stdout_progress(f"{name + ':':<22}{counts}")

    series = demo_series()
    with transaction.atomic():
        users = _seed_users(report)
        announce()
        silos = _seed_silos(report, users)
        announce()
        kpis = _seed_kpis(report, silos)
        announce()
        _seed_measurements(report, kpis, series, stdout_progress)
        announce()
        _seed_links(report, kpis, users)
        announce()
        cycles = _seed_cycles(report, silos)
        announce()
        planned = cycles[PLANNED_CYCLE]
        goals = _seed_goals(report, planned, kpis, series, users)
        announce()
        _seed_shared_goals(report, planned, goals, users)
        announce()
        _seed_plan(report, planned, silos, users)
        announce()
        _seed_rollup_history(report, planned)
        announce()
    with transaction.atomic():
        _seed_comments(report, users)
        announce()
    return report
