"""factory_boy factories for every domain model, and users in each role."""

import datetime as dt
import importlib

import factory
from django.apps import apps as django_apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission, User
from django.utils import timezone

from conflicts.models import Conflict, DetectionRun
from core.roles import BI_READERS, CCO_TEAM, SILO_MANAGERS
from cycles.models import Cycle
from goals.models import Contribution, Goal, SharedGoal
from metrics.models import KPI, Direction, ImpactLink, Measurement, Silo
from planning.models import Priority

ROLES_MIGRATION = importlib.import_module("planning.migrations.0002_roles")
NOTIFICATIONS_MIGRATION = importlib.import_module(
    "notifications.migrations.0002_roles_and_default_channel"
)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests-1")

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save()


def role_group(name: str) -> Group:
    """Return the role group ``name``, recreating the roles if a flush removed them.

    The groups come from a data migration, which a transactional test's teardown
    flush removes; serialized rollback restores them for the suite's own transactional
    tests, and this rebuilds them from the migration's own grants (so the permissions
    are exactly the migrated ones) for any test that runs without it.
    """
    group = Group.objects.filter(name=name).first()
    if group is not None:
        return group
    for app_config in django_apps.get_app_configs():
        create_permissions(app_config, verbosity=0)
    for group_name, triples in ROLES_MIGRATION.grants().items():
        role, _ = Group.objects.get_or_create(name=group_name)
        role.permissions.set(
            [
                Permission.objects.get(
                    content_type__app_label=app_label, codename=f"{action}_{model}"
                )
                for app_label, action, model in triples
            ]
        )
    Group.objects.get(name=NOTIFICATIONS_MIGRATION.CCO_TEAM).permissions.add(
        *Permission.objects.filter(
            content_type__app_label="notifications",
            codename__in=[f"{a}_{m}" for a, m in NOTIFICATIONS_MIGRATION.CCO_GRANTS],
        )
    )
    return Group.objects.get(name=name)


def user_in(group_name: str, **kwargs) -> User:
    """Create a staff user in the role group ``group_name``."""
    user = UserFactory(**kwargs)
    user.groups.add(role_group(group_name))
    return user


def silo_manager(*silos: Silo, **kwargs) -> User:
    """Create a silo manager who manages ``silos``."""
    user = user_in(SILO_MANAGERS, **kwargs)
    for silo in silos:
        silo.managers.add(user)
    return user


def cco_member(**kwargs) -> User:
    return user_in(CCO_TEAM, **kwargs)


def bi_reader(**kwargs) -> User:
    return user_in(BI_READERS, **kwargs)


class SiloFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Silo

    slug = factory.Sequence(lambda n: f"silo{n}")
    name = factory.LazyAttribute(lambda silo: silo.slug.title())
    position = factory.Sequence(lambda n: n)


class KPIFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = KPI

    silo = factory.SubFactory(SiloFactory)
    slug = factory.Sequence(lambda n: f"kpi{n}")
    name = factory.LazyAttribute(lambda kpi: kpi.slug.replace("_", " ").title())
    unit = "count"
    direction = Direction.HIGHER_IS_BETTER
    frequency = "monthly"
    aggregation = "sum"


class MeasurementFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Measurement

    kpi = factory.SubFactory(KPIFactory)
    period = dt.date(2024, 1, 1)
    value = 10.0


class ImpactLinkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ImpactLink

    leader_kpi = factory.SubFactory(KPIFactory)
    affected_kpi = factory.SubFactory(KPIFactory)
    effect = "hurts"
    lag = 1
    rationale = "Deep discounts close deals and erode margin."


class CycleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Cycle

    name = factory.Sequence(lambda n: f"FY{2027 + n}")
    start_date = dt.date(2027, 1, 1)
    end_date = dt.date(2027, 12, 31)
    phase = "proposing"
    budget = 1_000_000


class PriorityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Priority

    cycle = factory.SubFactory(CycleFactory)
    title = factory.Sequence(lambda n: f"Priority {n}")
    rank = factory.Sequence(lambda n: n + 1)
    accountable_silo = factory.SubFactory(SiloFactory)


class GoalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Goal

    cycle = factory.SubFactory(CycleFactory)
    kpi = factory.SubFactory(KPIFactory)
    baseline = 100.0
    target = 150.0
    period_start = dt.date(2027, 1, 1)
    period_end = dt.date(2027, 12, 1)


class SharedGoalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SharedGoal

    cycle = factory.SubFactory(CycleFactory)
    name = factory.Sequence(lambda n: f"Shared goal {n}")


class ContributionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contribution

    shared_goal = factory.SubFactory(SharedGoalFactory)
    goal = factory.SubFactory(GoalFactory)
    weight = 1.0


class DetectionRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DetectionRun

    trigger = "command"
    status = "succeeded"
    max_lag = 3
    min_pairs = 12
    q_threshold = 0.05
    block_size = 1000


class ConflictFactory(factory.django.DjangoModelFactory):
    """An observed conflict between two KPIs of different silos, open, high severity."""

    class Meta:
        model = Conflict

    kind = "observed"
    is_observed = True
    leader_kpi = factory.SubFactory(KPIFactory)
    affected_kpi = factory.SubFactory(KPIFactory)
    leader_silo = factory.SelfAttribute("leader_kpi.silo")
    affected_silo = factory.SelfAttribute("affected_kpi.silo")
    lag = 1
    correlation = -0.71
    p_value = 0.0001
    q_value = 0.001
    periods = 40
    severity = "high"
    goal_at_risk = True
    first_detected_at = factory.LazyFunction(timezone.now)
    last_detected_at = factory.LazyFunction(timezone.now)
