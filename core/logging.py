"""Logging filters of the project."""

import logging


class RefusalsWithoutTraceback(logging.Filter):
    """Log a refused request (403) as the one line it is, without a traceback.

    Django logs "Forbidden (Permission denied)" with the PermissionDenied's traceback:
    a manager opening a CCO page is an ordinary refusal, not an error to debug.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) == 403:
            record.exc_info = None
            record.exc_text = None
        return True
