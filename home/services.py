"""Writes of the home pages."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from core.roles import Account
from home.models import HomeVisit


def home_visit_record(
    *, user: Account, at: dt.datetime | None = None
) -> dt.datetime | None:
    """Record that ``user`` opens their home now (or ``at``); return when they had
    opened it before (None: never).

    An upsert (INSERT .. ON CONFLICT): two tabs opening the home at once both
    succeed instead of one failing on the unique user.
    """
    at = timezone.now() if at is None else at
    previous = (
        HomeVisit.objects.filter(user=user).values_list("seen_at", flat=True).first()
    )
    HomeVisit.objects.bulk_create(
        [HomeVisit(user=user, seen_at=at)],
        update_conflicts=True,
        unique_fields=["user"],
        update_fields=["seen_at"],
    )
    return previous
