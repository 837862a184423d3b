"""The figures endpoint: the flat table BI tools read, as JSON pages or one streamed CSV."""

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

import django_filters
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, renderers, serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from core.api.pagination import BoundedLimitOffsetPagination
from core.api.schema import COMPONENTS
from core.csv import stream_csv
from core.filters import FilterSet
from goals import pace as pacing
from goals.figures import FIGURE_COLUMNS, FigureQuery, figure_list
from metrics.filtersets import UpdatedSinceFilter
from metrics.models import Direction, Measurement

#: Rows fetched from the database cursor, and written to the client, per chunk.
CSV_CHUNK_ROWS = 5000


class FigureFilterSet(FilterSet):
    """The figures' query parameters (the measurements' filters, plus ``cycle``)."""

    kpi = django_filters.CharFilter(help_text="KPI key.")
    silo = django_filters.CharFilter(help_text="Silo slug.")
    period_after = django_filters.DateFilter(help_text="First period (inclusive).")
    period_before = django_filters.DateFilter(help_text="Last period (inclusive).")
    updated_since = UpdatedSinceFilter(
        help_text="ISO 8601 timestamp with any offset; rows whose content changed at "
        "or after it (see updated_at)."
    )
    cycle = django_filters.CharFilter(
        help_text="Cycle name: rows of the KPIs that have a goal in that cycle, for "
        "the periods within the cycle's dates. Targets still come from the covering "
        "goal as described above."
    )

    class Meta:
        model = Measurement
        fields: list[str] = []

    def filter_queryset(self, queryset: FigureQuery) -> FigureQuery:
        criteria = {
            name: value
            for name, value in self.form.cleaned_data.items()
            if value not in (None, "")
        }
        return queryset.filter(**criteria)


class FigureSerializer(serializers.Serializer):
    period = serializers.DateField(help_text="First day of the period.")
    silo = serializers.CharField(help_text="Silo slug.")
    silo_name = serializers.CharField()
    kpi = serializers.CharField(help_text="KPI key.")
    kpi_name = serializers.CharField()
    unit = serializers.CharField()
    direction = serializers.ChoiceField(choices=Direction.choices)
    value = serializers.FloatField()
    target = serializers.FloatField(
        allow_null=True,
        help_text="The covering goal's target; null without a goal, or for a "
        "target-band goal.",
    )
    attainment = serializers.FloatField(
        allow_null=True,
        min_value=0,
        max_value=1,
        help_text="The covering goal's attainment to date, in [0, 1]; null without "
        "a goal. A sum goal's baseline and target are taken pro rata to `expected`'s "
        "share of the goal's periods, so on pace the two are equal.",
    )
    expected = serializers.FloatField(
        allow_null=True,
        min_value=0,
        max_value=1,
        help_text="The attainment expected by the row's period: linear over the goal's "
        "periods, or last year's seasonal shape for a sum KPI with a full year of "
        "history; 1 for a target band; null without a goal.",
    )
    status = serializers.ChoiceField(
        choices=pacing.STATUSES,
        allow_null=True,
        help_text="The goal's status as of the row's period: `met`, `on_track`, "
        "`at_risk` (more than 25% behind `expected`), `off_track` (more than 50% "
        "behind, or due and not met), `no_data`; null without a goal.",
    )
    updated_at = serializers.DateTimeField(
        help_text="Last change to the row's content (UTC)."
    )


#: The figure columns that hold free text (names and units people type).
TEXT_COLUMNS = tuple(
    FIGURE_COLUMNS.index(name)
    for name in ("silo", "silo_name", "kpi", "kpi_name", "unit", "direction")
)


class FigureCSVRenderer(renderers.BaseRenderer):
    """CSV of figures: a header row in the public column order, then one row each.

    Numbers keep full precision (Python's shortest round-trip form); nulls are empty;
    text cells are made spreadsheet-safe (core.csv).
    """

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> str:
        """Return serialized figures as CSV at once (the view streams instead)."""
        rows = [[row[column] for column in FIGURE_COLUMNS] for row in data]
        return "".join(stream_csv(FIGURE_COLUMNS, [rows], text_columns=TEXT_COLUMNS))

    def stream(self, chunks: Iterable[list[tuple[Any, ...]]]) -> Iterator[str]:
        """Yield the CSV text: the header, then one piece per chunk of CSV rows.

        ``chunks`` come from FigureQuery.csv_chunks(): tuples in column order.
        """
        return stream_csv(FIGURE_COLUMNS, chunks, text_columns=TEXT_COLUMNS)


# The shared error body (core.api.schema), inline for this hand-written schema.
_ERROR = COMPONENTS["Error"]
_FILTER_ERRORS = {
    "type": "object",
    "description": "The invalid query parameters, each with its messages.",
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
    "example": {"period_after": ["Enter a valid date."]},
}


class FigureViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """One row per measurement of a KPI in a period, flat, for BI tools.

    Columns, in this order: `period, silo, silo_name, kpi, kpi_name, unit, direction,
    value, target, attainment, expected, status, updated_at` (silo by slug, KPI by key, `updated_at` in
    UTC). Rows are ordered by KPI key, then period.

    **Target and attainment** come from the silo goal on the row's KPI whose periods
    (`period_start`..`period_end`) include the row's period; when goals of several
    cycles do, from the goal of the cycle that starts last. Without such a goal both are
    null. A target-band goal has no single target: its `target` is null, and its
    attainment measures the band.

    **Attainment is to date**: the goal's actual value is the KPI aggregated by its own
    aggregation over the goal's periods from its first period up to and including the
    row's period: the sum or the mean of those values, or for "last" the row's own
    value. Charted over the periods, a goal's rows show its progress; the row of the
    due period holds its final attainment. A sum goal's baseline and target are totals
    over all its periods, so they are taken pro rata to the share of the goal expected
    by the row's period (`expected`): on pace, `attainment` equals `expected`.
    Filters never change a row's values: the aggregate counts periods that a filter
    leaves out.

    **Pace**: `expected` is the attainment expected by the row's period (linear over
    the goal's periods, or last year's seasonal shape for a sum KPI with a full year of
    history; 1 for a target band), and `status` is `met`, `on_track`, `at_risk` (more
    than 25% behind `expected`), `off_track` (more than 50% behind, or due and not
    met) or `no_data`. Both are null without a goal.

    **`updated_at`** is the last change to anything the row shows: its measurement, an
    earlier measurement counted in its attainment, the goal, the KPI or the silo. So
    `updated_since` returns every row whose content changed since; deleted rows are not
    reported.

    **JSON** comes in pages: `limit` (default 100, at most 10,000) and `offset`, with
    `count`, `next` and `previous`. **CSV** (`?format=csv` or `Accept: text/csv`) is the
    whole filtered table in one streamed response, with a header row in the column order
    above; `limit` and `offset` do not apply. Numbers are written in full precision,
    nulls as empty cells. Errors are JSON in both cases.
    """

    serializer_class = FigureSerializer
    filterset_class = FigureFilterSet
    pagination_class = BoundedLimitOffsetPagination
    # api_settings holds the renderer classes (imported from the setting's strings);
    # its stubs type them as the strings.
    renderer_classes = [
        *cast(
            Sequence[type[renderers.BaseRenderer]],
            api_settings.DEFAULT_RENDERER_CLASSES,
        ),
        FigureCSVRenderer,
    ]

    def get_queryset(self) -> QuerySet[Any]:
        # A FigureQuery (raw SQL) in a QuerySet's place: DRF's filter backend and
        # paginator use only its filter, count and slices, but its types name QuerySet.
        return cast("QuerySet[Any]", figure_list())

    @extend_schema(
        summary="Figures: one row per KPI and period (JSON pages or a whole CSV)",
        parameters=[
            OpenApiParameter(
                "format",
                str,
                enum=["json", "csv"],
                description="`csv`: the whole filtered table as one streamed CSV "
                "(the same as `Accept: text/csv`).",
            ),
            OpenApiParameter(
                "Retry-After",
                int,
                OpenApiParameter.HEADER,
                response=[429],
                description="Seconds to wait before the next request.",
            ),
        ],
        responses={
            (200, "application/json"): FigureSerializer(many=True),
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="The whole filtered table as CSV (header row first).",
            ),
            (400, "application/json"): OpenApiResponse(
                _FILTER_ERRORS, description="A query parameter is not valid."
            ),
            (401, "application/json"): OpenApiResponse(
                _ERROR, description="No or invalid credentials."
            ),
            (403, "application/json"): OpenApiResponse(
                _ERROR, description="The account has no ducttape role."
            ),
            (429, "application/json"): OpenApiResponse(
                _ERROR, description="Too many requests; retry after Retry-After."
            ),
        },
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Any:
        figures = self.filter_queryset(self.get_queryset())
        renderer = request.accepted_renderer
        if isinstance(renderer, FigureCSVRenderer):
            # Still the FigureQuery of get_queryset (FigureFilterSet returns one).
            chunks = cast(FigureQuery, figures).csv_chunks(CSV_CHUNK_ROWS)
            response = StreamingHttpResponse(
                renderer.stream(chunks),
                content_type="text/csv; charset=utf-8",
            )
            response["Content-Disposition"] = 'attachment; filename="figures.csv"'
            return response
        page = self.paginate_queryset(figures)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def finalize_response(
        self, request: Request, response: Any, *args: Any, **kwargs: Any
    ) -> Any:
        if (
            isinstance(response, Response)
            and response.exception
            and isinstance(
                getattr(request, "accepted_renderer", None), FigureCSVRenderer
            )
        ):
            # Errors stay JSON when CSV was asked for: a client can read what is wrong.
            request.accepted_renderer = renderers.JSONRenderer()
            request.accepted_media_type = renderers.JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)
