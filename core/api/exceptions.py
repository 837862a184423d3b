"""One JSON error format for the whole API, 4xx (never 500) for refusals the
database or Django raise below DRF, and 503 with Retry-After while the database is
unavailable."""

import logging
from typing import Any

from django.core.exceptions import (
    RequestDataTooBig,
    TooManyFieldsSent,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import ProtectedError, RestrictedError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from core.database import (
    RETRY_AFTER_SECONDS,
    UNAVAILABLE_DETAIL,
    is_database_unavailable,
)

logger = logging.getLogger(__name__)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Return DRF's response for API errors, a JSON 4xx for known refusals, and a
    JSON 503 with Retry-After when the database is unavailable."""
    response = exception_handler(exc, context)
    if response is not None:
        return response
    if is_database_unavailable(exc):
        # PostgreSQL is down or unreachable (raised as early as token authentication):
        # a client that waits and sends the same request again will succeed.
        logger.warning(
            "Database unavailable, answered 503: %s %s: %s",
            context["request"].method,
            context["request"].path,
            _first_line(exc),
        )
        return Response(
            {"detail": UNAVAILABLE_DETAIL},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={
                "Retry-After": str(RETRY_AFTER_SECONDS),
                "Cache-Control": "no-store",
            },
        )
    if isinstance(exc, DjangoValidationError):
        # Model validation in services: the same shape as a serializer's errors.
        detail = (
            exc.message_dict
            if hasattr(exc, "error_dict")
            else {"non_field_errors": exc.messages}
        )
        body = {
            ("non_field_errors" if field == "__all__" else field): messages
            for field, messages in detail.items()
        }
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, (ProtectedError, RestrictedError)):
        dependents = (
            exc.protected_objects
            if isinstance(exc, ProtectedError)
            else exc.restricted_objects
        )
        blockers = sorted(
            {str(type(obj)._meta.verbose_name_plural) for obj in dependents}
        )
        return Response(
            {
                "detail": "Cannot delete: other records depend on it "
                f"({', '.join(blockers)}). Remove those first."
            },
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, IntegrityError):
        return Response(
            {"detail": f"The change conflicts with existing data: {_first_line(exc)}"},
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, (RequestDataTooBig, TooManyFieldsSent)):
        return Response(
            {"detail": "The request body is too large."},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    return None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
