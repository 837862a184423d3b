"""POST /api/v1/measurements/bulk/: all rows upserted, or none and every problem named."""

import datetime as dt
import json
import math

import pytest
from django.db import connection
from django.db.models import Max
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from metrics import ingest
from metrics.ingest import BulkValidationError, RowError, measurements_bulk_upsert
from metrics.models import Measurement
from tests import factories

#: The largest storable figure: just below the bound of core.bounds.
LARGEST = math.nextafter(1e15, 0)

pytestmark = pytest.mark.django_db

URL = "/api/v1/measurements/bulk/"


@pytest.fixture
def kpis(silo_a, silo_b):
    """Sales KPIs of each frequency, a Support KPI, and one stored measurement."""
    deals = factories.KPIFactory(silo=silo_a, slug="deals_closed")
    factories.MeasurementFactory(
        kpi=deals, period=dt.date(2024, 1, 1), value=10.0, source="crm"
    )
    return {
        "deals": deals,
        "calls": factories.KPIFactory(silo=silo_a, slug="calls", frequency="weekly"),
        "revenue": factories.KPIFactory(
            silo=silo_a, slug="revenue", frequency="quarterly"
        ),
        "tickets": factories.KPIFactory(silo=silo_b, slug="tickets"),
    }


def stored():
    """Return every measurement as (key, period, value, source, updated_at)."""
    return list(
        Measurement.objects.order_by("kpi__key", "period").values_list(
            "kpi__key", "period", "value", "source", "updated_at"
        )
    )


def post(api, rows):
    return api.post(URL, {"measurements": rows}, format="json")


def post_raw(api, body):
    return api.post(URL, body, content_type="application/json")


def row(kpi="sales.deals_closed", period="2024-02-01", value=12.5, **extra):
    return {"kpi": kpi, "period": period, "value": value, **extra}


def monthly_rows(keys, months, first_year=1900, value=1.0):
    """Return one row per KPI key and month, ``months`` months from ``first_year``."""
    return [
        row(key, f"{first_year + month // 12:04d}-{month % 12 + 1:02d}-01", value)
        for key in keys
        for month in range(months)
    ]


VALID_ROW = row(period="2024-01-01", value=11.0)  # would update the stored 10.0


