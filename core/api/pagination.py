"""Pagination for BI tools: limit/offset from a fixed URL, pages capped at 10,000 rows."""

from rest_framework.pagination import LimitOffsetPagination


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """``?limit=&offset=`` with a default of 100 rows and at most 10,000 per page."""

    default_limit = 100
    max_limit = 10_000
