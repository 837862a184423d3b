"""The login lockout's two hooks into django-axes: who the client is, and what a locked
out client is told.

Axes counts failed logins per (username, client address) and refuses the pair once it
reaches ``AXES_FAILURE_LIMIT`` within ``AXES_COOLOFF_TIME`` (settings, "Login lockout").
"""

from __future__ import annotations

import ipaddress
import math
from typing import Any

from axes.helpers import get_client_username, get_cool_off, get_failure_limit
from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

#: The status of a lockout: the client is refused for sending too many attempts, and
#: ``Retry-After`` says for how long.
LOCKED_OUT_STATUS = 429


def client_ip_address(request: HttpRequest) -> str | None:
    """Return the address of the client, as the outermost trusted proxy saw it.

    gunicorn sets ``REMOTE_ADDR`` to the peer of the socket, which behind a reverse
    proxy is the proxy itself: locking that address would lock out every user at once.
    Each proxy appends the address it received the request from to
    ``X-Forwarded-For``, so behind ``TRUSTED_PROXY_COUNT`` proxies the client is the
    entry that many places from the right. Entries further left are whatever the client
    sent, and are ignored: with a forged header a client could otherwise pick a fresh
    address for every attempt. Without trusted proxies (the default) the header is not
    read at all. A header too short or not an address means the request did not come
    through the proxies: the peer's address is used.
    """
    peer = request.META.get("REMOTE_ADDR")
    count = settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return peer
    hops = [
        hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
    ]
    if len(hops) < count:
        return peer
    return _address(hops[-count]) or peer


def _address(text: str) -> str | None:
    """Return ``text`` as a normalised IP address, without a port; None if it is not
    one ("198.51.100.7", "198.51.100.7:443", "[2001:db8::1]:443", "2001:db8::1")."""
    candidates = [text]
    if text.startswith("[") and "]" in text:
        candidates.append(text[1 : text.index("]")])
    elif text.count(":") == 1:
        candidates.append(text.partition(":")[0])
    for candidate in candidates:
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return None


def unlockers() -> str:
    """Return who may lift a lockout, in words: "a superuser or a member of X"."""
    groups = " or ".join(settings.LOCKOUT_ADMIN_GROUPS)
    return f"a superuser or a member of the {groups}" if groups else "a superuser"


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """Return the lockout page: 429 with ``Retry-After``, saying when to try again and
    who can unlock the account sooner (axes' ``AXES_LOCKOUT_CALLABLE``).

    The cool-off counts from the latest failed attempt, and every attempt during the
    lockout (this one included) is such a failure, so the wait ends a cool-off after
    this request.
    """
    cool_off = get_cool_off(request)
    attempted_at = getattr(request, "axes_attempt_time", None) or timezone.now()
    seconds = math.ceil(cool_off.total_seconds())
    context = {
        # The page stands in for the admin's login page and looks like it.
        **admin.site.each_context(request),
        "username": get_client_username(request, credentials) or "",
        "failure_limit": get_failure_limit(request, credentials),
        "retry_at": attempted_at + cool_off,
        "cool_off_minutes": math.ceil(seconds / 60),
        "unlockers": unlockers(),
        "login_path": request.get_full_path(),
    }
    response = render(request, "core/lockout.html", context, status=LOCKED_OUT_STATUS)
    response["Retry-After"] = str(seconds)
    return response