@pytest.mark.parametrize(
    ("bad_row", "field", "message"),
    [
        (row(kpi="sales.nothing"), "kpi", "Unknown KPI 'sales.nothing'."),
        (row(kpi="not a key"), "kpi", "Unknown KPI 'not a key'."),
        (
            row(kpi=7),
            "kpi",
            "Give the KPI's key as a string, such as sales.deals_closed; got a number.",
        ),
        (
            row(kpi="support.tickets"),
            "kpi",
            "KPI 'support.tickets' belongs to silo 'support', which you do not "
            "manage; you may write only the KPIs of your own silos.",
        ),
        (
            {"kpi": "sales.deals_closed", "period": "2024-02-01"},
            "value",
            "This field is required.",
        ),
        (row(value="12"), "value", "Give a number; got a string."),
        (row(value=True), "value", "Give a number; got true."),
        (row(value=None), "value", "Give a number; got null."),
        (row(value=[1]), "value", "Give a number; got a list."),
        (
            {"kpi": "sales.deals_closed", "value": 1},
            "period",
            "This field is required.",
        ),
        (
            row(period="2024-13-01"),
            "period",
            "'2024-13-01' is not a date.",
        ),
        (
            row(period="01/02/2024"),
            "period",
            "Give the period's first day as a date, YYYY-MM-DD; got '01/02/2024'.",
        ),
        (
            row(period=20240201),
            "period",
            "Give the period's first day as a date, YYYY-MM-DD; got a number.",
        ),
        (
            row(period="2024-02-15"),
            "period",
            "KPI 'sales.deals_closed' is monthly: its period must be the first day "
            "of a month; got 2024-02-15.",
        ),
        (
            row(kpi="sales.calls", period="2024-02-01"),  # a Thursday
            "period",
            "KPI 'sales.calls' is weekly: its period must be a Monday; got 2024-02-01.",
        ),
        (
            row(kpi="sales.revenue", period="2024-02-01"),
            "period",
            "KPI 'sales.revenue' is quarterly: its period must be the first day of a "
            "quarter (1 Jan, 1 Apr, 1 Jul or 1 Oct); got 2024-02-01.",
        ),
        (
            row(period="2024-01-01"),
            "period",
            "Row 0 already gives KPI 'sales.deals_closed' a value for 2024-01-01; "
            "send each KPI and period once.",
        ),
        (
            row(source="x" * 101),
            "source",
            "Use at most 100 characters; got 101.",
        ),
        (row(source=None), "source", "Give the source as a string; got null."),
        (
            row(source="a\x00b"),
            "source",
            "The source cannot contain NUL characters.",
        ),
        (
            row(comment="from the CRM"),
            "comment",
            "Unknown field 'comment'; a row has kpi, period, value and (optionally) "
            "source.",
        ),
        (
            "sales.deals_closed,2024-02-01,12.5",
            "row",
            "Each row must be a JSON object with kpi, period and value; got a string.",
        ),
        (
            ["sales.deals_closed", "2024-02-01", 12.5],
            "row",
            "Each row must be a JSON object with kpi, period and value; got a list.",
        ),
    ],
)
def test_an_invalid_row_is_named_and_nothing_is_written(
    api, kpis, manager_a, bad_row, field, message
):
    before = stored()
    api.force_authenticate(manager_a)

    response = post(api, [VALID_ROW, bad_row])

    assert response.status_code == 400
    assert response.json() == {
        "errors": [{"index": 1, "field": field, "message": message}]
    }
    assert stored() == before


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_values_in_raw_json_are_row_errors(api, kpis, manager_a, literal):
    before = stored()
    api.force_authenticate(manager_a)
    body = (
        '{"measurements":[{"kpi":"sales.deals_closed","period":"2024-01-01",'
        '"value":1},{"kpi":"sales.deals_closed","period":"2024-02-01",'
        f'"value":{literal}}}]}}'
    )

    response = post_raw(api, body)

    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {
                "index": 1,
                "field": "value",
                "message": "Enter a finite number (not NaN or infinity).",
            }
        ]
    }
    assert stored() == before


@pytest.mark.parametrize(
    ("literal", "shown"),
    [
        ("1e15", "1e+15"),
        ("-1e15", "-1e+15"),
        ("1e155", "1e+155"),
        ("1.7e308", "1.7e+308"),
    ],
)
def test_values_of_magnitude_1e15_or_more_are_row_errors(
    api, kpis, manager_a, literal, shown
):
    # The review's reproduction: 1e155 in a mean KPI later broke PostgreSQL's AVG.
    before = stored()
    api.force_authenticate(manager_a)
    body = (
        '{"measurements":[{"kpi":"sales.deals_closed","period":"2024-01-01",'
        f'"value":{literal}}},{{"kpi":"sales.deals_closed","period":"2024-02-01",'
        '"value":999999999999999.9}]}'
    )

    response = post_raw(api, body)

    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {
                "index": 0,
                "field": "value",
                "message": "Enter a number whose magnitude is below 1e15 "
                f"(1,000,000,000,000,000); got {shown}. No KPI reaches that size: "
                "check the unit or the decimal point.",
            }
        ]
    }
    assert stored() == before


