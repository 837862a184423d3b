"""Dispatch and delivery against a real HTTP receiver on loopback (tasks eager)."""

import hashlib
import hmac
import json

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import transaction

from notifications import services
from notifications.digest import digest_key, digest_send
from notifications.models import Channel, Delivery, Event, Subscription
from tests import factories

pytestmark = pytest.mark.django_db

SECRET = "a-secret-of-32-characters-long!!"


def webhook(url, **fields):
    return Channel.objects.create(
        name=fields.pop("name", "Receiver"),
        kind=fields.pop("kind", "webhook"),
        url=url,
        secret=fields.pop("secret", SECRET),
        events=fields.pop("events", ["conflict.new"]),
        **fields,
    )


def dispatch(capture, **fields):
    fields.setdefault("name", "conflict.new")
    fields.setdefault("title", "New conflict")
    with capture(execute=True):
        return services.event_dispatch(**fields)


def test_a_webhook_gets_the_documented_body_headers_and_a_signature_it_can_verify(
    receiver, django_capture_on_commit_callbacks
):
    channel = webhook(receiver.url)

    event = dispatch(
        django_capture_on_commit_callbacks,
        title="New conflict",
        data={"leader_kpi": "sales.deals", "affected_kpi": "support.backlog"},
        url="/report/conflicts/7/",
    )

    (request,) = receiver.wait_for(1)
    delivery = Delivery.objects.get()
    assert json.loads(request.body) == {
        "event": "conflict.new",
        "occurred_at": event.occurred_at.isoformat(),
        "data": {
            "leader_kpi": "sales.deals",
            "affected_kpi": "support.backlog",
            "url": "http://127.0.0.1:8000/report/conflicts/7/",
        },
    }
    assert request.headers["X-Ducttape-Event"] == "conflict.new"
    assert request.headers["X-Ducttape-Delivery"] == str(delivery.uuid)
    expected = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Ducttape-Signature"] == f"sha256={expected}"
    assert request.headers["Content-Type"] == "application/json"
    assert (delivery.channel, delivery.status, delivery.attempts) == (
        channel,
        "delivered",
        1,
    )
    assert delivery.response_code == 200


def test_slack_gets_text_and_blocks_with_a_link(
    receiver, django_capture_on_commit_callbacks
):
    webhook(receiver.url, kind="slack", secret="")

    dispatch(
        django_capture_on_commit_callbacks,
        title="New conflict <sales>",
        text="Deals & backlog",
        url="/report/conflicts/7/",
    )

    (request,) = receiver.wait_for(1)
    link = "http://127.0.0.1:8000/report/conflicts/7/"
    assert json.loads(request.body) == {
        "text": f"New conflict &lt;sales&gt;: Deals &amp; backlog <{link}|Open in ducttape>",
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "*New conflict &lt;sales&gt;*\nDeals &amp; backlog",
                },
            },
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open in ducttape"},
                        "url": link,
                    }
                ],
            },
        ],
    }
    assert "X-Ducttape-Signature" not in request.headers


def test_teams_gets_an_adaptive_card_with_an_open_url_action(
    receiver, django_capture_on_commit_callbacks
):
    webhook(receiver.url, kind="teams", secret="")

    dispatch(
        django_capture_on_commit_callbacks,
        title="New conflict",
        text="Deals hurt backlog",
        url="/report/conflicts/7/",
    )

    (request,) = receiver.wait_for(1)
    body = json.loads(request.body)
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["contentUrl"] is None
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.2")
    assert [block["text"] for block in card["body"]] == [
        "New conflict",
        "Deals hurt backlog",
    ]
    assert card["actions"] == [
        {
            "type": "Action.OpenUrl",
            "title": "Open in ducttape",
            "url": "http://127.0.0.1:8000/report/conflicts/7/",
        }
    ]


def test_a_rolled_back_change_sends_nothing(
    receiver, django_capture_on_commit_callbacks
):
    webhook(receiver.url)

    def change_that_fails() -> None:
        with transaction.atomic():
            services.event_dispatch(name="conflict.new", title="Never")
            raise RuntimeError("the change fails")

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
    ):
        change_that_fails()

    assert callbacks == []
    assert (Event.objects.count(), Delivery.objects.count()) == (0, 0)
    assert receiver.requests == []


