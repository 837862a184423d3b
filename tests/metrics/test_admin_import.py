"""CSV import of measurements in the admin: scoped to the user's silos, all or nothing."""

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from metrics.models import Measurement
from tests import factories

pytestmark = pytest.mark.django_db

IMPORT_URL = "/admin/metrics/measurement/import/"
PROCESS_URL = "/admin/metrics/measurement/process_import/"


@pytest.fixture
def kpis(silo_a, silo_b):
    return {
        "deals": factories.KPIFactory(silo=silo_a, slug="deals_closed"),
        "csat": factories.KPIFactory(silo=silo_b, slug="csat", aggregation="mean"),
    }


def upload(client, text):
    return client.post(
        IMPORT_URL,
        {
            "format": "0",
            "import_file": SimpleUploadedFile(
                "measurements.csv", text.encode(), content_type="text/csv"
            ),
        },
    )


def confirm(client, preview):
    form = preview.context["confirm_form"]
    return client.post(PROCESS_URL, {name: form[name].value() for name in form.fields})


def stored():
    return sorted(
        Measurement.objects.values_list("kpi__key", "period", "value", "source")
    )


def test_good_file_is_previewed_then_imported(client, kpis, manager_a):
    client.force_login(manager_a)
    preview = upload(
        client,
        "kpi,period,value,source\n"
        "sales.deals_closed,2024-01-01,12,crm\n"
        "sales.deals_closed,2024-02-01,15.5,crm\n",
    )

    assert preview.status_code == 200
    assert not preview.context["result"].has_errors()
    assert not preview.context["result"].has_validation_errors()
    assert Measurement.objects.count() == 0  # the preview is a dry run

    response = confirm(client, preview)

    assert response.status_code == 302
    assert stored() == [
        ("sales.deals_closed", dt.date(2024, 1, 1), 12.0, "crm"),
        ("sales.deals_closed", dt.date(2024, 2, 1), 15.5, "crm"),
    ]


def test_reimport_updates_existing_periods(client, kpis, manager_a):
    factories.MeasurementFactory(kpi=kpis["deals"], period=dt.date(2024, 1, 1), value=1)
    client.force_login(manager_a)

    confirm(
        client, upload(client, "kpi,period,value\nsales.deals_closed,2024-01-01,9\n")
    )

    assert stored() == [("sales.deals_closed", dt.date(2024, 1, 1), 9.0, "")]


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        ("support.csat,2024-01-01,4.1", "a KPI of a silo you do not manage"),
        ("sales.nonexistent,2024-01-01,4.1", "Unknown KPI"),
        ("sales.deals_closed,2024-01-15,3", "must be the first day of a month"),
        ("sales.deals_closed,2024-02-01,nan", "Enter a finite number"),
        ("sales.deals_closed,2024-02-01,inf", "Enter a finite number"),
        ("sales.deals_closed,2024-02-01,lots", "lots&#x27; is not a number."),
        ("sales.deals_closed,2024-01-01,7", "has two rows for period 2024-01-01"),
    ],
)
def test_a_file_with_any_bad_row_shows_it_and_writes_nothing(
    client, kpis, manager_a, bad_row, message
):
    client.force_login(manager_a)
    text = f"kpi,period,value\nsales.deals_closed,2024-01-01,12\n{bad_row}\n"

    response = upload(client, text)

    assert response.status_code == 200
    result = response.context["result"]
    assert result.has_errors() or result.has_validation_errors()
    assert (
        "confirm_form" not in response.context
        or response.context["confirm_form"] is None
    )
    assert message in response.content.decode()
    assert Measurement.objects.count() == 0


def test_cco_team_imports_for_any_silo(client, kpis, cco):
    client.force_login(cco)
    preview = upload(
        client,
        "kpi,period,value\nsales.deals_closed,2024-01-01,12\nsupport.csat,2024-01-01,4.4\n",
    )

    confirm(client, preview)

    assert stored() == [
        ("sales.deals_closed", dt.date(2024, 1, 1), 12.0, ""),
        ("support.csat", dt.date(2024, 1, 1), 4.4, ""),
    ]


def test_export_is_scoped_to_the_managers_silos(client, kpis, manager_a):
    factories.MeasurementFactory(kpi=kpis["deals"], period=dt.date(2024, 1, 1), value=3)
    factories.MeasurementFactory(kpi=kpis["csat"], period=dt.date(2024, 1, 1), value=4)
    client.force_login(manager_a)

    response = client.post(
        "/admin/metrics/measurement/export/",
        {
            "format": "0",
            "resource": "0",
            "measurementresource_kpi": "on",
            "measurementresource_period": "on",
            "measurementresource_value": "on",
            "measurementresource_source": "on",
        },
    )

    assert response.status_code == 200
    assert response.content.decode().splitlines() == [
        "kpi,period,value,source",
        "sales.deals_closed,2024-01-01,3.0,",
    ]


def test_a_file_over_the_size_cap_is_refused_before_reading(client, kpis, manager_a):
    from metrics.imports import MeasurementImportForm

    client.force_login(manager_a)
    row = "sales.deals_closed,2024-01-01,12\n"
    text = "kpi,period,value\n" + row * (
        MeasurementImportForm.MAX_BYTES // len(row) + 1
    )

    response = upload(client, text)

    assert response.status_code == 200
    errors = response.context["form"].errors["import_file"]
    assert errors == [
        "The file is 5.0 MB; the admin imports at most 5 MB at once. Split it, or use "
        "the bulk API for pipelines."
    ]
    assert Measurement.objects.count() == 0
