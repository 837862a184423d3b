"""Middleware of project-wide plumbing."""

from __future__ import annotations

import codecs
import logging
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

from core.database import first_line, is_database_unavailable, unavailable_response

logger = logging.getLogger(__name__)


class DatabaseUnavailableMiddleware:
    """Answer 503 with ``Retry-After`` when a view fails because the database is down.

    Covers every view and the rendering of its response: the admin, the report and
    cycle pages, a session or a user loaded lazily from the database, and API errors
    that DRF's exception handler leaves unhandled (it maps these itself, see
    ``core.api.exceptions``). Without it Django answers 500 and logs a traceback
    per request for as long as the outage lasts; here each request logs one line.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponse | None:
        """Return the 503 for a database outage; let every other error through."""
        if not is_database_unavailable(exception):
            return None
        logger.warning(
            "Database unavailable, answered 503: %s %s: %s",
            request.method,
            request.path,
            first_line(exception),
        )
        return unavailable_response(request)


# --- Request encodings (issue 10, point 9) ---------------------------------------------

URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
URLENCODED_ONLY_UTF8 = (
    "Form data (application/x-www-form-urlencoded) must be UTF-8: send it without a "
    "charset, or with charset=utf-8."
)
MULTIPART_ASCII_COMPATIBLE = (
    "Form data (multipart/form-data) must be in an ASCII-compatible charset such as "
    "UTF-8: send it without a charset, or with charset=utf-8."
)
UNKNOWN_CHARSET = (
    "The request declares a charset this server cannot decode: send UTF-8 "
    "(charset=utf-8)."
)
#: Every printable ASCII character and the whitespace of form bodies: an
#: ASCII-compatible charset reads and writes them as ASCII does.
_ASCII_SAMPLE = bytes(range(0x20, 0x7F)) + b"\t\r\n"


def is_ascii_compatible(codec: codecs.CodecInfo) -> bool:
    """Return whether ``codec`` encodes ASCII text as ASCII (UTF-8 and Latin-1 do;
    UTF-16, UTF-32, UTF-7 and EBCDIC do not, nor do bytes-to-bytes codecs like base64)."""
    text = _ASCII_SAMPLE.decode("ascii")
    try:
        return codec.encode(text)[0] == _ASCII_SAMPLE and (
            codec.decode(_ASCII_SAMPLE)[0] == text
        )
    except Exception:
        # A codec may raise anything (binascii.Error, zlib.error, TypeError for the
        # bytes-to-bytes ones): none of them is ASCII-compatible.
        return False


def form_encoding_problem(request: HttpRequest) -> str | None:
    """Return why the form body of ``request`` cannot be read as declared, or None.

    A UTF-8 urlencoded body declared under another spelling ("utf8", "UTF_8") is read
    as UTF-8: Django itself accepts only the exact name "utf-8".
    """
    if request.content_type not in (URLENCODED, MULTIPART):
        return None
    # Django parses content_params with content_type: a dict whenever that is set.
    assert request.content_params is not None
    charset = request.content_params.get("charset")
    if charset is None:
        return None
    try:
        codec = codecs.lookup(charset)
    except LookupError:
        return UNKNOWN_CHARSET
    if request.content_type == URLENCODED:
        if codec.name != "utf-8":
            return URLENCODED_ONLY_UTF8
        request.encoding = "utf-8"
        return None
    return None if is_ascii_compatible(codec) else MULTIPART_ASCII_COMPATIBLE


class FormEncodingMiddleware:
    """Answer 400 to a form body in a charset Django cannot read.

    Django reads ``application/x-www-form-urlencoded`` as UTF-8 only and raises
    ``BadRequest`` for another declared charset, but does not remember that failure:
    the 400 handler (``requires_csrf_token``) runs the CSRF check again, which reads
    the body again and fails again, and the error escapes every handler (gunicorn's
    bare 500). Multipart bodies in a charset that is not ASCII-compatible (UTF-16,
    UTF-32, EBCDIC) are decoded into garbage. So this middleware, placed before
    anything that reads ``request.POST`` (sessions, CSRF, axes), refuses both, and a
    charset Python does not know, with a short message: JSON under /api/, plain text
    elsewhere.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        problem = form_encoding_problem(request)
        if problem is None:
            return self.get_response(request)
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": problem}, status=400)
        return HttpResponseBadRequest(problem, content_type="text/plain; charset=utf-8")


# --- Permissions-Policy (issue 10, point 8) --------------------------------------------


def permissions_policy_header(policy: dict[str, list[str]]) -> str:
    """Return ``policy`` ({feature: [allowed origins]}) as a Permissions-Policy header:
    ``[]`` turns the feature off (``camera=()``), ``["self"]`` allows this site."""
    parts = []
    for feature, origins in policy.items():
        allowed = " ".join(
            origin if origin in ("self", "*") else f'"{origin}"' for origin in origins
        )
        parts.append(f"{feature}=({allowed})")
    return ", ".join(parts)


class PermissionsPolicyMiddleware:
    """Send ``Permissions-Policy`` (settings.PERMISSIONS_POLICY) on every response.

    ducttape's pages use no camera, microphone, location, payment or other powerful
    browser feature: switching them off means that a script that does get injected
    cannot ask for them either.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.header = permissions_policy_header(settings.PERMISSIONS_POLICY)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", self.header)
        return response