@pytest.mark.parametrize(
    ("status", "outcome", "attempts"),
    [
        (404, "failed", 1),
        (400, "failed", 1),
        (503, "retrying", 1),
        (429, "retrying", 1),
    ],
)
def test_a_4xx_is_final_and_a_503_or_429_is_retried(
    receiver, django_capture_on_commit_callbacks, status, outcome, attempts
):
    receiver.statuses = [status]
    webhook(receiver.url)

    dispatch(django_capture_on_commit_callbacks)

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_code) == (
        outcome,
        attempts,
        status,
    )
    assert delivery.error == f"The receiver answered {status}: busy"
    assert (delivery.next_attempt_at is not None) == (outcome == "retrying")


def test_retries_stop_after_the_maximum_attempts(
    receiver, settings, django_capture_on_commit_callbacks
):
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 3
    receiver.statuses = [503]
    webhook(receiver.url)
    dispatch(django_capture_on_commit_callbacks)
    delivery = Delivery.objects.get()

    for _ in range(5):  # as the scheduled retries would, once due
        Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=None)
        services.delivery_attempt(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    assert len(receiver.requests) == 3


def test_retry_delays_double_up_to_the_cap_and_honour_retry_after(settings):
    settings.NOTIFICATIONS_RETRY_BASE_SECONDS = 30
    settings.NOTIFICATIONS_RETRY_MAX_SECONDS = 3600
    assert [services.retry_delay(n) for n in range(1, 9)] == [
        30,
        60,
        120,
        240,
        480,
        960,
        1920,
        3600,
    ]
    assert services.retry_delay(1, retry_after=90) == 90
    assert services.retry_delay(1, retry_after=10**6) == 3600


def test_a_redirect_is_not_followed(
    receiver, other_receiver, django_capture_on_commit_callbacks
):
    receiver.statuses = [302]
    receiver.extra_headers = {"Location": other_receiver.url}
    webhook(receiver.url)

    dispatch(django_capture_on_commit_callbacks)

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.response_code) == ("failed", 302)
    assert (
        delivery.error
        == "The receiver answered 302 (a redirect, which is not followed)."
    )
    assert len(receiver.requests) == 1
    assert other_receiver.requests == []


def test_a_closed_port_is_a_transient_failure_that_never_reaches_the_caller(
    django_capture_on_commit_callbacks,
):
    webhook("http://127.0.0.1:9/hook")  # the discard port: nothing listens

    event = dispatch(django_capture_on_commit_callbacks)

    delivery = Delivery.objects.get()
    assert event is not None
    assert (delivery.status, delivery.attempts, delivery.response_code) == (
        "retrying",
        1,
        None,
    )
    assert delivery.error.startswith("ConnectionError: ")


def test_private_addresses_are_refused_unless_allowed(
    receiver, settings, django_capture_on_commit_callbacks
):
    import socket

    settings.NOTIFICATIONS_ALLOW_PRIVATE_URLS = False
    for url, message in [
        (
            "http://127.0.0.1:8080/",
            "The URL points at a private network address: use a public one.",
        ),
        (
            "http://10.1.2.3/",
            "The URL points at a private network address: use a public one.",
        ),
        (
            "http://[::1]/",
            "The URL points at a private network address: use a public one.",
        ),
        (
            "http://169.254.169.254/latest/",
            "The URL points at a private network address: use a public one.",
        ),
        (
            "http://localhost:8000/",
            "The URL points at this server: use a public address.",
        ),
        ("ftp://example.com/", "Use an http or https URL."),
        ("https://user:pw@example.com/", "Put no user name or password in the URL."),
    ]:
        channel = Channel(name="x", kind="webhook", url=url, secret=SECRET, events=[])
        with pytest.raises(ValidationError) as error:
            channel.full_clean()
        assert error.value.message_dict["url"] == [message], url

    # A name that resolves to a private address is refused when sending.
    host = socket.gethostname()
    channel = webhook(f"http://{host}:{receiver.server.server_address[1]}/hook")
    dispatch(django_capture_on_commit_callbacks)
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert delivery.error == f"{host} resolves to a private network address: refused."
    assert receiver.requests == []
    assert channel.deliveries.count() == 1


def test_a_webhook_needs_a_secret_and_known_events():
    channel = Channel(
        name="x",
        kind="webhook",
        url="https://example.com/",
        secret="short",
        events=["nope"],
    )
    with pytest.raises(ValidationError) as error:
        channel.full_clean()
    assert error.value.message_dict == {
        "events": [
            "Unknown event 'nope'; choose among: conflict.new, conflict.high, "
            "conflict.status_changed, cycle.phase_changed, signoff.voided, "
            "guardrail.breached, digest."
        ],
        "secret": [
            "A webhook needs a secret of at least 16 characters to sign its body."
        ],
    }


