"""Filters shared by every API list (django-filter).

django-filter's DRF ``BooleanFilter`` reads only ``true`` and ``false`` and silently
ignores anything else: ``?is_active=0`` listed every KPI. Here a boolean accepts the
usual spellings and refuses the rest with a 400 that names them.
"""

from typing import Any

import django_filters
from django import forms
from django.db import models
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.rest_framework.filterset import FILTER_FOR_DBFIELD_DEFAULTS

TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")


class StrictBooleanField(forms.Field):
    """A yes/no query parameter: true/false, 1/0, yes/no, on/off (any case)."""

    default_error_messages = {
        "invalid": "Use true or false (also accepted: 1/0, yes/no, on/off); got "
        "%(value)s."
    }

    def to_python(self, value: Any) -> bool | None:
        if value in (None, ""):
            return None
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise forms.ValidationError(
            self.error_messages["invalid"],
            code="invalid",
            params={"value": repr(str(value)[:40])},
        )


class StrictBooleanFilter(django_filters.Filter):
    """A boolean filter that answers 400 for a value it cannot read."""

    field_class = StrictBooleanField


class FilterSet(django_filters.FilterSet):
    """The project's FilterSet: DRF's defaults, with StrictBooleanFilter for booleans.

    Choice filters already refuse unknown choices (400 naming the valid ones).
    """

    FILTER_DEFAULTS = {
        **FILTER_FOR_DBFIELD_DEFAULTS,
        models.BooleanField: {"filter_class": StrictBooleanFilter},
    }


class FilterBackend(DjangoFilterBackend):
    """DjangoFilterBackend whose FilterSets made from ``filterset_fields`` are ours."""

    filterset_base = FilterSet
