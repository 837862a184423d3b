"""Dispatching events and delivering them.

The apps that cause an event call :func:`event_dispatch` inside their own
transaction: the event and its deliveries are written with the change, and the
deliveries are enqueued only once it commits (a rolled-back change sends nothing). A
delivery's failure is recorded on it and retried by the task; it never fails the
request or the run that caused it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from core.roles import CCO_TEAM, Account, User, is_cco, is_silo_manager
from core.services import validated_save
from core.text import one_line
from notifications import payloads, transport
from notifications.audience import managers_of
from notifications.events import EventName
from notifications.models import (
    HTTP_KINDS,
    OPEN_STATUSES,
    Channel,
    ChannelKind,
    Delivery,
    DeliveryStatus,
    Event,
    Subscription,
)
from notifications.tasks import deliver_task

ReceivingT = TypeVar("ReceivingT", Channel, Subscription)

logger = logging.getLogger(__name__)


def _enqueue(delivery_ids: list[int], countdown: float = 0) -> None:
    def send() -> None:
        for pk in delivery_ids:
            deliver_task.apply_async((pk,), countdown=countdown)

    # robust: a broker that is down must not fail the request that already
    # committed; the resume task enqueues what was left pending.
    transaction.on_commit(send, robust=True)


def _email_recipients(channel: Channel, silo_ids: list[int]) -> list[str]:
    addresses = channel.addresses()
    users = get_user_model().objects.filter(is_active=True).exclude(email="")
    if channel.to_cco_team:
        addresses += users.filter(
            Q(groups__name=CCO_TEAM) | Q(is_superuser=True)
        ).values_list("email", flat=True)
    if channel.to_silo_managers and silo_ids:
        addresses += users.filter(
            pk__in=managers_of(silo_ids).values("pk")
        ).values_list("email", flat=True)
    return sorted(dict.fromkeys(a.lower() for a in addresses))


def choosing(rows: QuerySet[ReceivingT], name: str) -> list[ReceivingT]:
    """The channels or subscriptions of ``rows`` whose events include ``name``.

    PostgreSQL answers in the query (jsonb containment); SQLite, which ``make run``
    uses by default, has no JSON containment lookup, so the list is read and filtered
    here (channels and subscriptions are few: one per channel, one per user).
    """
    if connection.vendor == "postgresql":
        return list(rows.filter(events__contains=[name]))
    return [row for row in rows if name in row.events]


def _subscriptions(event: Event) -> list[Subscription]:
    subscriptions = (
        Subscription.objects.filter(is_active=True, user__is_active=True)
        .exclude(user__email="")
        .select_related("user")
    )
    if event.silo_ids:
        subscriptions = subscriptions.filter(
            Q(user__in=managers_of(event.silo_ids).values("pk"))
            | Q(user__groups__name=CCO_TEAM)
            | Q(user__is_superuser=True)
        ).distinct()
    return choosing(subscriptions, event.name)


def _deliveries(event: Event, channels: Iterable[Channel]) -> list[Delivery]:
    """One delivery per HTTP channel, and one per email address however many email
    channels and subscriptions name it."""
    rows: list[Delivery] = []
    mailed: set[str] = set()

    def mail(address: str, **source: Any) -> None:
        if address not in mailed:
            mailed.add(address)
            rows.append(
                Delivery(
                    event=event,
                    kind=ChannelKind.EMAIL,
                    target=address,
                    recipient=address,
                    **source,
                )
            )

    for channel in channels:
        if channel.kind == ChannelKind.EMAIL:
            for address in _email_recipients(channel, event.silo_ids):
                mail(address, channel=channel)
        else:
            rows.append(
                Delivery(
                    event=event, channel=channel, kind=channel.kind, target=channel.url
                )
            )
    if event.name != EventName.TEST:
        for subscription in _subscriptions(event):
            mail(subscription.user.email.lower(), subscription=subscription)
    return rows


def event_dispatch(
    *,
    name: str,
    title: str,
    text: str = "",
    url: str = "",
    data: dict[str, Any] | None = None,
    silo_ids: Iterable[int] = (),
    key: str | None = None,
    occurred_at: datetime | None = None,
    channel: Channel | None = None,
) -> Event | None:
    """Record an event and a delivery to each active channel and subscription that
    chose it (only ``channel`` for a test), enqueued once the caller's transaction
    commits. Return the event, or None when ``key`` was dispatched before.

    ``data`` is the webhook's ``data``; ``title``, ``text`` and ``url`` (a path is
    made absolute with SITE_URL) are what people read in mail, Slack and Teams.
    """
    if url.startswith("/"):
        url = settings.SITE_URL + url
    data = {**(data or {}), **({"url": url} if url else {})}
    with transaction.atomic():
        event, created = Event.objects.get_or_create(
            key=key or f"{name}:{uuid.uuid4()}",
            defaults={
                "name": name,
                "occurred_at": occurred_at or timezone.now(),
                # Titles become mail subjects: one line, whatever names went in.
                "title": one_line(title)[:300],
                "text": text,
                "url": url[:500],
                "data": data,
                "silo_ids": sorted(set(silo_ids)),
            },
        )
        if not created:
            return None
        channels = (
            [channel]
            if channel is not None
            else choosing(Channel.objects.filter(is_active=True), name)
        )
        rows = Delivery.objects.bulk_create(_deliveries(event, channels))
    _enqueue([row.pk for row in rows])
    return event


def retry_delay(attempts: int, retry_after: float | None = None) -> float:
    """Seconds before attempt ``attempts + 1``: doubling from the base, capped; a
    receiver's Retry-After is honoured up to the cap."""
    base = settings.NOTIFICATIONS_RETRY_BASE_SECONDS
    cap = settings.NOTIFICATIONS_RETRY_MAX_SECONDS
    delay = base * 2 ** max(0, attempts - 1)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return float(min(delay, cap))


