"""Bounds on what ducttape stores: numbers of KPI scale and texts of bounded length.

Every KPI figure the service stores (measurements, goal baselines and targets, bands,
guardrail baselines and tolerances, contribution weights) lies strictly inside
``±MAX_MAGNITUDE``. No real KPI comes near 10^15 (a trillion euros is 10^12), and the
bound keeps all arithmetic on stored values finite: a sum over a billion such values,
PostgreSQL's ``AVG`` (which also sums squares: (10^15)^2 = 10^30) and every product
the roll-ups form stay far below the float maximum of about 1.8e308. The bound is held
by the model fields' validators (the admin and the API), by the bulk upload and the CSV
import, and by a ``CHECK`` in the database, which also rejects NaN and infinities.
"""

import math
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Length

#: Every stored KPI figure lies strictly between -MAX_MAGNITUDE and MAX_MAGNITUDE.
MAX_MAGNITUDE = 1e15

#: How the bound reads in messages.
MAGNITUDE_TEXT = "1e15 (1,000,000,000,000,000)"

#: Longest description, rationale or note a person writes (about two pages).
LONG_TEXT_MAX = 5_000


def magnitude_problem(value: float) -> str:
    """Return what is wrong with ``value`` as a stored figure, or "" if nothing is."""
    if not math.isfinite(value):
        return "Enter a finite number (not NaN or infinity)."
    if abs(value) >= MAX_MAGNITUDE:
        return (
            f"Enter a number whose magnitude is below {MAGNITUDE_TEXT}; got {value:g}. "
            "No KPI reaches that size: check the unit or the decimal point."
        )
    return ""


def validate_magnitude(value: float | None) -> None:
    """Raise ValidationError unless ``value`` is None or a storable figure."""
    if value is None:
        return
    problem = magnitude_problem(float(value))
    if problem:
        raise ValidationError(problem, code="magnitude")


def magnitude_check(
    field: str, name: str, *, nullable: bool = False
) -> models.CheckConstraint:
    """Return a CHECK that keeps ``field`` strictly inside ±MAX_MAGNITUDE.

    NaN fails it too: PostgreSQL orders NaN above every number.
    """
    inside = Q(**{f"{field}__gt": -MAX_MAGNITUDE}) & Q(
        **{f"{field}__lt": MAX_MAGNITUDE}
    )
    return models.CheckConstraint(
        condition=(Q(**{f"{field}__isnull": True}) | inside) if nullable else inside,
        name=name,
        violation_error_message=f"{field} must be a number whose magnitude is below "
        f"{MAGNITUDE_TEXT}.",
    )


def length_check(field: str, max_length: int, name: str) -> models.CheckConstraint:
    """Return a CHECK that keeps the text ``field`` at most ``max_length`` characters.

    A ``TextField``'s ``max_length`` reaches forms and serializers only; this makes the
    database hold it too, whatever writes the row.
    """
    return models.CheckConstraint(
        condition=models.lookups.LessThanOrEqual(Length(field), max_length),
        name=name,
        violation_error_message=f"{field} must be at most {max_length} characters.",
    )


def finite_json(value: Any) -> Any:
    """Return ``value`` (JSON-like data) with every non-finite float replaced by None.

    PostgreSQL's jsonb has no NaN or Infinity; a job that wrote one would fail on every
    run. Data written to JSON columns by jobs goes through here, so it is finite by
    construction.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(item) for item in value]
    return value
