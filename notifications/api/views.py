"""``/api/v1/notification-channels/`` (CCO team only: a webhook URL is itself a
secret), ``notification-subscriptions/`` (a user's own) and ``notification-deliveries/``
(the log, CCO team only)."""

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.viewsets import ServiceModelViewSet
from core.roles import is_cco, signed_in
from notifications import services
from notifications.api.filtersets import DeliveryFilterSet
from notifications.api.serializers import (
    ChannelSerializer,
    ChannelTestResultSerializer,
    DeliverySerializer,
    SubscriptionSerializer,
)
from notifications.models import Channel, Delivery, Subscription


class CCOTeamOnly(BasePermission):
    """Reads and writes for the CCO team alone."""

    message = "Only the CCO team may manage notification channels and read deliveries."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return is_cco(request.user)


class MaySubscribe(BasePermission):
    message = "Only silo managers and the CCO team may subscribe to notifications."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return services.may_subscribe(request.user)


class ChannelViewSet(ServiceModelViewSet):
    """Notification channels: email, Slack, Microsoft Teams and signed webhooks.

    ``POST {id}/test/`` sends a test event to the channel alone (202, with the event's
    key: its delivery shows in ``notification-deliveries/?event_key=``).
    """

    queryset = Channel.objects.order_by("name")
    serializer_class = ChannelSerializer
    permission_classes = [CCOTeamOnly]

    def save_service(self, *, user: Any, instance: Any, **fields: Any) -> Channel:
        return services.channel_save(user=user, channel=instance, **fields)

    @extend_schema(
        request=None,
        responses={202: ChannelTestResultSerializer},
        summary="Send a test event to this channel alone (CCO team).",
    )
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        event = services.channel_test(channel=self.get_object(), user=request.user)
        return Response(
            {"event": event.name, "event_key": event.key},
            status=status.HTTP_202_ACCEPTED,
        )


class SubscriptionViewSet(ServiceModelViewSet):
    """The signed-in user's own email subscription (at most one)."""

    serializer_class = SubscriptionSerializer
    permission_classes = [MaySubscribe]
    # The schema's model; the rows are the caller's own (get_read_queryset).
    queryset = Subscription.objects.none()

    def get_read_queryset(self) -> QuerySet[Subscription]:
        return Subscription.objects.filter(
            user=signed_in(self.request.user)
        ).select_related("user")

    def save_service(self, *, user: Any, instance: Any, **fields: Any) -> Subscription:
        if instance is None and Subscription.objects.filter(user=user).exists():
            raise ValidationError(
                {"events": ["You have a subscription already: change it with PATCH."]}
            )
        return services.subscription_save(user=user, subscription=instance, **fields)


class DeliveryViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The delivery log, newest first; ``?status=``, ``?event=``, ``?event_key=``."""

    serializer_class = DeliverySerializer
    permission_classes = [CCOTeamOnly]
    queryset = Delivery.objects.select_related("event", "channel").order_by("-pk")
    filterset_class = DeliveryFilterSet