def _attempt(delivery: Delivery) -> transport.Outcome:
    if delivery.kind == ChannelKind.EMAIL:
        subject, body = payloads.email(delivery.event)
        return transport.mail(delivery.recipient, subject, body)
    channel = delivery.channel
    if channel is None or channel.kind not in HTTP_KINDS:
        return transport.Outcome(delivered=False, error="The channel was deleted.")
    content, headers = payloads.http_request(delivery, channel.secret)
    return transport.post(channel.url, content, headers)


def delivery_attempt(*, delivery_id: int) -> Delivery | None:
    """Try to deliver one pending delivery once and record the outcome.

    The row is locked for the attempt (others skip it), so a task delivered twice or
    run concurrently sends once; a delivery already delivered, failed or not yet due
    is left alone. A transient failure (no connection, a timeout, 408, 429 or 5xx) is
    retried with a doubling delay up to NOTIFICATIONS_MAX_ATTEMPTS; any other is final.
    Return the delivery, or None when there was nothing to do.
    """
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("event", "channel")
            .filter(pk=delivery_id, status__in=OPEN_STATUSES)
            .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
            .first()
        )
        if delivery is None:
            return None
        switched_off = delivery.channel is not None and not delivery.channel.is_active
        # A test is how the CCO team checks a channel before switching it on.
        if switched_off and delivery.event.name != EventName.TEST:
            outcome = transport.Outcome(
                delivered=False, error="The channel was switched off."
            )
        else:
            try:
                outcome = _attempt(delivery)
            except Exception as exc:  # a stored value must never make the task fail
                logger.exception("Notification %s could not be sent", delivery.uuid)
                outcome = transport.Outcome(
                    delivered=False, error=f"{type(exc).__name__}: {exc}"
                )
        delivery.attempts += 1
        delivery.last_attempt_at = timezone.now()
        delivery.response_code = outcome.code
        delivery.error = outcome.error
        if outcome.delivered:
            delivery.status = DeliveryStatus.DELIVERED
            delivery.delivered_at = delivery.last_attempt_at
            delivery.next_attempt_at = None
        elif (
            outcome.transient
            and delivery.attempts < settings.NOTIFICATIONS_MAX_ATTEMPTS
        ):
            delay = retry_delay(delivery.attempts, outcome.retry_after)
            delivery.status = DeliveryStatus.RETRYING
            delivery.next_attempt_at = delivery.last_attempt_at + timedelta(
                seconds=delay
            )
            _enqueue([delivery.pk], countdown=delay)
        else:
            delivery.status = DeliveryStatus.FAILED
            delivery.next_attempt_at = None
            logger.warning(
                "Notification %s to %s failed: %s",
                delivery.uuid,
                delivery.target,
                outcome.error,
            )
        delivery.save()
    return delivery


def deliveries_resume(*, now: datetime | None = None) -> int:
    """Enqueue the open deliveries that are due and were not picked up (the broker
    was down when they were enqueued, or a worker died). Return how many."""
    now = now or timezone.now()
    grace = now - timedelta(seconds=settings.NOTIFICATIONS_RESUME_AFTER_SECONDS)
    ids = list(
        Delivery.objects.filter(status__in=OPEN_STATUSES)
        .filter(
            Q(next_attempt_at__isnull=True, created_at__lte=grace)
            | Q(next_attempt_at__lte=grace)
        )
        .values_list("pk", flat=True)[:1000]
    )
    for pk in ids:
        deliver_task.delay(pk)
    return len(ids)


def channel_save(*, user: User, channel: Channel | None, **fields: Any) -> Channel:
    """Create or change a channel; an empty ``secret`` keeps the stored one."""
    if channel is not None and not fields.get("secret", "x"):
        fields.pop("secret")
    return validated_save(instance=channel or Channel(), user=user, **fields)


def channel_test(*, channel: Channel, user: User) -> Event:
    """Send a test event to ``channel`` alone (active or not), after commit."""
    event = event_dispatch(
        name=EventName.TEST,
        title=f"Test from ducttape to {channel.name}",
        text=f"{user} sent this test to check that the channel receives ducttape's "
        "notifications.",
        url="/",
        data={"channel": channel.name, "sent_by": str(user)},
        channel=channel,
    )
    assert event is not None  # a fresh key is never a repeat
    return event


def subscription_save(
    *, user: Account, subscription: Subscription | None, **fields: Any
) -> Subscription:
    """Create or change ``user``'s own subscription."""
    if not getattr(user, "email", ""):
        raise ValidationError(
            {
                "events": "Your account has no email address: ask an administrator to add one."
            }
        )
    instance = subscription or Subscription(user=user)
    return validated_save(instance=instance, user=user, **fields)


def may_subscribe(user: User) -> bool:
    """Silo managers and the CCO team may subscribe their own email."""
    return is_cco(user) or is_silo_manager(user)
