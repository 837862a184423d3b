"""The CCO team manages channels here, sends a test, and reads the delivery log.

Permissions are Django's model permissions, which only the CCO team's group holds
(migration 0002); events and deliveries are written by the code alone.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from core.admin import WrittenByCodeAdminMixin
from notifications import services
from notifications.events import SUBSCRIBABLE
from notifications.models import Channel, Delivery, Event, Subscription


class ChannelForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        choices=[(name, name) for name in SUBSCRIBABLE],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="What this channel receives.",
    )
    url = forms.URLField(
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text="The incoming webhook's address (http or https); empty for email.",
    )
    secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Signs a webhook's body. Leave empty to keep the stored secret.",
    )

    class Meta:
        model = Channel
        fields = [
            "name",
            "kind",
            "url",
            "secret",
            "email_to",
            "to_cco_team",
            "to_silo_managers",
            "events",
            "is_active",
        ]

    def _post_clean(self) -> None:
        # An empty secret field on an existing channel keeps the stored secret: set it
        # back before the model's own validation sees the instance.
        if self.instance.pk and not self.cleaned_data.get("secret"):
            self.cleaned_data["secret"] = Channel.objects.get(
                pk=self.instance.pk
            ).secret
        super()._post_clean()  # type: ignore[misc]  # Django's (private) BaseModelForm._post_clean is missing from django-stubs


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    list_display = ["name", "kind", "is_active", "event_list"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "url"]
    actions = ["send_test"]

    @admin.display(description="Events")
    def event_list(self, channel: Channel) -> str:
        return ", ".join(channel.events) or "-"

    @admin.action(description="Send a test notification", permissions=["change"])
    def send_test(self, request: HttpRequest, queryset: QuerySet[Channel]) -> None:
        channels = list(queryset)
        for channel in channels:
            services.channel_test(channel=channel, user=request.user)
        self.message_user(
            request,
            f"Test sent to {', '.join(c.name for c in channels)}: its delivery is in "
            "the delivery log.",
            messages.SUCCESS,
        )


class ReadOnlyAdmin(WrittenByCodeAdminMixin, admin.ModelAdmin):
    """Events, deliveries and subscriptions: the CCO team reads them here."""


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "event_name",
        "kind",
        "target",
        "status",
        "attempts",
        "response_code",
    ]
    list_filter = ["status", "kind", "event__name"]
    search_fields = ["target", "error", "uuid"]
    list_select_related = ["event"]
    date_hierarchy = "created_at"

    @admin.display(description="Event", ordering="event__name")
    def event_name(self, delivery: Delivery) -> str:
        return delivery.event.name


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["occurred_at", "name", "title"]
    list_filter = ["name"]
    search_fields = ["title", "key"]


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    list_display = ["user", "is_active", "event_list"]
    list_select_related = ["user"]

    @admin.display(description="Events")
    def event_list(self, subscription: Subscription) -> str:
        return ", ".join(subscription.events) or "-"
