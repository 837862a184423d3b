"""API throttling that keeps serving when its counters cannot be reached."""

import logging
from typing import TYPE_CHECKING

from rest_framework.request import Request
from rest_framework.throttling import UserRateThrottle

if TYPE_CHECKING:  # rest_framework.views imports this module through its settings
    from rest_framework.views import APIView

logger = logging.getLogger(__name__)


class ResilientUserRateThrottle(UserRateThrottle):
    """DRF's per-user rate limit, failing open when the cache (Redis) is down.

    The counters live in Redis; while Redis is unreachable the API goes on serving
    reads and accepting uploads (PostgreSQL holds the data) rather than answering 500
    to every request. The outage is logged on each request it lets through.
    """

    def allow_request(self, request: Request, view: "APIView") -> bool:
        try:
            return super().allow_request(request, view)
        except Exception:
            logger.warning(
                "Rate limit not applied: the cache is unreachable", exc_info=True
            )
            return True