def test_every_problem_of_every_row_is_listed_in_row_order(api, kpis, manager_a):
    before = stored()
    api.force_authenticate(manager_a)
    rows = [
        row(kpi="sales.nothing", period="2024-01-15", value="x", extra=1),
        row(period="2024-03-01"),
        row(kpi="support.tickets", period="2024-02-15", value=float("inf")),
        row(period="2024-03-01", source=5),
        {},
        row(period="2024-03-01"),
    ]

    response = post_raw(api, json.dumps({"measurements": rows}))

    assert response.status_code == 400
    twice = (
        "Row 1 already gives KPI 'sales.deals_closed' a value for 2024-03-01; send "
        "each KPI and period once."
    )
    assert response.json()["errors"] == [
        {"index": 0, "field": "kpi", "message": "Unknown KPI 'sales.nothing'."},
        {"index": 0, "field": "value", "message": "Give a number; got a string."},
        {
            "index": 0,
            "field": "extra",
            "message": "Unknown field 'extra'; a row has kpi, period, value and "
            "(optionally) source.",
        },
        {
            "index": 2,
            "field": "kpi",
            "message": "KPI 'support.tickets' belongs to silo 'support', which you "
            "do not manage; you may write only the KPIs of your own silos.",
        },
        {
            "index": 2,
            "field": "period",
            "message": "KPI 'support.tickets' is monthly: its period must be the "
            "first day of a month; got 2024-02-15.",
        },
        {
            "index": 2,
            "field": "value",
            "message": "Enter a finite number (not NaN or infinity).",
        },
        {"index": 3, "field": "period", "message": twice},
        {
            "index": 3,
            "field": "source",
            "message": "Give the source as a string; got a number.",
        },
        {"index": 4, "field": "kpi", "message": "This field is required."},
        {"index": 4, "field": "period", "message": "This field is required."},
        {"index": 4, "field": "value", "message": "This field is required."},
        {"index": 5, "field": "period", "message": twice},
    ]
    assert stored() == before


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (
            [row()],
            [
                {
                    "index": None,
                    "field": "body",
                    "message": 'Send a JSON object: {"measurements": [...]}.',
                }
            ],
        ),
        (
            {"rows": [row()]},
            [
                {
                    "index": None,
                    "field": "rows",
                    "message": "Unknown field; the body holds only measurements.",
                },
                {
                    "index": None,
                    "field": "measurements",
                    "message": "This field is required.",
                },
            ],
        ),
        (
            {"measurements": row()},
            [
                {
                    "index": None,
                    "field": "measurements",
                    "message": "Give a list of rows (JSON objects).",
                }
            ],
        ),
    ],
)
def test_a_body_without_a_measurements_list_is_refused(
    api, kpis, manager_a, body, errors
):
    before = stored()
    api.force_authenticate(manager_a)

    response = api.post(URL, body, format="json")

    assert response.status_code == 400
    assert response.json() == {"errors": errors}
    assert stored() == before


def test_malformed_json_is_a_json_400(api, kpis, manager_a):
    before = stored()
    api.force_authenticate(manager_a)

    response = post_raw(api, '{"measurements": [{"kpi": "sales.deals_closed",')

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    (error,) = response.json()["errors"]
    assert (error["index"], error["field"]) == (None, "body")
    assert error["message"].startswith("JSON parse error - ")
    assert stored() == before


def test_a_body_over_the_size_limit_is_a_json_413(api, kpis, manager_a, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    before = stored()
    api.force_authenticate(manager_a)
    rows = monthly_rows(["sales.deals_closed"], 20, first_year=2030)
    body = json.dumps({"measurements": rows})
    assert 1000 < len(body.encode()) < 2000

    response = post_raw(api, body)

    assert response.status_code == 413
    assert response.json() == {"detail": "The request body is too large."}
    assert stored() == before


def test_a_body_that_is_not_json_is_a_415(api, kpis, manager_a):
    before = stored()
    api.force_authenticate(manager_a)

    response = api.post(
        URL,
        "kpi,period,value\nsales.deals_closed,2024-02-01,1\n",
        content_type="text/csv",
    )

    assert response.status_code == 415
    assert response.json() == {
        "detail": 'Unsupported media type "text/csv" in request.'
    }
    assert stored() == before


def test_too_many_rows_are_refused_and_nothing_is_written(api, silo_a, manager_a):
    keys = [factories.KPIFactory(silo=silo_a).key for _ in range(11)]
    api.force_authenticate(manager_a)
    rows = monthly_rows(keys, 1000)[:10_001]

    response = post(api, rows)

    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {
                "index": None,
                "field": "measurements",
                "message": "At most 10000 rows per request; got 10001.",
            }
        ]
    }
    assert Measurement.objects.count() == 0


