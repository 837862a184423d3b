"""Text that people typed, made safe for places with a shape of their own (mail)."""

import re
import unicodedata
from typing import Any

_SPACES = re.compile(r"\s+")


def one_line(text: str) -> str:
    """Return ``text`` on one line: line breaks and tabs become spaces, other control
    and format characters (NUL, escape, bidirectional overrides) are dropped, and runs
    of spaces shrink to one.

    A KPI named "Deals\\r\\nBcc: ..." must not start a new line in a mail's text.
    """
    kept = "".join(
        " "
        if character.isspace()
        else ""
        if unicodedata.category(character) in ("Cc", "Cf", "Zl", "Zp")
        else character
        for character in text
    )
    return _SPACES.sub(" ", kept).strip()


def json_type_name(value: Any) -> str:
    """Return how JSON would name the type of ``value`` ("a string", "null", ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def quoted(text: str, limit: int = 60) -> str:
    """Return ``text`` quoted for a message, cut short, with odd characters escaped."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def printable(text: str, limit: int = 100) -> str:
    """Return ``text`` cut short and safe to encode as UTF-8 (lone surrogates escaped)."""
    return text[:limit].encode("utf-8", "backslashreplace").decode()
