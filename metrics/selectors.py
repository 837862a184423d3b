"""Reads of silos, KPIs, measurements and links, scoped to what a user may see or change."""

from datetime import date
from typing import TypedDict

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import OuterRef, QuerySet, Subquery

from core.roles import User, cached_on_user, is_bi_reader, is_cco, is_silo_manager
from metrics.models import KPI, ImpactLink, Measurement, Silo


def silos_writable_by(user: User) -> QuerySet[Silo]:
    """Return the silos whose KPIs, measurements and goals ``user`` may change.

    The CCO team and superusers may change every silo; a silo manager only the silos
    they manage; anyone else none (deny by default).
    """
    if is_cco(user):
        return Silo.objects.all()
    # Being listed on a silo is not enough: the role grants the right to write.
    if not is_silo_manager(user):
        return Silo.objects.none()
    return Silo.objects.filter(managers=user)


def silo_ids_writable_by(user: User) -> set[int] | None:
    """Return the ids of the silos ``user`` may change, or None when that is every silo."""
    if is_cco(user):
        return None
    return cached_on_user(
        user,
        "_ducttape_silo_ids",
        lambda: set(silos_writable_by(user).values_list("id", flat=True)),
    )


def silo_ids_managed_by(user: User) -> set[int]:
    """Return the silos ``user`` manages (signing is personal: the CCO role is not
    enough)."""
    if not user.is_authenticated or not is_silo_manager(user):
        return set()
    return set(user.managed_silos.values_list("pk", flat=True))


def silo_ids_of_part(user: User) -> set[int] | None:
    """Return the silos whose part of a cycle ``user`` works on: every silo (None) for
    the CCO team, else the silos they manage."""
    return None if is_cco(user) else silo_ids_managed_by(user)


def users_assignable_by(user: User) -> QuerySet[AbstractBaseUser]:
    """Return the users ``user`` may name as owner of a goal.

    The CCO team may pick any active user; a silo manager picks among the managers of
    their own silos, so the form does not list the whole company's accounts.
    """
    users = get_user_model().objects.filter(is_active=True)
    silo_ids = silo_ids_writable_by(user)
    if silo_ids is None:
        return users
    return users.filter(managed_silos__in=silo_ids).distinct()


def admin_silo_scope(user: User) -> set[int] | None:
    """Return the silo ids whose data the admin shows ``user``, or None for all silos.

    The admin is where silo managers work, so it shows them their own silos only; the
    CCO team and BI readers (who hold view permissions only) see every silo. A manager
    who is also a BI reader still sees only their own silos here: the narrower scope
    wins, so a change permission can never reach another silo's rows.
    """
    writable = silo_ids_writable_by(user)
    if writable is None:
        return None
    if is_silo_manager(user):
        return writable
    return None if is_bi_reader(user) else set()


def scope_by_silo(
    queryset: QuerySet, silo_ids: set[int] | None, lookup: str
) -> QuerySet:
    """Filter ``queryset`` to rows whose ``lookup`` silo id is in ``silo_ids`` (None: all)."""
    if silo_ids is None:
        return queryset
    return queryset.filter(**{f"{lookup}__in": silo_ids})


def kpis_writable_by(user: User) -> QuerySet[KPI]:
    """Return the KPIs ``user`` may change, or whose measurements and goals they may write."""
    return scope_by_silo(KPI.objects.all(), silo_ids_writable_by(user), "silo_id")


class LatestMeasurement(TypedDict):
    """What :func:`kpi_list_with_latest` annotates (None: the KPI has no measurement)."""

    latest_value: float | None
    latest_period: date | None


def kpi_list_with_latest(queryset: QuerySet[KPI] | None = None) -> QuerySet[KPI]:
    """Annotate KPIs with their latest measurement (``latest_value``, ``latest_period``).

    One SQL query whatever the number of KPIs.
    """
    queryset = KPI.objects.all() if queryset is None else queryset
    latest = Measurement.objects.filter(kpi=OuterRef("pk")).order_by("-period")
    return queryset.select_related("silo").annotate(
        latest_value=Subquery(latest.values("value")[:1]),
        latest_period=Subquery(latest.values("period")[:1]),
    )


def links_touching(silo_ids: set[int] | None) -> QuerySet[ImpactLink]:
    """Return declared links whose leader or affected KPI belongs to one of ``silo_ids``."""
    queryset = ImpactLink.objects.select_related(
        "leader_kpi", "affected_kpi", "leader_silo", "affected_silo", "declared_by"
    )
    if silo_ids is None:
        return queryset
    return queryset.filter(leader_silo_id__in=silo_ids) | queryset.filter(
        affected_silo_id__in=silo_ids
    )