def test_ten_thousand_rows_then_the_same_again_then_a_few_changes(
    api, silo_a, manager_a
):
    keys = [factories.KPIFactory(silo=silo_a).key for _ in range(10)]
    api.force_authenticate(manager_a)
    rows = monthly_rows(keys, 1000, value=1.5)

    first = post(api, rows)

    assert first.status_code == 200
    assert first.json() == {"created": 10_000, "updated": 0}
    assert Measurement.objects.count() == 10_000
    assert Measurement.objects.filter(value=1.5, source="").count() == 10_000
    assert Measurement.objects.filter(period=dt.date(1983, 4, 1)).count() == 10
    stamps = dict(Measurement.objects.values_list("id", "updated_at"))
    latest = Measurement.objects.aggregate(latest=Max("updated_at"))["latest"]

    again = post(api, rows)

    assert again.status_code == 200
    assert again.json() == {"created": 0, "updated": 0}
    assert Measurement.objects.aggregate(latest=Max("updated_at"))["latest"] == latest
    assert dict(Measurement.objects.values_list("id", "updated_at")) == stamps

    for changed in rows[:7]:
        changed["value"] = 2.5
    for changed in rows[-3:]:
        changed["source"] = "warehouse"
    changes = post(api, rows)

    assert changes.json() == {"created": 0, "updated": 10}
    assert Measurement.objects.filter(value=2.5).count() == 7
    assert Measurement.objects.filter(source="warehouse").count() == 3
    assert Measurement.objects.filter(updated_at__gt=latest).count() == 10
    assert Measurement.objects.count() == 10_000


@pytest.mark.parametrize("writer", ["postgresql", "portable"])
def test_a_mixed_request_counts_creates_and_updates_exactly(
    api, kpis, manager_a, monkeypatch, writer
):
    if writer == "portable":
        # The SQLite path, run here on PostgreSQL: it must give the same answers.
        monkeypatch.setattr(ingest, "upsert_postgresql", ingest.upsert_portable)
    factories.MeasurementFactory(
        kpi=kpis["deals"], period=dt.date(2024, 2, 1), value=20.0, source="crm"
    )
    factories.MeasurementFactory(
        kpi=kpis["deals"], period=dt.date(2024, 3, 1), value=30.0, source="crm"
    )
    january = Measurement.objects.get(period=dt.date(2024, 1, 1))
    api.force_authenticate(manager_a)
    rows = [
        row(period="2024-01-01", value=10, source="crm"),  # as stored
        row(period="2024-02-01", value=21.0, source="crm"),  # new value
        row(period="2024-03-01", value=30.0),  # source left out: now empty
        row(period="2024-04-01", value=0.1 + 0.2, source='a "b", {c}\\ NULL é'),
        row(kpi="sales.calls", period="2024-01-01", value=-3),  # a Monday
        row(kpi="sales.revenue", period="2024-04-01", value=LARGEST),
    ]

    response = post(api, rows)

    assert response.status_code == 200
    assert response.json() == {"created": 3, "updated": 2}
    assert [
        (key, period, value, source) for key, period, value, source, _ in stored()
    ] == [
        ("sales.calls", dt.date(2024, 1, 1), -3.0, ""),
        ("sales.deals_closed", dt.date(2024, 1, 1), 10.0, "crm"),
        ("sales.deals_closed", dt.date(2024, 2, 1), 21.0, "crm"),
        ("sales.deals_closed", dt.date(2024, 3, 1), 30.0, ""),
        ("sales.deals_closed", dt.date(2024, 4, 1), 0.1 + 0.2, 'a "b", {c}\\ NULL é'),
        ("sales.revenue", dt.date(2024, 4, 1), LARGEST, ""),
    ]
    january.refresh_from_db()
    assert (
        Measurement.objects.get(
            period=dt.date(2024, 1, 1), kpi=kpis["deals"]
        ).updated_at
        == january.updated_at
    )
    assert post(api, rows).json() == {"created": 0, "updated": 0}


