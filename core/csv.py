"""CSV that spreadsheets open safely: every CSV the project writes goes through here.

Excel, LibreOffice and Google Sheets run a cell that starts with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return as a formula, so a KPI named
``=HYPERLINK("http://evil.example/","x")`` would run on the CCO's machine (CSV
injection). Following OWASP's guidance, such text gets a leading apostrophe, which
the spreadsheet shows as plain text. Numbers, dates and empty cells are written as they
are: a negative value is still ``-3.5``.
"""

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from import_export.formats.base_formats import CSV

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A number written as text ("-3.5", "+2", "-1e-05") is not a formula: it stays a number.
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def formula_like(text: str) -> bool:
    """Return whether a spreadsheet would read ``text`` as a formula."""
    return text.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(text)


def spreadsheet_cell(value: Any) -> Any:
    """Return ``value`` for a CSV cell: text that would start a formula is quoted."""
    if isinstance(value, str) and formula_like(value):
        return "'" + value
    return value


def spreadsheet_row(values: Iterable[Any]) -> list[Any]:
    """Return the row with every cell made safe (see ``spreadsheet_cell``)."""
    return [spreadsheet_cell(value) for value in values]


class SpreadsheetCSV:
    """Write rows of safe cells into CSV text, a piece at a time (for streaming).

    ``text_columns`` names the columns that may hold free text; only those are checked,
    which keeps large exports fast. Without it every cell is checked.
    """

    def __init__(self, text_columns: Sequence[int] | None = None) -> None:
        self.text_columns = text_columns
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer, lineterminator="\r\n")

    def _safe(self, row: Sequence[Any]) -> Sequence[Any]:
        if self.text_columns is None:
            return spreadsheet_row(row)
        unsafe = [
            index
            for index in self.text_columns
            if isinstance(row[index], str) and formula_like(row[index])
        ]
        if not unsafe:
            return row
        safe = list(row)
        for index in unsafe:
            safe[index] = "'" + safe[index]
        return safe

    def rows(self, rows: Iterable[Sequence[Any]]) -> str:
        """Return the CSV text of ``rows``."""
        self.buffer.seek(0)
        self.buffer.truncate()
        self.writer.writerows(self._safe(row) for row in rows)
        return self.buffer.getvalue()

    def row(self, row: Sequence[Any]) -> str:
        """Return the CSV text of one row."""
        return self.rows([row])


def stream_csv(
    header: Sequence[str],
    chunks: Iterable[Iterable[Sequence[Any]]],
    *,
    text_columns: Sequence[int] | None = None,
) -> Iterator[str]:
    """Yield CSV text: the header, then one piece per chunk of rows (all cells safe)."""
    writer = SpreadsheetCSV(text_columns)
    yield writer.row(header)
    for chunk in chunks:
        text = writer.rows(chunk)
        if text:
            yield text


class SpreadsheetSafeCSV(CSV):
    """django-import-export's CSV format, with every cell made spreadsheet-safe.

    The library's own IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT only drops a leading
    "=" and turns every cell into text; this follows OWASP and keeps numbers.
    """

    def export_data(self, dataset: Any, **kwargs: Any) -> Any:
        rows = [spreadsheet_row(row) for row in dataset]
        del dataset[:]
        for row in rows:
            dataset.append(row)
        return super().export_data(dataset, **kwargs)
