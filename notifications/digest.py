"""The weekly digest: sections registered by the apps that know their content.

Each app registers a section in its AppConfig.ready (open conflicts, goals off pace,
cycles waiting for sign-offs); the digest sends what they say once per ISO week, at the day and hour that settings give
(NOTIFICATIONS_DIGEST_DAY, NOTIFICATIONS_DIGEST_HOUR; Celery beat).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from notifications.events import EventName
from notifications.models import Event


@dataclass(frozen=True)
class Section:
    """What one app has to say this week: a heading, a count, a few lines."""

    heading: str
    count: int
    lines: list[str] = field(default_factory=list)
    url: str = ""


Builder = Callable[[datetime], Section]
_SECTIONS: dict[str, Builder] = {}


def register_section(name: str, build: Builder) -> None:
    """Add (or replace) the digest section ``name``, built at sending time."""
    _SECTIONS[name] = build


def digest_key(now: datetime) -> str:
    year, week, _ = timezone.localtime(now).isocalendar()
    return f"digest:{year}-W{week:02d}"


def digest_send(now: datetime | None = None) -> Event | None:
    """Dispatch this ISO week's digest; None when it was sent already this week."""
    from notifications.services import event_dispatch

    now = now or timezone.now()
    sections = [(name, build(now)) for name, build in _SECTIONS.items()]
    lines: list[str] = []
    for _name, section in sections:
        lines.append(f"{section.heading}: {section.count}")
        lines.extend(f"- {line}" for line in section.lines)
    key = digest_key(now)
    return event_dispatch(
        name=EventName.DIGEST,
        key=key,
        title=f"Weekly digest, {key.split(':', 1)[1]}",
        text="\n".join(lines),
        url="/",
        data={
            "week": key.split(":", 1)[1],
            "sections": {
                name: {
                    "heading": s.heading,
                    "count": s.count,
                    "lines": s.lines,
                    "url": s.url,
                }
                for name, s in sections
            },
        },
        occurred_at=now,
    )
