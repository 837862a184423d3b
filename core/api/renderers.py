"""JSON rendering that cannot fail on text a client sent back to it."""

from collections.abc import Mapping
from typing import Any

from rest_framework.renderers import JSONRenderer


class SafeJSONRenderer(JSONRenderer):
    """DRF's JSON renderer, falling back to ASCII escapes when UTF-8 cannot hold the text.

    An error message may echo the client's input (DRF's choice fields do: '"\\ud800" is
    not a valid choice.'). A lone surrogate in it has no UTF-8 form, so the ordinary
    renderer would raise and the client would get a 500 instead of its 400. Escaped as
    "\\ud800" the answer is still exactly the same JSON value.
    """

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:
            return _AsciiJSONRenderer().render(
                data, accepted_media_type, renderer_context
            )


class _AsciiJSONRenderer(JSONRenderer):
    ensure_ascii = True
