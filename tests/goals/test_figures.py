"""GET /api/v1/figures/: one flat row per (KPI, period), as JSON pages or a streamed CSV."""

import csv
import datetime as dt
import io

import pandas
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from goals.api.figures import FigureCSVRenderer
from goals.figures import FIGURE_COLUMNS, figure_list
from goals.models import Goal
from metrics.models import KPI, Measurement, Silo
from tests import factories

pytestmark = pytest.mark.django_db

URL = "/api/v1/figures/"
HEADER = ",".join(FIGURE_COLUMNS)
# Every silo, KPI and goal last changed at SETUP; every measurement at MEASURED.
SETUP = dt.datetime(2027, 3, 1, tzinfo=dt.UTC)
MEASURED = dt.datetime(2027, 3, 2, tzinfo=dt.UTC)
LATER = dt.datetime(2027, 4, 1, 12, tzinfo=dt.UTC)


@pytest.fixture
def company(silo_a, silo_b):
    """Two silos' KPIs: every direction and aggregation, two overlapping cycles' goals."""
    year = factories.CycleFactory(name="FY2027")
    second_half = factories.CycleFactory(
        name="FY2027-H2", start_date=dt.date(2027, 7, 1), end_date=dt.date(2027, 12, 31)
    )
    win_rate = factories.KPIFactory(
        silo=silo_a, slug="win_rate", unit="%", aggregation="mean"
    )
    deals = factories.KPIFactory(silo=silo_a, slug="deals_closed", unit="deals")
    resolution = factories.KPIFactory(
        silo=silo_b,
        slug="resolution_days",
        unit="days",
        direction="lower_is_better",
        aggregation="last",
    )
    csat = factories.KPIFactory(
        silo=silo_b,
        slug="csat",
        unit="%",
        direction="target_band",
        band_low=80,
        band_high=90,
        aggregation="last",
    )
    tickets = factories.KPIFactory(silo=silo_b, slug="tickets")
    factories.GoalFactory(cycle=year, kpi=win_rate, baseline=10, target=20)
    factories.GoalFactory(cycle=year, kpi=deals, baseline=0, target=200)
    # A later-starting cycle's goal covers July to September: there it wins over the
    # year's goal, which still counts those months towards October.
    factories.GoalFactory(
        cycle=second_half,
        kpi=deals,
        baseline=0,
        target=40,
        period_start=dt.date(2027, 7, 1),
        period_end=dt.date(2027, 9, 1),
    )
    factories.GoalFactory(cycle=year, kpi=resolution, baseline=10, target=5)
    factories.GoalFactory(
        cycle=year, kpi=csat, baseline=70, target=None, target_low=80, target_high=90
    )
    values = {
        win_rate: {(2026, 12): 11, (2027, 1): 12, (2027, 2): 16},
        deals: {
            (2027, 1): 20,
            (2027, 2): 30,
            (2027, 7): 10,
            (2027, 8): 20,
            (2027, 10): 40,
        },
        resolution: {(2027, 1): 9, (2027, 2): 6},
        csat: {(2027, 1): 75, (2027, 2): 85},
        tickets: {(2027, 1): 100, (2027, 2): 104},
    }
    for kpi, by_month in values.items():
        for (year_number, month), value in by_month.items():
            factories.MeasurementFactory(
                kpi=kpi, period=dt.date(year_number, month, 1), value=value
            )
    for model in (Silo, KPI, Goal):
        model.objects.update(updated_at=SETUP)
    Measurement.objects.update(updated_at=MEASURED)
    return {"deals": deals, "resolution": resolution}


def figure(
    period,
    kpi,
    value,
    target,
    attainment,
    expected=None,
    status=None,
    updated_at="2027-03-02T00:00:00Z",
):
    """Return the expected JSON row of ``kpi`` (a key of KPIS) in ``period``."""
    silo, silo_name, kpi_name, unit, direction = KPIS[kpi]
    return {
        "period": period,
        "silo": silo,
        "silo_name": silo_name,
        "kpi": kpi,
        "kpi_name": kpi_name,
        "unit": unit,
        "direction": direction,
        "value": value,
        "target": target,
        "attainment": attainment,
        "expected": expected,
        "status": status,
        "updated_at": updated_at,
    }


