"""Channels (the secret is write-only), subscriptions and the delivery log."""

from typing import Any

from rest_framework import serializers

from core.api.fields import StrictModelSerializer
from notifications.models import Channel, Delivery, Subscription, events_problem


class EventListField(serializers.ListField):
    child = serializers.CharField()

    def to_internal_value(self, data: Any) -> list[str]:
        value = super().to_internal_value(data)
        problem = events_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return list(dict.fromkeys(value))


class ChannelSerializer(StrictModelSerializer):
    events = EventListField(required=False)
    secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=200,
        help_text="Signs a webhook's body; never returned. Empty on a change: kept.",
        style={"input_type": "password"},
    )
    has_secret = serializers.SerializerMethodField()

    class Meta:
        model = Channel
        fields = [
            "id",
            "name",
            "kind",
            "url",
            "events",
            "is_active",
            "email_to",
            "to_cco_team",
            "to_silo_managers",
            "secret",
            "has_secret",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def get_has_secret(self, channel: Channel) -> bool:
        return bool(channel.secret)


class ChannelTestResultSerializer(serializers.Serializer):
    event = serializers.CharField(help_text="The test event's name: test.")
    event_key = serializers.CharField(
        help_text="Its key: its delivery shows in notification-deliveries/?event_key="
    )


class SubscriptionSerializer(StrictModelSerializer):
    events = EventListField()
    email = serializers.EmailField(source="user.email", read_only=True)

    class Meta:
        model = Subscription
        fields = ["id", "email", "events", "is_active", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]


class DeliverySerializer(serializers.ModelSerializer):
    event = serializers.CharField(source="event.name")
    event_key = serializers.CharField(source="event.key")
    channel = serializers.CharField(source="channel.name", default=None)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "uuid",
            "event",
            "event_key",
            "channel",
            "kind",
            "target",
            "status",
            "attempts",
            "response_code",
            "error",
            "created_at",
            "last_attempt_at",
            "next_attempt_at",
            "delivered_at",
        ]
        read_only_fields = fields
