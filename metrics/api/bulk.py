"""``POST /api/v1/measurements/bulk/``: pipelines upsert up to 10,000 measurements.

The view only unwraps the body and calls ``metrics.ingest``. The serializers below
describe the request and the answers in the OpenAPI schema; they do not validate the
rows: the service does, because a refusal must list every problem of every row with
its index in one list, and check all KPIs against the database in one query.
"""

import logging
from typing import Any

from django.db import DatabaseError
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ParseError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.parsers import SafeJSONParser
from core.api.permissions import SILO_MANAGER
from metrics.ingest import (
    MAX_ROWS,
    SOURCE_MAX_LENGTH,
    BulkValidationError,
    RowError,
    measurements_bulk_upsert,
)

logger = logging.getLogger(__name__)


class LenientJSONParser(SafeJSONParser):
    """Parse JSON, letting NaN and Infinity through so the service names their rows.

    Python's json reads these non-standard literals; DRF's strict mode would refuse the
    whole body without saying which row holds one. The service refuses them per row.
    """

    strict = False


class BulkMeasurementRowSerializer(serializers.Serializer):
    kpi = serializers.RegexField(
        r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$",
        max_length=101,
        help_text="KPI key, such as sales.deals_closed.",
    )
    period = serializers.DateField(
        help_text="First day of the KPI's period: the 1st of a month for monthly "
        "KPIs, a Monday for weekly ones, 1 Jan/Apr/Jul/Oct for quarterly ones."
    )
    value = serializers.FloatField(help_text="A number whose magnitude is below 1e15.")
    source = serializers.CharField(  # type: ignore[assignment]  # a declared field, not Field.source: DRF's metaclass takes it off the class
        required=False,
        allow_blank=True,
        max_length=SOURCE_MAX_LENGTH,
        help_text="Where the figure comes from. Left out: empty.",
    )


class BulkMeasurementsRequestSerializer(serializers.Serializer):
    measurements = serializers.ListField(
        child=BulkMeasurementRowSerializer(), max_length=MAX_ROWS
    )


class BulkMeasurementsResultSerializer(serializers.Serializer):
    created = serializers.IntegerField(help_text="Measurements that did not exist.")
    updated = serializers.IntegerField(
        help_text="Measurements whose value or source changed."
    )


class BulkMeasurementsErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField(
        allow_null=True,
        help_text="Position of the row in measurements (from 0); null for the "
        "request as a whole.",
    )
    field = serializers.CharField(help_text="The field at fault.")
    message = serializers.CharField()


class BulkMeasurementsErrorsSerializer(serializers.Serializer):
    errors = BulkMeasurementsErrorSerializer(many=True)  # type: ignore[assignment]  # a declared field, not Serializer.errors: DRF's metaclass takes it off the class


class BulkMeasurementsDetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


def _detail(description: str) -> OpenApiResponse:
    return OpenApiResponse(BulkMeasurementsDetailSerializer, description=description)


class MeasurementBulkView(APIView):
    """Create or update measurements per (KPI, period); all rows or none."""

    write_roles = (SILO_MANAGER,)
    parser_classes = [LenientJSONParser]

    @extend_schema(
        operation_id="v1_measurements_bulk_upsert",
        summary="Upsert measurements in bulk",
        description=(
            f"Create or update up to {MAX_ROWS} measurements, one per (KPI, period). "
            "Sending the same rows again changes nothing; a row whose value and "
            "source are already stored is left alone. Silo managers write their own "
            "silos' KPIs; the CCO team writes all. If any row is invalid, nothing is "
            "written and the answer lists every problem of every row."
        ),
        request=BulkMeasurementsRequestSerializer,
        responses={
            200: OpenApiResponse(
                BulkMeasurementsResultSerializer,
                description="Every row was stored; the counts of each kind of change.",
            ),
            400: OpenApiResponse(
                BulkMeasurementsErrorsSerializer,
                description=(
                    "Nothing was written: every problem, by row index (index null "
                    "for the body as a whole: malformed JSON, no measurements list, "
                    "too many rows)."
                ),
                examples=[
                    OpenApiExample(
                        "Invalid rows",
                        value={
                            "errors": [
                                {
                                    "index": 0,
                                    "field": "period",
                                    "message": "KPI 'sales.deals_closed' is monthly: "
                                    "its period must be the first day of a month; "
                                    "got 2024-01-15.",
                                },
                                {
                                    "index": 3,
                                    "field": "kpi",
                                    "message": "Unknown KPI 'sales.deal_closed'.",
                                },
                            ]
                        },
                    )
                ],
            ),
            401: _detail("No or invalid credentials."),
            403: _detail("The caller's role may not write measurements."),
            413: _detail("The body is larger than the server accepts."),
            415: _detail("The body is not JSON."),
            429: _detail("Too many requests; retry after the Retry-After seconds."),
            503: _detail(
                "The database failed during the upload; nothing was written (retry)."
            ),
        },
    )
    def post(self, request: Request) -> Response:
        try:
            result = measurements_bulk_upsert(
                user=request.user, rows=_rows_from(request)
            )
        except BulkValidationError as exc:
            return Response(
                {"errors": [error.as_dict() for error in exc.errors]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        except DatabaseError:
            # The transaction rolled back as a whole: say so, so that the pipeline
            # retries the same body (the upsert makes a retry safe).
            logger.exception("Bulk upload failed in the database; nothing was written")
            return Response(
                {
                    "detail": "The database failed during the upload; nothing was "
                    "written. Send the same body again."
                },
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": "5"},
            )
        return Response({"created": result.created, "updated": result.updated})


def _rows_from(request: Request) -> list[Any]:
    """Return the body's measurements list, or raise naming what is wrong with it."""
    try:
        body = request.data
    except ParseError as exc:
        raise BulkValidationError([RowError(None, "body", str(exc.detail))]) from exc
    if not isinstance(body, dict):
        raise BulkValidationError(
            [
                RowError(
                    None,
                    "body",
                    'Send a JSON object: {"measurements": [...]}.',
                )
            ]
        )
    errors = [
        RowError(
            None,
            str(name)[:100].encode("utf-8", "backslashreplace").decode(),
            "Unknown field; the body holds only measurements.",
        )
        for name in body
        if name != "measurements"
    ]
    rows = body.get("measurements")
    if "measurements" not in body:
        errors.append(RowError(None, "measurements", "This field is required."))
    elif not isinstance(rows, list):
        errors.append(
            RowError(None, "measurements", "Give a list of rows (JSON objects).")
        )
    if errors:
        raise BulkValidationError(errors)
    assert isinstance(rows, list)  # the checks above let nothing else through
    return rows