KPIS = {
    "sales.deals_closed": (
        "sales",
        "Sales",
        "Deals Closed",
        "deals",
        "higher_is_better",
    ),
    "sales.win_rate": ("sales", "Sales", "Win Rate", "%", "higher_is_better"),
    "support.csat": ("support", "Support", "Csat", "%", "target_band"),
    "support.resolution_days": (
        "support",
        "Support",
        "Resolution Days",
        "days",
        "lower_is_better",
    ),
    "support.tickets": ("support", "Support", "Tickets", "count", "higher_is_better"),
}

ALL_ROWS = [
    # Sum, to date: 20, then 20 + 30 of 200 (baseline 0, so no pro rata shift). The
    # year's goal runs over 12 months: 1/12, then 2/12 of it expected. In July and
    # August the second half's goal (target 40, 3 months) counts from its own first
    # period: 10, then 10 + 20, with 1/3 and 2/3 expected (0.25 is exactly 25% behind
    # 1/3: still on track). In October the year's goal counts all its months: 20 + 30 +
    # 10 + 20 + 40 = 120 of 200 = 0.6, where 10/12 is expected: 28% behind, at risk.
    figure("2027-01-01", "sales.deals_closed", 20.0, 200.0, 0.1, 1 / 12, "on_track"),
    figure("2027-02-01", "sales.deals_closed", 30.0, 200.0, 0.25, 2 / 12, "on_track"),
    figure("2027-07-01", "sales.deals_closed", 10.0, 40.0, 0.25, 1 / 3, "on_track"),
    figure("2027-08-01", "sales.deals_closed", 20.0, 40.0, 0.75, 2 / 3, "on_track"),
    figure("2027-10-01", "sales.deals_closed", 40.0, 200.0, 0.6, 10 / 12, "at_risk"),
    # Before the goal's periods: no target. Mean, to date: 12, then (12 + 16) / 2 = 14,
    # from baseline 10 to target 20.
    figure("2026-12-01", "sales.win_rate", 11.0, None, None),
    figure("2027-01-01", "sales.win_rate", 12.0, 20.0, 0.2, 1 / 12, "on_track"),
    figure("2027-02-01", "sales.win_rate", 16.0, 20.0, 0.4, 2 / 12, "on_track"),
    # A band of 80-90 has no single target; 75 is half a band width (10) below it. A
    # band is to be held throughout: 1 expected, so half is at risk; inside it, met.
    figure("2027-01-01", "support.csat", 75.0, None, 0.5, 1.0, "at_risk"),
    figure("2027-02-01", "support.csat", 85.0, None, 1.0, 1.0, "met"),
    # Lower is better, last value: baseline 10, target 5.
    figure("2027-01-01", "support.resolution_days", 9.0, 5.0, 0.2, 1 / 12, "on_track"),
    figure("2027-02-01", "support.resolution_days", 6.0, 5.0, 0.8, 2 / 12, "on_track"),
    # No goal.
    figure("2027-01-01", "support.tickets", 100.0, None, None),
    figure("2027-02-01", "support.tickets", 104.0, None, None),
]


def rows_of(api, query=""):
    response = api.get(f"{URL}?{query}")
    assert response.status_code == 200, response.content
    return response.json()["results"]


def keys(rows):
    return [(row["kpi"], row["period"]) for row in rows]


def test_rows_carry_the_covering_goal_and_its_attainment_to_date(api, company, reader):
    api.force_authenticate(reader)

    response = api.get(URL)

    body = response.json()
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert body == {"count": 14, "next": None, "previous": None, "results": ALL_ROWS}
    assert [list(row) for row in body["results"]] == [list(FIGURE_COLUMNS)] * 14


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("kpi=sales.deals_closed", ALL_ROWS[0:5]),
        ("silo=support", ALL_ROWS[8:14]),
        # Filters never change a row: February still counts January's deals.
        (
            "period_after=2027-02-01",
            [ALL_ROWS[i] for i in (1, 2, 3, 4, 7, 9, 11, 13)],
        ),
        (
            "period_before=2027-01-01",
            [ALL_ROWS[i] for i in (0, 5, 6, 8, 10, 12)],
        ),
        (
            "silo=sales&period_after=2027-02-01&period_before=2027-07-01",
            [ALL_ROWS[i] for i in (1, 2, 7)],
        ),
        # KPIs with a goal in the cycle, within its dates; October's target is still
        # the covering goal's (the year's).
        ("cycle=FY2027-H2", ALL_ROWS[2:5]),
        ("cycle=FY2027", ALL_ROWS[0:5] + ALL_ROWS[6:12]),
        ("cycle=FY2027&kpi=sales.win_rate", ALL_ROWS[6:8]),
        ("cycle=FY2030", []),
        ("kpi=unknown.kpi", []),
        ("silo=finance", []),
    ],
)
def test_filters(api, company, reader, query, expected):
    api.force_authenticate(reader)

    body = api.get(f"{URL}?{query}").json()

    assert body["results"] == expected
    assert body["count"] == len(expected)


