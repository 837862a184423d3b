"""Filters of the delivery log."""

import django_filters

from core.filters import FilterSet
from notifications.events import EventName
from notifications.models import Delivery, DeliveryStatus


class DeliveryFilterSet(FilterSet):
    status = django_filters.ChoiceFilter(choices=DeliveryStatus.choices)
    event = django_filters.ChoiceFilter(
        field_name="event__name", choices=EventName.choices
    )
    event_key = django_filters.CharFilter(field_name="event__key")

    class Meta:
        model = Delivery
        fields = ["status", "event", "event_key", "kind"]
