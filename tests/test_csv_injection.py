"""Issue 10, point 3: every CSV the project writes is safe to open in a spreadsheet.

A cell that starts with =, +, -, @, a tab or a carriage return runs as a formula in
Excel and LibreOffice; such text gets a leading apostrophe (OWASP's CSV injection
guidance), in one place (core.csv). Numbers stay numbers.
"""

import csv
import datetime as dt
import io

import pytest

from core.csv import spreadsheet_cell
from tests import factories

pytestmark = pytest.mark.django_db

HYPERLINK = '=HYPERLINK("http://evil.example/","x")'
CALC = "+cmd|' /C calc'!A0"


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (HYPERLINK, "'" + HYPERLINK),
        ("-2+3", "'-2+3"),
        ("@SUM(1+1)", "'@SUM(1+1)"),
        (CALC, "'" + CALC),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("-", "'-"),
        # Text that is a plain number is a number, not a formula.
        ("-3.5", "-3.5"),
        ("+2", "+2"),
        ("-1e-05", "-1e-05"),
        # Anything else is left alone, wherever a sign appears in it.
        ("Deals = wins", "Deals = wins"),
        ("", ""),
        (-3.5, -3.5),
        (None, None),
        (dt.date(2027, 1, 1), dt.date(2027, 1, 1)),
    ],
)
def test_spreadsheet_cell(value, written):
    assert spreadsheet_cell(value) == written


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_the_reviews_names_and_units_are_neutralized_in_the_figures_csv(api, reader):
    silo = factories.SiloFactory(slug="sales", name="@SUM(1+1)")
    kpi = factories.KPIFactory(silo=silo, slug="evil", name=HYPERLINK, unit="-2+3")
    factories.MeasurementFactory(kpi=kpi, period=dt.date(2027, 1, 1), value=-3.5)
    api.force_authenticate(reader)

    response = api.get("/api/v1/figures/?format=csv")
    rows = rows_of(b"".join(response.streaming_content).decode())

    assert rows[0][:8] == [
        "period",
        "silo",
        "silo_name",
        "kpi",
        "kpi_name",
        "unit",
        "direction",
        "value",
    ]
    assert rows[1][:10] == [
        "2027-01-01",
        "sales",
        "'@SUM(1+1)",
        "sales.evil",
        "'" + HYPERLINK,
        "'-2+3",
        "higher_is_better",
        "-3.5",
        "",
        "",
    ]
    assert len(rows) == 2


def test_a_formula_note_is_neutralized_in_the_register_csv(client, cco):
    factories.ConflictFactory(note="=1+1 " + HYPERLINK)
    client.force_login(cco)

    response = client.get("/report/conflicts.csv")
    rows = rows_of(b"".join(response.streaming_content).decode())

    note = rows[0].index("note")
    assert rows[1][note] == "'=1+1 " + HYPERLINK
    assert rows[1][rows[0].index("correlation")] == "-0.71"


def test_the_reviews_source_is_neutralized_in_the_admin_export(client, cco):
    kpi = factories.KPIFactory(
        slug="deals_closed", silo=factories.SiloFactory(slug="sales")
    )
    factories.MeasurementFactory(
        kpi=kpi, period=dt.date(2024, 1, 1), value=-3.5, source=CALC
    )
    factories.MeasurementFactory(
        kpi=kpi, period=dt.date(2024, 2, 1), value=2.0, source="crm"
    )
    client.force_login(cco)

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
    assert rows_of(response.content.decode()) == [
        ["kpi", "period", "value", "source"],
        ["sales.deals_closed", "2024-01-01", "-3.5", "'" + CALC],
        ["sales.deals_closed", "2024-02-01", "2.0", "crm"],
    ]