def test_updated_since_takes_any_offset_and_sees_every_change_a_row_shows(
    api, company, reader
):
    # January's deals change: so do the to-date sums of the year's goal (February,
    # October), not those of the second half's goal. A goal change touches every row
    # it covers.
    Measurement.objects.filter(kpi=company["deals"], period=dt.date(2027, 1, 1)).update(
        value=25, updated_at=LATER
    )
    Goal.objects.filter(kpi=company["resolution"]).update(target=6, updated_at=LATER)
    api.force_authenticate(reader)

    # 11:30 UTC, written at UTC+02:00.
    rows = rows_of(api, "updated_since=2027-04-01T13:30:00%2B02:00")

    later = "2027-04-01T12:00:00Z"
    deals = ("2027-01-01", "sales.deals_closed")
    resolution = ("2027-01-01", "support.resolution_days")
    assert rows == [
        figure(*deals, 25.0, 200.0, 0.125, 1 / 12, "on_track", updated_at=later),
        figure("2027-02-01", *deals[1:], 30.0, 200.0, 0.275, 2 / 12, "on_track", later),
        # 0.625 is exactly 25% behind 10/12: on track, not at risk.
        figure(
            "2027-10-01", *deals[1:], 40.0, 200.0, 0.625, 10 / 12, "on_track", later
        ),
        figure(*resolution, 9.0, 6.0, 0.25, 1 / 12, "on_track", updated_at=later),
        # A last-value goal at its target is met.
        figure("2027-02-01", resolution[1], 6.0, 6.0, 1.0, 2 / 12, "met", later),
    ]
    assert api.get(URL, {"updated_since": "2027-04-01T11:30:00Z"}).json()["count"] == 5
    # 12:30 UTC: after every change.
    assert rows_of(api, "updated_since=2027-04-01T14:30:00%2B02:00") == []
    assert keys(rows_of(api, "updated_since=2027-04-01T12:00:00Z")) == keys(rows)


def test_updated_since_takes_offsets_beyond_postgresqls_range(api, company, reader):
    api.force_authenticate(reader)

    # 00:00 UTC on 2 March, when every measurement changed, written at UTC+21:46.
    at_the_change = rows_of(api, "updated_since=2027-03-02T21:46:00%2B21:46")
    after_it = rows_of(api, "updated_since=2027-03-02T21:46:01%2B21:46")

    assert (at_the_change, after_it) == (ALL_ROWS, [])


@pytest.mark.parametrize(
    ("query", "errors"),
    [
        ("period_after=2027-13-01", {"period_after": ["Enter a valid date."]}),
        ("period_before=soon", {"period_before": ["Enter a valid date."]}),
        ("updated_since=yesterday", {"updated_since": ["Enter a valid date/time."]}),
        (
            "updated_since=0001-01-01T00:00:00%2B01:00",
            {"updated_since": ["The timestamp falls outside the supported range."]},
        ),
        (
            "format=csv&updated_since=2027-04-01T25:00:00Z",
            {"updated_since": ["Enter a valid date/time."]},
        ),
    ],
)
def test_bad_filter_values_are_a_400_naming_the_parameter(
    api, company, reader, query, errors
):
    api.force_authenticate(reader)

    response = api.get(f"{URL}?{query}")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == errors


def test_pages_by_limit_and_offset(api, company, reader):
    api.force_authenticate(reader)

    body = api.get(URL, {"limit": 2, "offset": 4}).json()

    assert body["count"] == 14
    assert body["results"] == ALL_ROWS[4:6]
    assert body["next"] == "http://testserver/api/v1/figures/?limit=2&offset=6"
    assert body["previous"] == "http://testserver/api/v1/figures/?limit=2&offset=2"
    last = api.get(URL, {"limit": 5, "offset": 10}).json()
    assert (last["results"], last["next"]) == (ALL_ROWS[10:], None)