def test_a_manager_is_refused_another_silos_row_and_nothing_is_written(
    api, kpis, manager_a
):
    before = stored()
    api.force_authenticate(manager_a)

    response = post(
        api, [row(period="2024-05-01"), row(kpi="support.tickets", period="2024-05-01")]
    )

    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {
                "index": 1,
                "field": "kpi",
                "message": "KPI 'support.tickets' belongs to silo 'support', which "
                "you do not manage; you may write only the KPIs of your own silos.",
            }
        ]
    }
    assert stored() == before


@pytest.mark.parametrize("role", ["cco", "superuser"])
def test_the_cco_team_and_superusers_write_every_silo(api, kpis, request, role):
    api.force_authenticate(request.getfixturevalue(role))

    response = post(
        api, [row(period="2024-05-01"), row(kpi="support.tickets", period="2024-05-01")]
    )

    assert response.status_code == 200
    assert response.json() == {"created": 2, "updated": 0}
    assert Measurement.objects.filter(period=dt.date(2024, 5, 1)).count() == 2


def test_manager_b_writes_their_own_silo(api, kpis, manager_b):
    api.force_authenticate(manager_b)

    response = post(api, [row(kpi="support.tickets", period="2024-05-01", value=7)])

    assert response.json() == {"created": 1, "updated": 0}
    assert Measurement.objects.get(kpi=kpis["tickets"]).value == 7.0


@pytest.mark.parametrize(
    ("user", "status", "detail"),
    [
        (None, 401, "Authentication credentials were not provided."),
        ("reader", 403, "Your role may read here but not write."),
        (
            "nobody",
            403,
            "Your account has no ducttape role (BI readers, Silo managers, CCO team).",
        ),
    ],
)
def test_anonymous_readers_and_users_without_a_role_are_refused(
    api, kpis, request, user, status, detail
):
    before = stored()
    if user == "nobody":
        api.force_authenticate(factories.UserFactory(username="nobody"))
    elif user:
        api.force_authenticate(request.getfixturevalue(user))

    response = post(api, [row(period="2024-05-01")])

    assert response.status_code == status
    assert response.json() == {"detail": detail}
    assert stored() == before


def test_the_service_refuses_a_reader_row_by_row(kpis, reader):
    with pytest.raises(BulkValidationError) as refused:
        measurements_bulk_upsert(user=reader, rows=[row(period="2024-05-01")])

    assert refused.value.errors == [
        RowError(
            0,
            "kpi",
            "KPI 'sales.deals_closed' belongs to silo 'sales', which you do not "
            "manage; you may write only the KPIs of your own silos.",
        )
    ]
    assert Measurement.objects.count() == 1


def test_an_empty_list_writes_nothing(api, kpis, manager_a):
    api.force_authenticate(manager_a)

    response = post(api, [])

    assert response.json() == {"created": 0, "updated": 0}
    assert Measurement.objects.count() == 1


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="The portable (SQLite) path reads stored rows per chunk of 400.",
)
def test_query_count_does_not_grow_with_rows(api, silo_a, manager_a):
    keys = [factories.KPIFactory(silo=silo_a).key for _ in range(10)]
    # A token loads the user afresh on each request, as in production.
    token = Token.objects.create(user=manager_a)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    with CaptureQueriesContext(connection) as few:
        assert post(api, monthly_rows(keys, 10)).json() == {
            "created": 100,
            "updated": 0,
        }
    with CaptureQueriesContext(connection) as many:
        assert post(api, monthly_rows(keys, 100, first_year=2000)).json() == {
            "created": 1000,
            "updated": 0,
        }

    assert len(many.captured_queries) == len(few.captured_queries)
