"""Text that people typed, made safe for places with a shape of their own (mail)."""

import re
import unicodedata

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
