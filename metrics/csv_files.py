"""Reading a measurements CSV file: its encoding, delimiter, header and cells.

Pure text handling (no database): UTF-8 with or without a BOM; comma, semicolon or tab,
sniffed from the start of the file; a header naming kpi, period, value and optionally
source; in a semicolon-separated file (European Excel) values may use a decimal comma,
``12,5``, while a value holding both a comma and a point (``1.234,5``) is refused rather
than guessed at."""

import csv
import io
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

from metrics.ingest import (
    RowError,
    ValueParser,
)
from metrics.models import IMPORT_MAX_LENGTH

#: Largest file the admin takes (the bulk API is for pipelines).
MAX_BYTES = IMPORT_MAX_LENGTH
#: Most rows in one file: the bulk API's 10,000 is per request of a pipeline; a person
#: uploads a whole spreadsheet at once.
MAX_ROWS = 50_000

COLUMNS = ("kpi", "period", "value", "source")
REQUIRED_COLUMNS = ("kpi", "period", "value")
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}
# Sniffing looks at the start of the file only: the header and some rows suffice, and
# csv.Sniffer's regular expressions get slow on megabytes.
SNIFF_SAMPLE_CHARACTERS = 16_384

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NON_FINITE = {
    f"{sign}{word}" for sign in ("", "+", "-") for word in ("nan", "inf", "infinity")
}


class ImportFileError(Exception):
    """The file as a whole cannot be imported (encoding, header, size); nothing stored."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class ParsedFile:
    """A CSV file's data rows as the bulk API's rows (cells as text), with their lines.

    ``rows[i]`` starts on line ``lines[i]`` of the file (the header is line 1 when it
    is the first line). ``errors`` are the problems only the file's layout shows (a
    row with more cells than the header has columns), by row index.
    """

    rows: list[dict[str, str]]
    lines: list[int]
    delimiter: str
    errors: list[RowError]

    @property
    def delimiter_name(self) -> str:
        return DELIMITERS[self.delimiter]

    @property
    def decimal_comma(self) -> bool:
        return self.delimiter == ";"

    def line_name(self, index: int) -> str:
        return f"Line {self.lines[index]}"

    def value_parser(self) -> ValueParser:
        return csv_number_parser(decimal_comma=self.decimal_comma)


def decode_csv(content: bytes) -> str:
    """Return the file's text; raise ImportFileError unless it is UTF-8 text."""
    if not content.strip():
        raise ImportFileError("The file is empty.")
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ImportFileError(
            "The file is UTF-16 text (Excel's \u201cUnicode text\u201d). Save it as "
            "\u201cCSV UTF-8\u201d instead."
        )
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = content.count(b"\n", 0, exc.start) + 1
        raise ImportFileError(
            f"The file is not UTF-8 text: line {line} holds the byte "
            f"0x{content[exc.start]:02X}, which UTF-8 does not allow there. In Excel, "
            "save it as \u201cCSV UTF-8\u201d; elsewhere, choose the UTF-8 encoding."
        ) from None
    if "\x00" in text:
        raise ImportFileError(
            "The file holds NUL characters: it is not a CSV text file."
        )
    return text


def sniff_delimiter(text: str) -> str:
    """Return the file's delimiter: comma, semicolon or tab; comma if unclear."""
    sample = text[:SNIFF_SAMPLE_CHARACTERS]
    if len(text) > len(sample) and "\n" in sample:
        sample = sample[: sample.rindex("\n") + 1]  # whole lines only
    try:
        delimiter = (
            csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
        )
    except csv.Error:
        delimiter = ","
    # The header names known columns: if the sniffed delimiter does not split it into
    # them and another one does (a sample of one line can fool the sniffer), use that.
    header_line = sample.split("\n", 1)[0]
    if not _names_columns(header_line, delimiter):
        for candidate in DELIMITERS:
            if _names_columns(header_line, candidate):
                return candidate
    return delimiter


def _names_columns(header_line: str, delimiter: str) -> bool:
    names = {name.strip().lower() for name in header_line.split(delimiter)}
    return set(REQUIRED_COLUMNS) <= names


