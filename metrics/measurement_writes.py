"""Writing checked measurement rows: one upsert per chunk, on PostgreSQL with
INSERT ... ON CONFLICT, elsewhere row by row (the tests' SQLite makemigrations check
only); both return how many rows were created and updated."""

import datetime as dt
from collections.abc import Iterator
from typing import NamedTuple

from django.db import connection

from metrics.models import Measurement

# One statement per chunk: 2,000 rows keep each round trip well under a megabyte.
CHUNK_SIZE = 2_000
# The portable path names each row's KPI and period as parameters; old SQLite builds
# allow 999 per statement.
PORTABLE_CHUNK_SIZE = 400


class ValidRow(NamedTuple):
    """A checked row, in the shape both writers take."""

    kpi_id: int
    period: dt.date
    value: float
    source: str


def upsert_postgresql(rows: list[ValidRow], now: dt.datetime) -> tuple[int, int]:
    """Upsert ``rows`` with one INSERT ... ON CONFLICT per chunk; return the counts.

    Rows whose value and source are already stored are skipped by the WHERE of the
    DO UPDATE, so they are neither returned nor counted nor touched. ``xmax = 0``
    tells a freshly inserted row from an updated one.
    """
    table = connection.ops.quote_name(Measurement._meta.db_table)
    sql = f"""
        WITH written AS (
            INSERT INTO {table} AS stored
                (kpi_id, period, value, source, created_at, updated_at)
            SELECT incoming.kpi_id, incoming.period, incoming.value, incoming.source,
                   %s, %s
            FROM unnest(
                %s::bigint[], %s::date[], %s::double precision[], %s::text[]
            ) AS incoming (kpi_id, period, value, source)
            ON CONFLICT (kpi_id, period) DO UPDATE
            SET value = EXCLUDED.value,
                source = EXCLUDED.source,
                updated_at = EXCLUDED.updated_at
            WHERE (stored.value, stored.source)
                IS DISTINCT FROM (EXCLUDED.value, EXCLUDED.source)
            RETURNING (xmax = 0) AS inserted
        )
        SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)
        FROM written
    """  # noqa: S608 (the table name is the model's; every value is a parameter)
    created = updated = 0
    with connection.cursor() as cursor:
        for chunk in chunked(rows, CHUNK_SIZE):
            kpi_ids, days, values, sources = (
                list(column) for column in zip(*chunk, strict=True)
            )
            cursor.execute(sql, [now, now, kpi_ids, days, values, sources])
            chunk_created, chunk_updated = cursor.fetchone()
            created += chunk_created
            updated += chunk_updated
    return created, updated


def upsert_portable(rows: list[ValidRow], now: dt.datetime) -> tuple[int, int]:
    """Upsert ``rows`` through the ORM (SQLite and others); return the counts.

    Give the same answers as the PostgreSQL path: rows already stored with the same
    value and source are left alone.
    """
    created = updated = 0
    for chunk in chunked(rows, PORTABLE_CHUNK_SIZE):
        stored = {
            (kpi_id, period): (pk, value, source)
            for pk, kpi_id, period, value, source in Measurement.objects.filter(
                kpi_id__in={row[0] for row in chunk},
                period__in={row[1] for row in chunk},
            )
            .order_by()
            .values_list("pk", "kpi_id", "period", "value", "source")
        }
        to_create: list[Measurement] = []
        to_update: list[Measurement] = []
        for kpi_id, period, value, source in chunk:
            found = stored.get((kpi_id, period))
            if found is None:
                to_create.append(
                    Measurement(
                        kpi_id=kpi_id,
                        period=period,
                        value=value,
                        source=source,
                        created_at=now,
                        updated_at=now,
                    )
                )
            elif (found[1], found[2]) != (value, source):
                to_update.append(
                    Measurement(pk=found[0], value=value, source=source, updated_at=now)
                )
        Measurement.objects.bulk_create(to_create)
        Measurement.objects.bulk_update(to_update, ["value", "source", "updated_at"])
        created += len(to_create)
        updated += len(to_update)
    return created, updated


def chunked(rows: list[ValidRow], size: int) -> Iterator[list[ValidRow]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]