def month_starts(count):
    return [dt.date(1900 + month // 12, month % 12 + 1, 1) for month in range(count)]


def test_a_page_holds_at_most_10000_rows(api, silo_a, reader):
    kpi = factories.KPIFactory(silo=silo_a, slug="visits")
    Measurement.objects.bulk_create(
        Measurement(kpi=kpi, period=period, value=float(index))
        for index, period in enumerate(month_starts(10_001))
    )
    api.force_authenticate(reader)

    body = api.get(URL, {"limit": 20_000}).json()

    assert body["count"] == 10_001
    assert len(body["results"]) == 10_000
    assert body["results"][-1]["value"] == 9999.0
    assert body["next"] == "http://testserver/api/v1/figures/?limit=10000&offset=10000"


EXPECTED_SALES_CSV = (
    HEADER + "\r\n"
    "2027-01-01,sales,Sales,sales.deals_closed,Deals Closed,deals,higher_is_better,"
    "20.0,200.0,0.1,0.08333333333333333,on_track,2027-03-02T00:00:00Z\r\n"
    "2027-02-01,sales,Sales,sales.deals_closed,Deals Closed,deals,higher_is_better,"
    "30.0,200.0,0.25,0.16666666666666666,on_track,2027-03-02T00:00:00Z\r\n"
    "2027-07-01,sales,Sales,sales.deals_closed,Deals Closed,deals,higher_is_better,"
    "10.0,40.0,0.25,0.3333333333333333,on_track,2027-03-02T00:00:00Z\r\n"
    "2027-08-01,sales,Sales,sales.deals_closed,Deals Closed,deals,higher_is_better,"
    "20.0,40.0,0.75,0.6666666666666666,on_track,2027-03-02T00:00:00Z\r\n"
    "2027-10-01,sales,Sales,sales.deals_closed,Deals Closed,deals,higher_is_better,"
    "40.0,200.0,0.6,0.8333333333333334,at_risk,2027-03-02T00:00:00Z\r\n"
    "2026-12-01,sales,Sales,sales.win_rate,Win Rate,%,higher_is_better,"
    "11.0,,,,,2027-03-02T00:00:00Z\r\n"
    "2027-01-01,sales,Sales,sales.win_rate,Win Rate,%,higher_is_better,"
    "12.0,20.0,0.2,0.08333333333333333,on_track,2027-03-02T00:00:00Z\r\n"
    "2027-02-01,sales,Sales,sales.win_rate,Win Rate,%,higher_is_better,"
    "16.0,20.0,0.4,0.16666666666666666,on_track,2027-03-02T00:00:00Z\r\n"
)


def streamed_text(response):
    assert response.streaming
    return b"".join(response.streaming_content).decode("utf-8")


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        # limit and offset do not apply to the CSV: it is the whole filtered table.
        ({"format": "csv", "silo": "sales", "limit": 1}, {}),
        ({"silo": "sales"}, {"HTTP_ACCEPT": "text/csv"}),
    ],
)
def test_csv_is_the_whole_filtered_table_streamed(api, company, reader, query, headers):
    api.force_authenticate(reader)

    response = api.get(URL, query, **headers)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="figures.csv"'
    assert streamed_text(response) == EXPECTED_SALES_CSV


def cell(value):
    return "" if value is None else repr(value) if isinstance(value, float) else value


@pytest.mark.parametrize(
    "query",
    [
        "",
        "cycle=FY2027-H2&kpi=sales.deals_closed&silo=sales&period_after=2027-07-01"
        "&period_before=2027-12-01&updated_since=2027-03-02T01:00:00%2B01:00",
        "cycle=FY2027&period_after=2027-02-01",
        "silo=support&period_before=2027-01-01",
    ],
)
def test_csv_rows_are_the_json_rows(api, company, reader, query):
    api.force_authenticate(reader)

    text = streamed_text(api.get(f"{URL}?format=csv&{query}"))
    json_rows = rows_of(api, query)

    assert json_rows
    assert list(csv.reader(io.StringIO(text))) == [list(FIGURE_COLUMNS)] + [
        [cell(row[column]) for column in FIGURE_COLUMNS] for row in json_rows
    ]
    assert FigureCSVRenderer().render(json_rows) == text


def test_csv_of_no_rows_is_the_header(api, company, reader):
    api.force_authenticate(reader)

    response = api.get(URL, {"format": "csv", "kpi": "unknown.kpi"})

    assert streamed_text(response) == HEADER + "\r\n"


