"""The conflict pages' form fields: the workflow form reads the posted values (the
service, conflicts.services.conflict_transition, decides what they may be), and the
register's silo filters name a silo by slug."""

from typing import Any

import django_filters
from django import forms
from django.contrib.auth import get_user_model


class SafeModelChoiceField(forms.ModelChoiceField):
    """A choice of a row by a text key that refuses, as a form error, text the
    database cannot compare (a NUL, a lone surrogate): the lookup would otherwise be
    a server error."""

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                value = "\x00"
            if "\x00" in value:
                raise forms.ValidationError(
                    self.error_messages["invalid_choice"], code="invalid_choice"
                )
        return super().to_python(value)


class SafeModelChoiceFilter(django_filters.ModelChoiceFilter):
    """django-filter's ModelChoiceFilter on a SafeModelChoiceField."""

    field_class = SafeModelChoiceField


class TransitionForm(forms.Form):
    """A workflow step as posted: status and note as typed (the service says what is
    wrong with them), the owner by username and the due date as a date."""

    status = forms.CharField(required=False, strip=False)
    note = forms.CharField(required=False, strip=False)
    owner = SafeModelChoiceField(
        queryset=get_user_model().objects.all(),
        to_field_name="username",
        required=False,
        error_messages={"invalid_choice": "Choose the owner from the list."},
    )
    due_date = forms.DateField(
        required=False,
        input_formats=["%Y-%m-%d"],
        error_messages={"invalid": "Enter the due date as YYYY-MM-DD."},
    )
