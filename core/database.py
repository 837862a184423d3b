"""What "the database is unavailable" means, and the one answer every layer gives to it.

PostgreSQL stopped, restarting, unreachable or refusing connections reaches Django as
``OperationalError`` (connecting failed, the server closed the connection, a timeout)
or ``InterfaceError`` (a connection that is already closed was used). Both are
transient: the same request succeeds once the database is back, so the API, the pages
and the probes answer 503 with ``Retry-After`` instead of a 500, and Celery tasks retry
(see ``core.tasks``). psycopg also reports a deadlock, a serialization failure, a
lock or statement timeout as ``OperationalError``: equally transient, equally worth a
retry. Errors in the data or the SQL (``IntegrityError``, ``DataError``,
``ProgrammingError``) are not among them: retrying cannot help those.
"""

from __future__ import annotations

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

#: The exceptions that mean "the database cannot serve this now; try again later".
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (OperationalError, InterfaceError)

#: Seconds a client is asked to wait before it tries again (the ``Retry-After`` header).
RETRY_AFTER_SECONDS = 5

#: The message a person reads; it names no host, port or driver.
UNAVAILABLE_DETAIL = (
    f"The database is not available right now. Try again in {RETRY_AFTER_SECONDS} "
    "seconds."
)


def is_database_unavailable(error: BaseException | None) -> bool:
    """Return whether ``error`` means the database is (for now) out of reach."""
    return isinstance(error, DATABASE_UNAVAILABLE)


def first_line(error: BaseException) -> str:
    """Return the first line of ``error``'s message, for a one-line log entry."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def unavailable_response(request: HttpRequest) -> HttpResponse:
    """Return the 503 for ``request``: JSON under /api/, a short plain text elsewhere.

    No template and no static file: rendering must not need anything that might be
    broken too, and a page of the admin's look would need its stylesheets' manifest.
    """
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(
            {"detail": UNAVAILABLE_DETAIL}, status=503
        )
    else:
        response = HttpResponse(
            f"Service unavailable. {UNAVAILABLE_DETAIL}\n",
            status=503,
            content_type="text/plain; charset=utf-8",
        )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    # A proxy or browser must not serve this answer again once the database is back.
    response["Cache-Control"] = "no-store"
    return response
