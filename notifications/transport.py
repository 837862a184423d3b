"""How a delivery leaves: an HTTP POST without redirects, to a public address only
(unless settings allow private ones), or one email; and what its outcome means.

A webhook URL is typed by a person, so the server must not become a way into the
company network (server-side request forgery): a URL whose host is, or resolves to,
a loopback, private, link-local or reserved address is refused unless
``NOTIFICATIONS_ALLOW_PRIVATE_URLS`` is set (tests and on-premises receivers). The
check resolves the name just before the POST; a DNS answer that changes between the
check and the connection (rebinding) is not caught, which the README says.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.mail import EmailMessage

#: Seconds to connect and to wait for the answer: a slow receiver must not hold a
#: worker for long (the delivery is retried instead).
CONNECT_TIMEOUT = 3.05
READ_TIMEOUT = 10
#: Answers worth trying again: the receiver is busy or briefly down.
TRANSIENT_CODES = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = "ducttape-notifications/1"


@dataclass(frozen=True)
class Outcome:
    """What one attempt gave: ``delivered``; else ``transient`` says whether trying
    again may help. ``retry_after`` is the receiver's own Retry-After, in seconds."""

    delivered: bool
    transient: bool = False
    code: int | None = None
    error: str = ""
    retry_after: float | None = None


def _private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return not ip.is_global or ip.is_multicast


def url_problem(url: str) -> str:
    """Return why ``url`` may not receive notifications, or "" (no DNS lookup)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError:
        return "This is not a valid URL."
    if parts.scheme not in ("http", "https"):
        return "Use an http or https URL."
    if not parts.hostname:
        return "The URL has no host."
    if parts.username or parts.password:
        return "Put no user name or password in the URL."
    if settings.NOTIFICATIONS_ALLOW_PRIVATE_URLS:
        return ""
    host = parts.hostname
    if host == "localhost" or host.endswith(".localhost"):
        return "The URL points at this server: use a public address."
    try:
        if _private(host):
            return "The URL points at a private network address: use a public one."
    except ValueError:
        pass  # a name, resolved when sending
    return ""


def _address_problem(url: str) -> str:
    if settings.NOTIFICATIONS_ALLOW_PRIVATE_URLS:
        return ""
    parts = urlsplit(url)
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443)
    except OSError as exc:
        return f"Cannot resolve {parts.hostname}: {exc}"
    if any(_private(str(info[4][0])) for info in infos):
        return f"{parts.hostname} resolves to a private network address: refused."
    return ""


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def post(url: str, body: bytes, headers: dict[str, str]) -> Outcome:
    """POST ``body`` to ``url`` once and say what came of it (never raises)."""
    problem = url_problem(url) or _address_problem(url)
    if problem:
        return Outcome(delivered=False, error=problem)
    try:
        response = requests.post(
            url,
            data=body,
            headers={"User-Agent": USER_AGENT, **headers},
            timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
            # A redirect could lead anywhere, past the address check.
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        return Outcome(
            delivered=False, transient=True, error=f"{type(exc).__name__}: {exc}"
        )
    code = response.status_code
    if 200 <= code < 300:
        return Outcome(delivered=True, code=code)
    detail = response.text[:500]
    if 300 <= code < 400:
        return Outcome(
            delivered=False,
            code=code,
            error=f"The receiver answered {code} (a redirect, which is not followed).",
        )
    return Outcome(
        delivered=False,
        transient=code in TRANSIENT_CODES,
        code=code,
        error=f"The receiver answered {code}: {detail}".rstrip(": "),
        retry_after=_retry_after(response),
    )


def mail(to: str, subject: str, body: str) -> Outcome:
    """Send one email to ``to`` and say what came of it (never raises)."""
    try:
        EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [to]).send()
    except OSError as exc:  # smtplib's errors are OSErrors, as are refused connections
        return Outcome(
            delivered=False, transient=True, error=f"{type(exc).__name__}: {exc}"
        )
    return Outcome(delivered=True)
