"""Each channel kind's body for an event, in the format its product documents.

- Slack incoming webhooks take ``text`` (the notification's fallback) and Block Kit
  ``blocks``; mrkdwn needs ``&``, ``<`` and ``>`` escaped.
- Microsoft Teams incoming webhooks (and Workflows) take a ``message`` whose
  attachment is an Adaptive Card (version 1.2, which every Teams client renders).
- A generic webhook gets ``{"event", "occurred_at", "data"}``, signed with the
  channel's secret: ``X-Ducttape-Signature: sha256=<hex HMAC-SHA256 of the raw body>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from notifications.models import ChannelKind, Delivery, Event

OPEN_LABEL = "Open in ducttape"


def signature(secret: str, body: bytes) -> str:
    """The X-Ducttape-Signature value of ``body``: ``sha256=<hex digest>``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack(event: Event) -> dict[str, Any]:
    title, text = _slack_escape(event.title), _slack_escape(event.text)
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"*{title}*\n{text}"[:3000]},
        }
    ]
    if event.url:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": OPEN_LABEL},
                        "url": event.url,
                    }
                ],
            }
        )
    fallback = f"{title}: {text}" + (
        f" <{event.url}|{OPEN_LABEL}>" if event.url else ""
    )
    return {"text": fallback, "blocks": blocks}


def teams(event: Event) -> dict[str, Any]:
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.2",
        "body": [
            {
                "type": "TextBlock",
                "text": event.title,
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
            },
            {"type": "TextBlock", "text": event.text, "wrap": True},
        ],
    }
    if event.url:
        card["actions"] = [
            {"type": "Action.OpenUrl", "title": OPEN_LABEL, "url": event.url}
        ]
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


def webhook(event: Event) -> dict[str, Any]:
    return {
        "event": event.name,
        "occurred_at": event.occurred_at.isoformat(),
        "data": event.data,
    }


BUILDERS = {
    ChannelKind.SLACK: slack,
    ChannelKind.TEAMS: teams,
    ChannelKind.WEBHOOK: webhook,
}


def http_request(delivery: Delivery, secret: str) -> tuple[bytes, dict[str, str]]:
    """The raw body and headers of an HTTP delivery."""
    event = delivery.event
    body = json.dumps(
        BUILDERS[ChannelKind(delivery.kind)](event), separators=(",", ":")
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Ducttape-Event": event.name,
        "X-Ducttape-Delivery": str(delivery.uuid),
    }
    if delivery.kind == ChannelKind.WEBHOOK:
        headers["X-Ducttape-Signature"] = signature(secret, body)
    return body, headers


def email(event: Event) -> tuple[str, str]:
    """An email's subject and body."""
    body = event.text + (f"\n\n{OPEN_LABEL}: {event.url}" if event.url else "")
    return f"ducttape: {event.title}"[:200], body
