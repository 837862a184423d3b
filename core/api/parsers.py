"""JSON parsing that answers every malformed body with a 400."""

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class SafeJSONParser(JSONParser):
    """DRF's JSON parser, turning pathologically nested bodies into a 400.

    A body of a hundred thousand nested brackets is small, valid JSON syntax and makes
    Python's parser raise RecursionError, which DRF would let through as a 500.
    """

    def parse(
        self, stream: Any, media_type: Any = None, parser_context: Any = None
    ) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(
                "JSON parse error - the body is nested too deeply."
            ) from None
