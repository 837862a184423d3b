"""Forms of the cycle page's plan edits: they parse and label the input; the planning
and goals services validate the whole object and write it.

A model form here skips the model's own validation (``_post_clean``): the service runs
it in full, under the cycle's row lock, and its errors come back onto the fields with
:func:`add_service_errors`. Validating twice would also report errors of fields the form
does not show (the cycle) as a crash instead of a message.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import MinValueValidator
from django.db.models import QuerySet

from goals.models import Goal
from metrics.models import KPI, Silo
from planning.models import FundingAllocation, Priority, Responsibility


class ServiceForm(forms.ModelForm):
    """A model form that leaves the model's validation to the service that saves."""

    def _post_clean(self) -> None:
        """Skip the model's validation: the service runs it (see the module)."""


def add_service_errors(form: forms.BaseForm, error: ValidationError) -> None:
    """Put a service's ValidationError on the form: each message on its field when the
    form shows that field, else above the form."""
    messages = (
        error.message_dict
        if hasattr(error, "error_dict")
        else {NON_FIELD_ERRORS: error.messages}
    )
    for field, field_messages in messages.items():
        target = field if field in form.fields else None
        for message in field_messages:
            form.add_error(target, message)


class PriorityForm(ServiceForm):
    class Meta:
        model = Priority
        fields = ["rank", "title", "description", "accountable_silo"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args: Any, silos: QuerySet[Silo], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["accountable_silo"].queryset = silos  # type: ignore[attr-defined]  # a ModelChoiceField
        # The database's check says only "violated"; the form says what to enter.
        self.fields["rank"].validators.append(MinValueValidator(1))
        self.fields["rank"].widget.attrs["min"] = 1


class ResponsibilityForm(ServiceForm):
    class Meta:
        model = Responsibility
        fields = ["priority", "silo", "role"]
        labels = {"role": "RACI role"}

    def __init__(
        self,
        *args: Any,
        silos: QuerySet[Silo],
        priorities: QuerySet[Priority],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["silo"].queryset = silos  # type: ignore[attr-defined]  # a ModelChoiceField
        self.fields["priority"].queryset = priorities  # type: ignore[attr-defined]  # a ModelChoiceField


class FundingAllocationForm(ServiceForm):
    class Meta:
        model = FundingAllocation
        fields = ["priority", "silo", "amount"]

    def __init__(
        self,
        *args: Any,
        silos: QuerySet[Silo],
        priorities: QuerySet[Priority],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["silo"].queryset = silos  # type: ignore[attr-defined]  # a ModelChoiceField
        self.fields["priority"].queryset = priorities  # type: ignore[attr-defined]  # a ModelChoiceField


class GoalForm(ServiceForm):
    class Meta:
        model = Goal
        fields = [
            "kpi",
            "name",
            "baseline",
            "target",
            "target_low",
            "target_high",
            "period_start",
            "period_end",
            "notes",
        ]
        labels = {
            "target": "Target (leave empty for a band)",
            "target_low": "Band low (target-band KPIs)",
            "target_high": "Band high (target-band KPIs)",
        }
        widgets = {
            "period_start": forms.DateInput(attrs={"type": "date"}),
            "period_end": forms.DateInput(attrs={"type": "date"}),
            "notes": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args: Any, kpis: QuerySet[KPI], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["kpi"].queryset = kpis  # type: ignore[attr-defined]  # a ModelChoiceField