def test_csv_reads_through_a_server_side_cursor_in_chunks(company):
    chunks = figure_list().chunks(chunk_size=5)

    first = next(chunks)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_cursors WHERE name LIKE 'figures_%'")
        (open_cursors,) = cursor.fetchone()
    rest = list(chunks)

    assert open_cursors == 1
    assert [len(chunk) for chunk in [first, *rest]] == [5, 5, 4]
    assert [row._asdict() for chunk in [first, *rest] for row in chunk] == [
        {**row, "period": dt.date.fromisoformat(row["period"]), "updated_at": MEASURED}
        for row in ALL_ROWS
    ]


def test_pandas_reads_the_exact_numbers_from_the_csv(api, silo_a, reader):
    odd = factories.KPIFactory(silo=silo_a, slug="odd", name='Odd, "exact" numbers')
    share = factories.KPIFactory(silo=silo_a, slug="share", unit="ratio")
    factories.GoalFactory(kpi=share, baseline=0, target=1)
    stored = [0.1 + 0.2, 1e-300, -2.5e-8, 123456789.12345679, 999999999999999.9]
    for month, value in enumerate(stored, start=1):
        factories.MeasurementFactory(
            kpi=odd, period=dt.date(2027, month, 1), value=value
        )
    for month, value in enumerate([0.1, 0.2], start=1):
        factories.MeasurementFactory(
            kpi=share, period=dt.date(2027, month, 1), value=value
        )
    api.force_authenticate(reader)

    frame = pandas.read_csv(io.StringIO(streamed_text(api.get(URL, {"format": "csv"}))))

    assert list(frame.columns) == list(FIGURE_COLUMNS)
    assert frame["kpi"].tolist() == ["sales.odd"] * 5 + ["sales.share"] * 2
    assert frame["kpi_name"].tolist()[:1] == ['Odd, "exact" numbers']
    assert frame["value"].tolist() == [*stored, 0.1, 0.2]
    assert frame["target"].isna().tolist() == [True] * 5 + [False] * 2
    assert frame["target"].tolist()[5:] == [1.0, 1.0]
    # The sum to date, from baseline 0 to target 1: 0.1, then 0.1 + 0.2.
    assert frame["attainment"].tolist()[5:] == [0.1, 0.1 + 0.2]
    assert frame["attainment"].isna().sum() == 5
    assert frame["period"].tolist()[:2] == ["2027-01-01", "2027-02-01"]


@pytest.mark.parametrize(
    ("query", "headers"),
    [("", {}), ("?format=csv", {}), ("", {"HTTP_ACCEPT": "text/csv"})],
)
def test_anonymous_requests_get_401_in_json(api, company, query, headers):
    response = api.get(f"{URL}{query}", **headers)

    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == {
        "detail": "Authentication credentials were not provided."
    }


def test_a_user_without_a_role_is_refused(api, company):
    api.force_authenticate(factories.UserFactory(username="nobody"))

    response = api.get(URL, HTTP_ACCEPT="text/csv")

    assert response.status_code == 403
    assert "no ducttape role" in response.json()["detail"]


@pytest.mark.parametrize("role", ["reader", "manager_a", "cco", "superuser"])
def test_every_role_reads_every_silo(api, company, request, role):
    api.force_authenticate(request.getfixturevalue(role))

    assert rows_of(api) == ALL_ROWS


def add_months(kpi, count, start):
    Measurement.objects.bulk_create(
        Measurement(kpi=kpi, period=period, value=float(index))
        for index, period in enumerate(month_starts(start + count)[start:])
    )


def test_query_count_does_not_grow_with_rows(api, silo_a, silo_b, reader):
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=reader).key}")
    cycle = factories.CycleFactory(
        start_date=dt.date(1900, 1, 1), end_date=dt.date(1999, 12, 31)
    )
    kpis = [
        factories.KPIFactory(silo=silo_a, aggregation="mean"),
        factories.KPIFactory(silo=silo_b, direction="lower_is_better"),
    ]
    factories.GoalFactory(
        cycle=cycle,
        kpi=kpis[0],
        period_start=dt.date(1900, 1, 1),
        period_end=dt.date(1999, 12, 1),
    )
    for kpi in kpis:
        add_months(kpi, 5, start=0)
    with CaptureQueriesContext(connection) as few:
        assert len(api.get(URL, {"limit": 500}).json()["results"]) == 10
    for kpi in kpis:
        add_months(kpi, 95, start=5)
    with CaptureQueriesContext(connection) as many:
        assert len(api.get(URL, {"limit": 500}).json()["results"]) == 200

    assert len(many.captured_queries) == len(few.captured_queries)
