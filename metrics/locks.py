"""PostgreSQL advisory transaction locks, shared by the jobs that must not overlap.

On another database (SQLite, the laptop default) there is one process and nothing to
serialize: taking a lock always succeeds.
"""

from django.db import connection


def advisory_xact_lock(key: int) -> None:
    """Wait for the advisory lock ``key``; it is released when the transaction ends."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def try_advisory_xact_lock(key: int) -> bool:
    """Take the advisory lock ``key`` if it is free; say whether it was taken."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [key])
        return bool(cursor.fetchone()[0])