def parse_csv(text: str) -> ParsedFile:
    """Split the file into rows of the bulk API's shape; raise ImportFileError if the
    file as a whole is wrong (no header, a missing or unknown column, too many rows).

    Cells are stripped of surrounding spaces; an empty cell counts as missing, a row
    of empty cells is skipped, and a file without a ``source`` column gives every row
    an empty source (as the bulk API does for a row without one).
    """
    delimiter = sniff_delimiter(text)
    records = _records(text, delimiter)
    header_line, header = next(records, (0, []))
    if not any(cell.strip() for cell in header):
        raise ImportFileError("The file is empty.")
    positions = _column_positions(header)
    width = len(header)
    rows: list[dict[str, str]] = []
    lines: list[int] = []
    errors: list[RowError] = []
    for line, record in records:
        cells = [cell.strip() for cell in record]
        if not any(cells):
            continue
        if len(rows) == MAX_ROWS:
            rest = sum(1 for _, later in records if any(c.strip() for c in later))
            raise ImportFileError(
                f"The file has {MAX_ROWS + 1 + rest:,} rows; the admin imports at "
                f"most {MAX_ROWS:,} at once. Split it, or use the bulk API for "
                "pipelines."
            )
        row = {
            name: cells[position]
            for name, position in positions.items()
            if position < len(cells) and cells[position]
        }
        if "source" in positions:
            row.setdefault("source", "")
        if any(cells[width:]) or any(
            cells[position]
            for position in range(min(width, len(cells)))
            if not header[position].strip()
        ):
            errors.append(
                RowError(
                    len(rows),
                    "row",
                    f"This row has {len(cells)} cells, more than the header's "
                    f"{len(positions)} columns: a cell holding a "
                    f"{DELIMITERS[delimiter]} must be in double quotes.",
                )
            )
        rows.append(row)
        lines.append(line)
    if not rows:
        raise ImportFileError(
            f"The file has a header (line {header_line}) but no rows of measurements."
        )
    return ParsedFile(rows=rows, lines=lines, delimiter=delimiter, errors=errors)


def _records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Yield (first line, cells) per record, skipping blank lines before the header."""
    # strict: a stray quote is an error, not a cell that swallows the next lines.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    line = 1
    seen_header = False
    try:
        for record in reader:
            if seen_header or any(cell.strip() for cell in record):
                seen_header = True
                yield line, record
            line = reader.line_num + 1
    except csv.Error as exc:
        raise ImportFileError(
            f"Line {line} cannot be read as CSV ({exc}); check its quotes."
        ) from None


def _column_positions(header: list[str]) -> dict[str, int]:
    """Return each known column's position; raise ImportFileError for a bad header."""
    names = [cell.strip().lower() for cell in header]
    found = [name for name in names if name]
    positions = {name: position for position, name in enumerate(names) if name}
    twice = sorted({name for name in found if found.count(name) > 1})
    if twice:
        raise ImportFileError(
            f"The header names {_list(twice)} more than once; name each column once."
        )
    unknown = [name for name in found if name not in COLUMNS]
    missing = [name for name in REQUIRED_COLUMNS if name not in positions]
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"lacks the column(s) {_list(missing)}")
        if unknown:
            problems.append(f"has unknown column(s) {_list(unknown)}")
        raise ImportFileError(
            f"The header row {' and '.join(problems)}; it must name kpi, period and "
            f"value, and may name source (found: {_list(found) or 'nothing'})."
        )
    return positions


def _list(names: list[str]) -> str:
    shown = [repr(name[:40]) for name in names[:10]]
    more = f" and {len(names) - 10} more" if len(names) > 10 else ""
    return ", ".join(shown) + more


def csv_number_parser(*, decimal_comma: bool) -> ValueParser:
    """Return a parser of CSV cells as numbers ("12.5", "-3", "1e6"; "12,5" too if
    ``decimal_comma``); it raises ValueError saying what is wrong with the cell."""

    def parse(text: str) -> float:
        number = text
        if decimal_comma and "," in text:
            if "." in text or text.count(",") > 1:
                raise ValueError(
                    f"{text[:40]!r} is not a number: write it without thousands "
                    "separators, such as 1234,5."
                )
            number = text.replace(",", ".")
        if _NUMBER.fullmatch(number):
            # float() of a string never overflows: a huge exponent gives inf, which
            # the bound check refuses.
            return float(number)
        if number.lower() in _NON_FINITE:
            return math.nan
        hint = "" if decimal_comma or "," not in text else " (use a decimal point)"
        raise ValueError(f"{text[:40]!r} is not a number{hint}.")

    return parse