def test_the_default_email_channel_mails_the_cco_team_and_the_silos_managers(
    django_capture_on_commit_callbacks, silo_a, silo_b, manager_a, manager_b, cco
):
    factories.silo_manager(factories.SiloFactory(), email="other@example.com")
    factories.UserFactory(username="nobody", email="nobody@example.com")

    dispatch(
        django_capture_on_commit_callbacks,
        name="conflict.high",
        title="High\r\nBcc: x@example.com",
        text="Plain words.",
        silo_ids=[silo_a.pk],
    )

    assert sorted(m.to[0] for m in mail.outbox) == [cco.email, manager_a.email]
    assert {m.subject for m in mail.outbox} == {"ducttape: High Bcc: x@example.com"}
    assert mail.outbox[0].body == "Plain words."
    assert list(Delivery.objects.values_list("status", flat=True)) == ["delivered"] * 2


def test_subscriptions_reach_managers_for_their_own_silos_only(
    django_capture_on_commit_callbacks, silo_a, silo_b, manager_a, manager_b, cco
):
    for user in (manager_a, manager_b, cco):
        Subscription.objects.create(
            user=user, events=["conflict.new", "cycle.phase_changed"]
        )

    dispatch(django_capture_on_commit_callbacks, silo_ids=[silo_a.pk])
    assert sorted(m.to[0] for m in mail.outbox) == sorted([manager_a.email, cco.email])

    mail.outbox.clear()
    dispatch(
        django_capture_on_commit_callbacks, name="cycle.phase_changed", title="Phase"
    )
    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        [manager_a.email, manager_b.email, cco.email]
    )

    mail.outbox.clear()
    dispatch(django_capture_on_commit_callbacks, name="guardrail.breached", title="G")
    assert mail.outbox == []


def test_a_key_dispatched_before_creates_nothing(
    receiver, django_capture_on_commit_callbacks
):
    webhook(receiver.url, events=["digest"])

    first = dispatch(
        django_capture_on_commit_callbacks, name="digest", key="digest:2026-W49"
    )
    again = dispatch(
        django_capture_on_commit_callbacks, name="digest", key="digest:2026-W49"
    )

    assert first is not None
    assert again is None
    assert (Event.objects.count(), Delivery.objects.count()) == (1, 1)
    assert len(receiver.requests) == 1


def test_a_delivery_attempted_twice_sends_once(
    receiver, django_capture_on_commit_callbacks
):
    webhook(receiver.url)
    dispatch(django_capture_on_commit_callbacks)
    delivery = Delivery.objects.get()

    assert services.delivery_attempt(delivery_id=delivery.pk) is None

    assert len(receiver.requests) == 1


def test_the_test_action_reaches_one_channel_even_when_it_is_off(
    receiver, other_receiver, cco, django_capture_on_commit_callbacks
):
    channel = webhook(receiver.url, events=[], is_active=False)
    webhook(other_receiver.url, name="Other", events=["conflict.new", "digest"])

    with django_capture_on_commit_callbacks(execute=True):
        event = services.channel_test(channel=channel, user=cco)

    (request,) = receiver.wait_for(1)
    assert json.loads(request.body)["data"] == {
        "channel": "Receiver",
        "sent_by": "cco",
        "url": "http://127.0.0.1:8000/",
    }
    assert event.name == "test"
    assert other_receiver.requests == []


def test_the_digest_is_keyed_by_iso_week_and_lists_each_section(
    receiver, django_capture_on_commit_callbacks, silo_a, silo_b
):
    import datetime as dt

    webhook(receiver.url, events=["digest"])
    monday = dt.datetime(2026, 11, 30, 8, tzinfo=dt.UTC)

    with django_capture_on_commit_callbacks(execute=True):
        event = digest_send(monday)
    with django_capture_on_commit_callbacks(execute=True):
        assert digest_send(monday + dt.timedelta(days=3)) is None

    assert digest_key(monday) == "digest:2026-W49"
    assert event.title == "Weekly digest, 2026-W49"
    sections = json.loads(receiver.wait_for(1)[0].body)["data"]["sections"]
    assert {name: s["count"] for name, s in sections.items()} == {
        "goals_off_pace": 0,
        "cycles_waiting": 0,
        "open_conflicts": 0,
    }
    assert event.text.splitlines() == [
        "Goals off pace: 0",
        "Cycles waiting for sign-offs: 0",
        "Open conflicts: 0",
    ]
