"""Channels, subscriptions, the events dispatched to them and each delivery's log."""

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from django.db.models import Q

from core.bounds import LONG_TEXT_MAX, length_check
from notifications.events import SUBSCRIBABLE, EventName
from notifications.transport import url_problem


class ChannelKind(models.TextChoices):
    EMAIL = "email", "Email"
    SLACK = "slack", "Slack incoming webhook"
    TEAMS = "teams", "Microsoft Teams incoming webhook"
    WEBHOOK = "webhook", "Signed webhook (JSON)"


#: Kinds that POST to ``url``.
HTTP_KINDS = (ChannelKind.SLACK, ChannelKind.TEAMS, ChannelKind.WEBHOOK)
SECRET_MIN_LENGTH = 16


def events_problem(events: object) -> str:
    """Return what is wrong with a list of event names, or ""."""
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        return "Give a list of event names."
    unknown = sorted(set(events) - set(SUBSCRIBABLE))
    if unknown:
        return (
            f"Unknown event {', '.join(map(repr, unknown))}; choose among: "
            f"{', '.join(SUBSCRIBABLE)}."
        )
    return ""


class Receiving(models.Model):
    """What channels and subscriptions share: the events chosen, and a switch."""

    events = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    def events_errors(self) -> dict[str, str]:
        problem = events_problem(self.events)
        return {"events": problem} if problem else {}


class Channel(Receiving):
    """Where the CCO team sends events: an email list, a Slack or Teams channel's
    incoming webhook, or a signed webhook that a company system receives.

    An email channel mails the addresses in ``email_to`` and, if asked, the CCO team
    and the managers of the silos an event concerns. ``secret`` signs a webhook's body
    (HMAC-SHA256); the API never returns it.
    """

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=ChannelKind.choices)
    url = models.URLField(
        max_length=500,
        blank=True,
        help_text="The incoming webhook's address (http or https); empty for email.",
    )
    secret = models.CharField(
        max_length=200,
        blank=True,
        help_text="Signs a webhook's body (X-Ducttape-Signature); at least 16 characters.",
    )
    email_to = models.TextField(
        blank=True,
        max_length=LONG_TEXT_MAX,
        help_text="Email addresses, separated by commas or new lines.",
    )
    to_cco_team = models.BooleanField(
        default=False, help_text="Email: also mail every active CCO team member."
    )
    to_silo_managers = models.BooleanField(
        default=False,
        help_text="Email: also mail the managers of the silos the event concerns.",
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            length_check("email_to", LONG_TEXT_MAX, "channel_email_to_length")
        ]

    def __str__(self) -> str:
        return self.name

    def addresses(self) -> list[str]:
        """The addresses written in ``email_to``, in order, without repeats."""
        raw = self.email_to.replace("\n", ",").replace(";", ",")
        return list(dict.fromkeys(a.strip() for a in raw.split(",") if a.strip()))

    def clean(self) -> None:
        errors = self.events_errors()
        if self.kind in HTTP_KINDS:
            if not self.url:
                errors["url"] = f"A {self.get_kind_display()} channel needs its URL."
            else:
                problem = url_problem(self.url)
                if problem:
                    errors["url"] = problem
        elif self.kind == ChannelKind.EMAIL:
            if self.url:
                errors["url"] = "An email channel has no URL: leave it empty."
            for address in self.addresses():
                try:
                    validate_email(address)
                except ValidationError:
                    errors["email_to"] = f"{address!r} is not an email address."
                    break
            if not (self.addresses() or self.to_cco_team or self.to_silo_managers):
                errors["email_to"] = (
                    "Say whom to mail: addresses, the CCO team or the silos' managers."
                )
        if self.kind == ChannelKind.WEBHOOK and len(self.secret) < SECRET_MIN_LENGTH:
            errors["secret"] = (
                f"A webhook needs a secret of at least {SECRET_MIN_LENGTH} characters "
                "to sign its body."
            )
        if errors:
            raise ValidationError(errors)


class Subscription(Receiving):
    """A user's own email subscription to events about their silos.

    An event that names silos reaches the subscriber only if they manage one of them
    (the CCO team: all); an event about no silo in particular (a phase change, the
    digest) reaches every subscriber who chose it.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notification_subscription",
    )

    class Meta:
        ordering = ["user__username"]

    def __str__(self) -> str:
        return f"{self.user}'s subscription"

    def clean(self) -> None:
        errors = self.events_errors()
        if errors:
            raise ValidationError(errors)


class Event(models.Model):
    """Something that happened, as the services that caused it described it.

    ``key`` is unique: dispatching an event whose key exists already (the digest of a
    week sent twice, a sign-off voided again) creates nothing new.
    """

    name = models.CharField(max_length=40, choices=EventName.choices)
    key = models.CharField(max_length=200, unique=True)
    occurred_at = models.DateTimeField()
    title = models.CharField(max_length=300)
    text = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True)
    data = models.JSONField(default=dict)
    silo_ids = models.JSONField(default=list)

    class Meta:
        ordering = ["-occurred_at", "-pk"]
        indexes = [models.Index(fields=["name", "-occurred_at"])]

    def __str__(self) -> str:
        return f"{self.name}: {self.title}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RETRYING = "retrying", "Retrying"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


OPEN_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.RETRYING)


class Delivery(models.Model):
    """One event sent to one channel (or one email recipient of it), with its log.

    ``uuid`` goes out as X-Ducttape-Delivery so that a receiver can drop a repeat.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    event = models.ForeignKey(
        Event, on_delete=models.CASCADE, related_name="deliveries"
    )
    channel = models.ForeignKey(
        Channel,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
    )
    subscription = models.ForeignKey(
        Subscription,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
    )
    # Kept beside the foreign keys: the log still says where it went once a channel
    # or subscription is deleted.
    kind = models.CharField(max_length=10, choices=ChannelKind.choices)
    target = models.CharField(max_length=500, blank=True)
    recipient = models.EmailField(blank=True)
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "deliveries"
        indexes = [models.Index(fields=["status", "next_attempt_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["event", "channel", "recipient"],
                condition=Q(channel__isnull=False),
                name="delivery_once_per_channel_recipient",
            ),
            models.UniqueConstraint(
                fields=["event", "subscription"],
                condition=Q(subscription__isnull=False),
                name="delivery_once_per_subscription",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event.name} to {self.recipient or self.target} ({self.status})"
