"""Related fields that name objects by slug or key and refuse objects out of scope."""

from collections.abc import Callable
from typing import Any

from django.db import models
from django.db.models import QuerySet
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied

from core.bounds import magnitude_problem


class SafeSlugRelatedField(serializers.SlugRelatedField):
    """A slug-named relation that refuses, as a 400, text the database cannot compare.

    PostgreSQL rejects NUL characters and Python cannot encode lone surrogates; either
    would otherwise surface as a server error during the lookup.
    """

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid")
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:
            self.fail("invalid")
        if "\x00" in data:
            self.fail("invalid")
        return super().to_internal_value(data)


class ScopedSlugRelatedField(SafeSlugRelatedField):
    """A slug-named relation whose target must also be writable by the requesting user.

    An unknown slug is a 400 that names it; a known object outside the user's scope (say,
    another silo's KPI) is a 403, so a create or a PATCH that points across silos is
    refused as a permission matter, not mistaken for a typo.
    """

    def __init__(
        self,
        *,
        writable: Callable[[Any], QuerySet],
        denied_message: str,
        **kwargs: Any,
    ) -> None:
        self.writable = writable
        self.denied_message = denied_message
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        obj = super().to_internal_value(data)
        user = self.context["request"].user
        if not self.writable(user).filter(pk=obj.pk).exists():
            raise PermissionDenied(self.denied_message.format(value=data))
        return obj


class StrictFloatField(serializers.FloatField):
    """A KPI-scale figure: refuses booleans (JSON ``true`` is not the number 1 here),
    and numbers of magnitude 1e15 or more (core.bounds), as the database does."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool):
            self.fail("invalid")
        value = super().to_internal_value(data)
        problem = magnitude_problem(value)
        if problem:
            raise serializers.ValidationError(problem, code="magnitude")
        return value


class StrictModelSerializer(serializers.ModelSerializer):
    """A ModelSerializer whose float fields refuse booleans."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.FloatField: StrictFloatField,
    }
