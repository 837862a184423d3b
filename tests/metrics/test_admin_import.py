"""CSV import of measurements in the admin: upload, a read-only preview, confirm.

Scoped to the user's silos, checked with the bulk API's rules (every problem of every
row in one round), written all or nothing through the bulk API's upsert.
"""

import datetime as dt
import re
import threading
import time

import pytest
import tablib
from django.contrib.admin.models import LogEntry
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from import_export import fields, resources, widgets

from metrics import csv_files, imports
from metrics.imports import Change, Problem
from metrics.ingest import BulkResult, measurements_bulk_upsert
from metrics.models import KPI, Measurement, MeasurementImport
from metrics.signals import measurements_changed
from tests import factories

pytestmark = pytest.mark.django_db

IMPORT_URL = "/admin/metrics/measurement/import/"
CHANGELIST_URL = "/admin/metrics/measurement/"
PREVIEW_URL = re.compile(r"/admin/metrics/measurement/import/(\d+)/")


@pytest.fixture
def kpis(silo_a, silo_b):
    return {
        "deals": factories.KPIFactory(silo=silo_a, slug="deals_closed"),
        "csat": factories.KPIFactory(silo=silo_b, slug="csat", aggregation="mean"),
    }


def upload(client, content, name="measurements.csv"):
    data = content if isinstance(content, bytes) else content.encode()
    return client.post(
        IMPORT_URL,
        {"import_file": SimpleUploadedFile(name, data, content_type="text/csv")},
    )


def import_id_of(response) -> int:
    """The id of the import an upload stored (it redirects to the import's preview)."""
    assert response.status_code == 302, response.content.decode()[:2000]
    match = PREVIEW_URL.fullmatch(response["Location"])
    assert match, response["Location"]
    return int(match.group(1))


def preview(client, import_id):
    return client.get(f"{IMPORT_URL}{import_id}/")


def confirm(client, import_id):
    return client.post(f"{IMPORT_URL}{import_id}/confirm/")


def upload_and_preview(client, content):
    import_id = import_id_of(upload(client, content))
    response = preview(client, import_id)
    assert response.status_code == 200
    return import_id, response


def counts(response):
    summary = response.context["preview"]
    return {
        "rows": summary.rows,
        "new": summary.new,
        "changed": summary.changed,
        "unchanged": summary.unchanged,
        "problems": summary.problem_count,
    }


def messages_of(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


def upload_errors(response):
    """The upload form's errors on the file; the upload stored nothing."""
    assert response.status_code == 200
    assert MeasurementImport.objects.count() == 0
    return response.context["form"].errors["import_file"]


def stored():
    return sorted(
        Measurement.objects.values_list("kpi__key", "period", "value", "source")
    )


# --- The flow -------------------------------------------------------------------------


def test_good_file_is_previewed_then_imported(client, kpis, manager_a):
    client.force_login(manager_a)
    text = (
        "kpi,period,value,source\n"
        "sales.deals_closed,2024-01-01,12,crm\n"
        "sales.deals_closed,2024-02-01,15.5,crm\n"
    )

    import_id = import_id_of(upload(client, text))

    record = MeasurementImport.objects.get()
    assert (record.pk, record.user, record.filename, record.content) == (
        import_id,
        manager_a,
        "measurements.csv",
        text,
    )
    response = preview(client, import_id)
    assert response.status_code == 200
    assert counts(response) == {
        "rows": 2,
        "new": 2,
        "changed": 0,
        "unchanged": 0,
        "problems": 0,
    }
    assert response.context["preview"].changes == [
        Change(2, "sales.deals_closed", dt.date(2024, 1, 1), 12.0, "crm", None, None),
        Change(3, "sales.deals_closed", dt.date(2024, 2, 1), 15.5, "crm", None, None),
    ]
    assert f'action="{IMPORT_URL}{import_id}/confirm/"' in response.content.decode()
    assert Measurement.objects.count() == 0  # the preview writes nothing

    response = confirm(client, import_id)

    assert response.status_code == 302
    assert response["Location"] == CHANGELIST_URL
    assert messages_of(response) == ["Imported 2 rows: 2 new, 0 changed, 0 unchanged."]
    assert stored() == [
        ("sales.deals_closed", dt.date(2024, 1, 1), 12.0, "crm"),
        ("sales.deals_closed", dt.date(2024, 2, 1), 15.5, "crm"),
    ]
    assert MeasurementImport.objects.count() == 0  # a confirmed import is deleted
    entry = LogEntry.objects.get()
    assert (entry.user, entry.object_repr, entry.change_message) == (
        manager_a,
        "CSV import measurements.csv",
        "Imported 2 rows: 2 new, 0 changed, 0 unchanged.",
    )


def test_reimport_counts_new_changed_and_unchanged_rows(client, kpis, manager_a):
    old = timezone.now() - dt.timedelta(days=3)
    factories.MeasurementFactory(
        kpi=kpis["deals"], period=dt.date(2024, 1, 1), value=1, source="crm"
    )
    kept = factories.MeasurementFactory(
        kpi=kpis["deals"], period=dt.date(2024, 2, 1), value=5, source=""
    )
    Measurement.objects.filter(pk=kept.pk).update(updated_at=old)
    client.force_login(manager_a)

    import_id, response = upload_and_preview(
        client,
        "kpi,period,value\n"
        "sales.deals_closed,2024-01-01,9\n"
        "sales.deals_closed,2024-02-01,5\n"
        "sales.deals_closed,2024-03-01,7\n",
    )

    assert counts(response) == {
        "rows": 3,
        "new": 1,
        "changed": 1,
        "unchanged": 1,
        "problems": 0,
    }
    # Without a source column, the source becomes empty (as in the bulk API): shown.
    assert response.context["preview"].changes == [
        Change(2, "sales.deals_closed", dt.date(2024, 1, 1), 9.0, "", 1.0, "crm"),
        Change(4, "sales.deals_closed", dt.date(2024, 3, 1), 7.0, "", None, None),
    ]
    response = confirm(client, import_id)
    assert messages_of(response) == ["Imported 3 rows: 1 new, 1 changed, 1 unchanged."]
    assert stored() == [
        ("sales.deals_closed", dt.date(2024, 1, 1), 9.0, ""),
        ("sales.deals_closed", dt.date(2024, 2, 1), 5.0, ""),
        ("sales.deals_closed", dt.date(2024, 3, 1), 7.0, ""),
    ]
    assert Measurement.objects.get(pk=kept.pk).updated_at == old


def test_confirm_sends_measurements_changed_once_after_commit(
    client, kpis, cco, django_capture_on_commit_callbacks
):
    received = []

    def receiver(sender, kpi_ids, **kwargs):
        received.append(kpi_ids)

    measurements_changed.connect(receiver)
    try:
        client.force_login(cco)
        import_id, _ = upload_and_preview(
            client,
            "kpi,period,value\n"
            "support.csat,2024-01-01,4.1\n"
            "sales.deals_closed,2024-01-01,3\n"
            "sales.deals_closed,2024-02-01,4\n",
        )
        with django_capture_on_commit_callbacks(execute=True):
            confirm(client, import_id)
        assert received == [sorted([kpis["deals"].pk, kpis["csat"].pk])]

        # Importing the same rows again changes nothing, so no roll-up is asked for.
        again, _ = upload_and_preview(
            client, "kpi,period,value\nsales.deals_closed,2024-01-01,3\n"
        )
        with django_capture_on_commit_callbacks(execute=True):
            response = confirm(client, again)
        assert messages_of(response)[-1] == (
            "Imported 1 rows: 0 new, 0 changed, 1 unchanged."
        )
        assert len(received) == 1
    finally:
        measurements_changed.disconnect(receiver)


def test_the_preview_only_reads(client, kpis, manager_a):
    factories.MeasurementFactory(kpi=kpis["deals"], period=dt.date(2024, 1, 1))
    client.force_login(manager_a)
    import_id = import_id_of(
        upload(client, "kpi,period,value\nsales.deals_closed,2024-01-01,9\n")
    )

    with CaptureQueriesContext(connection) as queries:
        response = preview(client, import_id)

    assert response.status_code == 200
    statements = [query["sql"] for query in queries.captured_queries]
    assert statements
    assert all(sql.startswith("SELECT") for sql in statements), statements
    assert not any("FOR UPDATE" in sql for sql in statements)


# --- Problems: all of them, in one round ----------------------------------------------


@pytest.mark.parametrize(
    ("bad_row", "column", "message"),
    [
        (
            "support.csat,2024-01-01,4.1",
            "kpi",
            "KPI 'support.csat' belongs to silo 'support', which you do not manage; "
            "you may write only the KPIs of your own silos.",
        ),
        ("sales.nonexistent,2024-01-01,4.1", "kpi", "Unknown KPI 'sales.nonexistent'."),
        (
            "sales.deals_closed,2024-01-15,3",
            "period",
            "KPI 'sales.deals_closed' is monthly: its period must be the first day of "
            "a month; got 2024-01-15.",
        ),
        (
            "sales.deals_closed,15.01.2024,3",
            "period",
            "Give the period's first day as a date, YYYY-MM-DD; got '15.01.2024'.",
        ),
        (
            "sales.deals_closed,2024-02-01,nan",
            "value",
            "Enter a finite number (not NaN or infinity).",
        ),
        (
            "sales.deals_closed,2024-02-01,-inf",
            "value",
            "Enter a finite number (not NaN or infinity).",
        ),
        (
            "sales.deals_closed,2024-02-01,1e400",
            "value",
            "Enter a finite number (not NaN or infinity).",
        ),
        (
            "sales.deals_closed,2024-02-01,1e15",
            "value",
            "Enter a number whose magnitude is below 1e15 (1,000,000,000,000,000); "
            "got 1e+15. No KPI reaches that size: check the unit or the decimal point.",
        ),
        ("sales.deals_closed,2024-02-01,lots", "value", "'lots' is not a number."),
        (
            'sales.deals_closed,2024-02-01,"12,5"',
            "value",
            "'12,5' is not a number (use a decimal point).",
        ),
        ("sales.deals_closed,2024-02-01,", "value", "This field is required."),
        (
            "sales.deals_closed,2024-01-01,7",
            "period",
            "Line 2 already gives KPI 'sales.deals_closed' a value for 2024-01-01; "
            "send each KPI and period once.",
        ),
        (
            "sales.deals_closed,2024-02-01,12,5",
            "row",
            "This row has 4 cells, more than the header's 3 columns: a cell holding "
            "a comma must be in double quotes.",
        ),
    ],
)
def test_a_file_with_any_bad_row_shows_it_and_writes_nothing(
    client, kpis, manager_a, bad_row, column, message
):
    client.force_login(manager_a)
    text = f"kpi,period,value\nsales.deals_closed,2024-01-01,12\n{bad_row}\n"

    import_id, response = upload_and_preview(client, text)

    summary = response.context["preview"]
    assert summary.problems == [Problem(3, column, message)]
    assert not summary.can_import
    page = response.content.decode()
    assert "/confirm/" not in page  # no confirm button
    assert "Nothing can be imported until every problem below is fixed" in page

    # Posting the confirmation anyway writes nothing and shows the problem again.
    response = confirm(client, import_id)
    assert response.status_code == 200
    assert response.context["preview"].problems == [Problem(3, column, message)]
    assert Measurement.objects.count() == 0
    assert MeasurementImport.objects.filter(pk=import_id).exists()


def test_every_rows_problem_is_reported_in_one_round(client, kpis, manager_a):
    client.force_login(manager_a)
    text = (
        "kpi,period,value,source\n"
        "sales.deals_closed,2024-01-01,12,crm\n"
        "sales.unknown,2024-01-01,1,\n"
        "sales.deals_closed,2024-02-30,2,\n"
        "sales.deals_closed,2024-03-01,many,\n"
        "support.csat,2024-01-07,abc,\n"
        "\n"
        "sales.deals_closed,2024-01-01,13,crm\n"
        ",,,\n"
        "sales.deals_closed,2024-04-01,4,crm\n"
    )

    _, response = upload_and_preview(client, text)

    assert counts(response) == {
        # Blank lines (and rows of empty cells) are not rows.
        "rows": 7,
        # Of the 2 valid rows: nothing is stored yet.
        "new": 2,
        "changed": 0,
        "unchanged": 0,
        "problems": 7,
    }
    assert response.context["preview"].invalid_rows == 5
    assert response.context["preview"].problems == [
        Problem(3, "kpi", "Unknown KPI 'sales.unknown'."),
        Problem(4, "period", "'2024-02-30' is not a date."),
        Problem(5, "value", "'many' is not a number."),
        Problem(
            6,
            "kpi",
            "KPI 'support.csat' belongs to silo 'support', which you do not manage; "
            "you may write only the KPIs of your own silos.",
        ),
        Problem(
            6,
            "period",
            "KPI 'support.csat' is monthly: its period must be the first day of a "
            "month; got 2024-01-07.",
        ),
        Problem(6, "value", "'abc' is not a number."),
        Problem(
            8,
            "period",
            "Line 2 already gives KPI 'sales.deals_closed' a value for 2024-01-01; "
            "send each KPI and period once.",
        ),
    ]
    page = response.content.decode()
    assert "Unknown KPI &#x27;sales.unknown&#x27;." in page
    assert "&#x27;many&#x27; is not a number." in page
    assert Measurement.objects.count() == 0


# --- Delimiters, decimal commas, encodings ----------------------------------------------


@pytest.mark.parametrize(
    ("text", "delimiter_name"),
    [
        (
            "kpi;period;value;source\n"
            "sales.deals_closed;2024-01-01;12,5;crm\n"
            "sales.deals_closed;2024-02-01;-0,25;crm, north\n"
            "sales.deals_closed;2024-03-01;1e3;\n"
            "sales.deals_closed;2024-04-01;7.75;\n",
            "semicolon",
        ),
        (
            "kpi\tperiod\tvalue\tsource\r\n"
            "sales.deals_closed\t2024-01-01\t12.5\tcrm\r\n"
            "sales.deals_closed\t2024-02-01\t-0.25\tcrm, north\r\n"
            "sales.deals_closed\t2024-03-01\t1000\t\r\n"
            "sales.deals_closed\t2024-04-01\t7.75\t\r\n",
            "tab",
        ),
        (
            "KPI , Period , Value , Source\r\n"
            "sales.deals_closed,2024-01-01,12.5,crm\r\n"
            'sales.deals_closed,2024-02-01,-0.25,"crm, north"\r\n'
            "sales.deals_closed,2024-03-01,1000,\r\n"
            "sales.deals_closed,2024-04-01, 7.75 ,\r\n",
            "comma",
        ),
    ],
    ids=["semicolon", "tab", "comma"],
)
def test_semicolon_tab_and_comma_files_import_the_same(
    client, kpis, manager_a, text, delimiter_name
):
    client.force_login(manager_a)

    import_id, response = upload_and_preview(client, text)

    assert response.context["preview"].delimiter_name == delimiter_name
    assert counts(response) == {
        "rows": 4,
        "new": 4,
        "changed": 0,
        "unchanged": 0,
        "problems": 0,
    }
    confirm(client, import_id)
    assert stored() == [
        ("sales.deals_closed", dt.date(2024, 1, 1), 12.5, "crm"),
        ("sales.deals_closed", dt.date(2024, 2, 1), -0.25, "crm, north"),
        ("sales.deals_closed", dt.date(2024, 3, 1), 1000.0, ""),
        ("sales.deals_closed", dt.date(2024, 4, 1), 7.75, ""),
    ]


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ("kpi;period;value;source\nsales.a;2024-01-01;1,5;crm, north\n", ";"),
        ("kpi,period,value,source\nsales.a,2024-01-01,1,x; y; z\n", ","),
        ('kpi,period,value,source\nsales.a,2024-01-01,1,"x; y"\n', ","),
        ("kpi\tperiod\tvalue\tsource\nsales.a\t2024-01-01\t1\ta, b\n", "\t"),
        ("kpi;period;value\n", ";"),
        # Nothing to go by: a comma, and the header check then names what is wrong.
        ("kpi period value\n", ","),
    ],
)
def test_the_delimiter_is_sniffed(text, delimiter):
    assert csv_files.sniff_delimiter(text) == delimiter


def test_a_semicolon_value_with_both_separators_is_refused(client, kpis, manager_a):
    client.force_login(manager_a)

    _, response = upload_and_preview(
        client,
        "kpi;period;value\n"
        "sales.deals_closed;2024-01-01;1.234,5\n"
        "sales.deals_closed;2024-02-01;1,234,5\n",
    )

    message = "is not a number: write it without thousands separators, such as 1234,5."
    assert response.context["preview"].problems == [
        Problem(2, "value", f"'1.234,5' {message}"),
        Problem(3, "value", f"'1,234,5' {message}"),
    ]


def test_a_utf8_file_with_a_bom_and_non_ascii_sources(client, kpis, manager_a):
    client.force_login(manager_a)
    text = "kpi,period,value,source\nsales.deals_closed,2024-01-01,3,Führung ✓\n"

    import_id, response = upload_and_preview(client, "\ufeff".encode() + text.encode())

    assert counts(response)["new"] == 1
    confirm(client, import_id)
    assert stored() == [("sales.deals_closed", dt.date(2024, 1, 1), 3.0, "Führung ✓")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "kpi,period,value,source\nsales.deals_closed,2024-01-01,3,Führung\n".encode(
                "latin-1"
            ),
            "The file is not UTF-8 text: line 2 holds the byte 0xFC, which UTF-8 does "
            "not allow there. In Excel, save it as \u201cCSV UTF-8\u201d; elsewhere, "
            "choose the UTF-8 encoding.",
        ),
        (
            "kpi\tperiod\tvalue\n".encode("utf-16"),
            "The file is UTF-16 text (Excel's \u201cUnicode text\u201d). Save it as "
            "\u201cCSV UTF-8\u201d instead.",
        ),
        (
            b"kpi,period,value\nsales.deals_closed,2024-01-01,3\x00\n",
            "The file holds NUL characters: it is not a CSV text file.",
        ),
        (b"  \r\n\r\n", "The file is empty."),
        (
            b"kpi,period,value\n\n",
            "The file has a header (line 1) but no rows of measurements.",
        ),
        (
            b"kpi,value\nsales.deals_closed,3\n",
            "The header row lacks the column(s) 'period'; it must name kpi, period and "
            "value, and may name source (found: 'kpi', 'value').",
        ),
        (
            b"kpi,period,value,sorce\nsales.deals_closed,2024-01-01,3,crm\n",
            "The header row has unknown column(s) 'sorce'; it must name kpi, period "
            "and value, and may name source (found: 'kpi', 'period', 'value', "
            "'sorce').",
        ),
        (
            b"kpi,period,value,value\nsales.deals_closed,2024-01-01,3,4\n",
            "The header names 'value' more than once; name each column once.",
        ),
        (
            b'kpi,period,value\nsales.deals_closed,2024-01-01,"3\n',
            "Line 2 cannot be read as CSV (unexpected end of data); check its quotes.",
        ),
    ],
    ids=[
        "latin-1",
        "utf-16",
        "nul",
        "empty",
        "header-only",
        "missing-column",
        "unknown-column",
        "twice",
        "open-quote",
    ],
)
def test_a_file_that_cannot_be_read_is_refused_at_upload(
    client, kpis, manager_a, content, message
):
    client.force_login(manager_a)

    response = upload(client, content)

    assert upload_errors(response) == [message]
    assert message.replace("'", "&#x27;") in response.content.decode()
    assert Measurement.objects.count() == 0


def test_a_file_over_the_size_cap_is_refused_before_reading(client, kpis, manager_a):
    client.force_login(manager_a)
    row = "sales.deals_closed,2024-01-01,12\n"
    text = "kpi,period,value\n" + row * (imports.MAX_BYTES // len(row) + 1)

    response = upload(client, text)

    assert upload_errors(response) == [
        "The file is 5.0 MB; the admin imports at most 5 MB at once. Split it, or use "
        "the bulk API for pipelines."
    ]


def test_a_file_over_the_row_cap_is_refused(client, kpis, manager_a):
    client.force_login(manager_a)
    rows = "".join(
        f"sales.deals_closed,{1900 + n // 12}-{n % 12 + 1:02d}-01,1\n"
        for n in range(imports.MAX_ROWS + 2)
    )

    response = upload(client, "kpi,period,value\n" + rows)

    assert upload_errors(response) == [
        "The file has 50,002 rows; the admin imports at most 50,000 at once. Split "
        "it, or use the bulk API for pipelines."
    ]


# --- Who may import what --------------------------------------------------------------


def test_cco_team_imports_for_any_silo(client, kpis, cco):
    client.force_login(cco)
    import_id, response = upload_and_preview(
        client,
        "kpi,period,value\nsales.deals_closed,2024-01-01,12\nsupport.csat,2024-01-01,4.4\n",
    )
    assert counts(response)["new"] == 2

    confirm(client, import_id)

    assert stored() == [
        ("sales.deals_closed", dt.date(2024, 1, 1), 12.0, ""),
        ("support.csat", dt.date(2024, 1, 1), 4.4, ""),
    ]


def test_readers_and_anonymous_users_cannot_import(client, kpis, manager_a, reader):
    record = MeasurementImport.objects.create(
        user=reader,
        filename="m.csv",
        content="kpi,period,value\nsales.deals_closed,2024-01-01,3\n",
    )
    urls = [
        ("get", IMPORT_URL),
        ("post", IMPORT_URL),
        ("get", f"{IMPORT_URL}{record.pk}/"),
        ("post", f"{IMPORT_URL}{record.pk}/confirm/"),
        ("get", f"{IMPORT_URL}template/sales/"),
    ]
    for method, url in urls:
        response = getattr(client, method)(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/?next=")

    client.force_login(reader)
    for method, url in urls:
        assert getattr(client, method)(url).status_code == 403, url
    page = client.get(CHANGELIST_URL).content.decode()
    assert "Import CSV" not in page
    assert "CSV template" not in page
    assert Measurement.objects.count() == 0
    assert MeasurementImport.objects.count() == 1


def test_only_the_uploader_previews_and_confirms_an_import(
    client, kpis, manager_a, cco
):
    client.force_login(manager_a)
    import_id = import_id_of(
        upload(client, "kpi,period,value\nsales.deals_closed,2024-01-01,3\n")
    )
    gone = (
        "That import does not exist: it was imported already, or it expired (imports "
        "are kept for 24 hours). Upload the file again."
    )

    client.force_login(cco)
    for response in (preview(client, import_id), confirm(client, import_id)):
        assert response.status_code == 302
        assert response["Location"] == CHANGELIST_URL
        assert messages_of(response)[-1] == gone
    assert Measurement.objects.count() == 0
    assert MeasurementImport.objects.filter(pk=import_id).exists()


def test_a_second_confirmation_finds_the_import_gone(client, kpis, manager_a):
    client.force_login(manager_a)
    import_id, _ = upload_and_preview(
        client, "kpi,period,value\nsales.deals_closed,2024-01-01,3\n"
    )
    confirm(client, import_id)
    Measurement.objects.update(value=4)

    response = confirm(client, import_id)

    assert response.status_code == 302
    assert response["Location"] == CHANGELIST_URL
    assert messages_of(response)[-1].startswith("That import does not exist")
    assert stored() == [("sales.deals_closed", dt.date(2024, 1, 1), 4.0, "")]


def test_imports_expire_after_a_day(client, kpis, manager_a):
    client.force_login(manager_a)
    old_id = import_id_of(
        upload(client, "kpi,period,value\nsales.deals_closed,2024-01-01,3\n")
    )
    MeasurementImport.objects.filter(pk=old_id).update(
        created_at=timezone.now() - dt.timedelta(hours=24, seconds=1)
    )

    assert preview(client, old_id)["Location"] == CHANGELIST_URL
    assert confirm(client, old_id)["Location"] == CHANGELIST_URL
    assert Measurement.objects.count() == 0

    new_id = import_id_of(
        upload(client, "kpi,period,value\nsales.deals_closed,2024-02-01,3\n")
    )
    # The next upload deletes the expired one.
    assert list(MeasurementImport.objects.values_list("pk", flat=True)) == [new_id]


def test_confirm_checks_again_and_writes_nothing_if_a_row_became_invalid(
    client, kpis, silo_a, manager_a
):
    client.force_login(manager_a)
    import_id, response = upload_and_preview(
        client,
        "kpi,period,value\nsales.deals_closed,2024-01-01,3\nsales.deals_closed,2024-02-01,4\n",
    )
    assert response.context["preview"].can_import
    # Between the preview and the confirmation, the manager loses the silo.
    silo_a.managers.remove(manager_a)

    response = confirm(client, import_id)

    assert response.status_code == 200
    assert messages_of(response) == [
        "Nothing was imported: the file is no longer valid (the data or your "
        "permissions changed since the preview). See the problems below."
    ]
    not_yours = (
        "KPI 'sales.deals_closed' belongs to silo 'sales', which you do not manage; "
        "you may write only the KPIs of your own silos."
    )
    assert response.context["preview"].problems == [
        Problem(2, "kpi", not_yours),
        Problem(3, "kpi", not_yours),
    ]
    assert Measurement.objects.count() == 0
    assert MeasurementImport.objects.filter(pk=import_id).exists()


# --- Templates --------------------------------------------------------------------------


@pytest.fixture
def template_kpis(silo_a, silo_b):
    for slug, frequency in [
        ("deals_closed", "monthly"),
        ("calls", "weekly"),
        ("revenue", "quarterly"),
    ]:
        factories.KPIFactory(silo=silo_a, slug=slug, frequency=frequency)
    factories.KPIFactory(silo=silo_a, slug="retired", is_active=False)
    factories.KPIFactory(silo=silo_b, slug="csat")


def test_a_template_lists_the_silos_active_kpis_with_the_current_period(
    client, template_kpis, manager_a, monkeypatch
):
    # Thursday 15 May 2025: week of Monday 12 May, May, the second quarter.
    monkeypatch.setattr(imports.timezone, "localdate", lambda: dt.date(2025, 5, 15))
    client.force_login(manager_a)

    response = client.get(f"{IMPORT_URL}template/sales/")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="measurements-sales.csv"'
    )
    assert response.content.decode() == (
        "kpi,period,value,source\r\n"
        "sales.calls,2025-05-12,,\r\n"
        "sales.deals_closed,2025-05-01,,\r\n"
        "sales.revenue,2025-04-01,,\r\n"
    )


def test_templates_are_offered_for_the_users_silos_only(
    client, template_kpis, manager_a, cco
):
    client.force_login(manager_a)
    assert client.get(f"{IMPORT_URL}template/support/").status_code == 404
    assert client.get(f"{IMPORT_URL}template/nonexistent/").status_code == 404
    page = client.get(IMPORT_URL).content.decode()
    assert f'href="{IMPORT_URL}template/sales/"' in page
    assert "template/support/" not in page
    changelist = client.get(CHANGELIST_URL).content.decode()
    assert f'href="{IMPORT_URL}"' in changelist
    assert f'href="{IMPORT_URL}template/sales/"' in changelist

    client.force_login(cco)
    response = client.get(f"{IMPORT_URL}template/support/")
    assert response.content.decode().splitlines()[1].startswith("support.csat,")
    page = client.get(IMPORT_URL).content.decode()
    assert f'href="{IMPORT_URL}template/sales/"' in page
    assert f'href="{IMPORT_URL}template/support/"' in page
    assert (
        f'href="{IMPORT_URL}#templates"' in client.get(CHANGELIST_URL).content.decode()
    )


def test_a_filled_in_template_imports(client, template_kpis, manager_a, monkeypatch):
    monkeypatch.setattr(imports.timezone, "localdate", lambda: dt.date(2025, 5, 15))
    client.force_login(manager_a)
    template = client.get(f"{IMPORT_URL}template/sales/").content.decode()
    filled = template.replace(",,\r\n", ",5,sheet\r\n")

    import_id, response = upload_and_preview(client, filled)
    assert counts(response)["new"] == 3
    confirm(client, import_id)

    assert stored() == [
        ("sales.calls", dt.date(2025, 5, 12), 5.0, "sheet"),
        ("sales.deals_closed", dt.date(2025, 5, 1), 5.0, "sheet"),
        ("sales.revenue", dt.date(2025, 4, 1), 5.0, "sheet"),
    ]


# --- A large file -----------------------------------------------------------------------


def many_rows(kpi_keys, months, value_of=lambda kpi, month: month):
    """Rows for each KPI and each month from 1900-01, in a CSV file."""
    lines = ["kpi,period,value,source"]
    for kpi_index, key in enumerate(kpi_keys):
        for month in range(months):
            period = f"{1900 + month // 12}-{month % 12 + 1:02d}-01"
            lines.append(f"{key},{period},{value_of(kpi_index, month)},bulk")
    return "\n".join(lines) + "\n"


def test_a_20000_row_preview_is_bounded_and_its_counts_exact(client, silo_a, manager_a):
    kpis = [factories.KPIFactory(silo=silo_a, slug=f"k{n:02d}") for n in range(20)]
    # The first 5 KPIs have their 1,000 months stored: 2,000 equal to the file's rows,
    # 3,000 with another value.
    Measurement.objects.bulk_create(
        Measurement(
            kpi=kpi,
            period=dt.date(1900 + month // 12, month % 12 + 1, 1),
            value=month if kpi_index < 2 else -1,
            source="bulk",
        )
        for kpi_index, kpi in enumerate(kpis[:5])
        for month in range(1000)
    )
    client.force_login(manager_a)
    text = many_rows([kpi.key for kpi in kpis], 1000)
    import_id = import_id_of(upload(client, text))

    with CaptureQueriesContext(connection) as queries:
        response = preview(client, import_id)

    assert response.status_code == 200
    assert counts(response) == {
        "rows": 20_000,
        "new": 15_000,
        "changed": 3_000,
        "unchanged": 2_000,
        "problems": 0,
    }
    summary = response.context["preview"]
    assert len(summary.changes) == imports.PREVIEW_CHANGES == 100
    # Overwrites come first: the 100 listed are the first 100 of the 3,000 changed.
    assert summary.changes[0] == Change(
        2002, "sales.k02", dt.date(1900, 1, 1), 0.0, "bulk", -1.0, "bulk"
    )
    assert summary.changes[-1].line == 2101
    assert not any(change.is_new for change in summary.changes)
    page = response.content.decode()
    assert "and 17,900 more rows" in page
    assert page.count('data-label="Line"') == 100  # one per row shown
    assert len(response.content) < 200_000
    # 9 whatever the size: the session, the user, their permissions (2), the import,
    # the KPIs named, the user's roles and silos, the page's role check; then one per
    # 2,000 rows for the stored values.
    stored_value_queries = [
        q for q in queries.captured_queries if 'FROM "metrics_measurement"' in q["sql"]
    ]
    assert len(stored_value_queries) == 10
    assert len(queries.captured_queries) == 9 + 10


def test_a_20000_row_file_of_bad_rows_lists_200_problems(client, silo_a, manager_a):
    client.force_login(manager_a)
    unknown_keys = [f"sales.missing{n}" for n in range(20)]
    import_id = import_id_of(upload(client, many_rows(unknown_keys, 1000)))

    response = preview(client, import_id)

    summary = response.context["preview"]
    assert (summary.rows, summary.problem_count, summary.invalid_rows) == (
        20_000,
        20_000,
        20_000,
    )
    assert len(summary.problems) == imports.PREVIEW_ERRORS == 200
    assert summary.problems[0] == Problem(2, "kpi", "Unknown KPI 'sales.missing0'.")
    assert summary.problems[-1] == Problem(201, "kpi", "Unknown KPI 'sales.missing0'.")
    page = response.content.decode()
    assert "and 19,800 more problems" in page
    assert len(response.content) < 200_000


# --- Locks: none while previewing -----------------------------------------------------


def upsert_from_another_connection(user, rows, lock_timeout="1s"):
    """Run the bulk upsert in another thread (so on another database connection),
    giving up on a row lock after ``lock_timeout``; return what happened."""
    outcome = {}

    def run():
        started = time.monotonic()
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(f"SET LOCAL lock_timeout = '{lock_timeout}'")
                outcome["result"] = measurements_bulk_upsert(user=user, rows=rows)
        except OperationalError as exc:
            outcome["error"] = str(exc)
        finally:
            outcome["seconds"] = time.monotonic() - started
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    return outcome


OVERLAPPING_ROW = [{"kpi": "sales.deals_closed", "period": "2024-01-01", "value": 42}]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_bulk_upload_runs_at_once_during_and_after_a_preview(
    client, kpis, manager_a, monkeypatch
):
    factories.MeasurementFactory(kpi=kpis["deals"], period=dt.date(2024, 1, 1), value=5)
    client.force_login(manager_a)
    rows = "".join(
        f"sales.deals_closed,{year}-{month:02d}-01,{month}\n"
        for year in (2024, 2025)
        for month in range(1, 13)
    )
    import_id = import_id_of(upload(client, "kpi,period,value\n" + rows))
    during = {}
    read_stored_values = imports._stored_values

    def stored_values_then_upload_elsewhere(valid_rows):
        # The preview has read what it reads; another client now writes a row the
        # file also names, while this request is still running.
        found = read_stored_values(valid_rows)
        during.update(upsert_from_another_connection(manager_a, OVERLAPPING_ROW))
        return found

    monkeypatch.setattr(imports, "_stored_values", stored_values_then_upload_elsewhere)

    response = preview(client, import_id)

    assert response.status_code == 200
    assert during["result"] == BulkResult(created=0, updated=1)
    assert during["seconds"] < 1
    assert counts(response)["changed"] == 1  # it saw the stored 5, not the 42
    # The person now reads the preview: another client writes the same row again.
    after = upsert_from_another_connection(
        manager_a, [{**OVERLAPPING_ROW[0], "value": 43}]
    )
    assert after["result"] == BulkResult(created=0, updated=1)
    assert after["seconds"] < 1
    assert Measurement.objects.get(period=dt.date(2024, 1, 1)).value == 43
    # The confirmation then writes the file over it, as a person would expect.
    assert confirm(client, import_id).status_code == 302
    assert Measurement.objects.get(period=dt.date(2024, 1, 1)).value == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_django_import_exports_dry_run_held_the_row_lock(kpis, manager_a):
    """Why the preview was rewritten: django-import-export previews by saving every
    row in a transaction it rolls back, so a concurrent writer of the same (KPI,
    period) waits for the whole preview (here it gives up after 1 s)."""
    factories.MeasurementFactory(kpi=kpis["deals"], period=dt.date(2024, 1, 1), value=1)
    during = {}

    class DryRunResource(resources.ModelResource):
        kpi = fields.Field(
            attribute="kpi",
            column_name="kpi",
            widget=widgets.ForeignKeyWidget(KPI, field="key"),
        )

        class Meta:
            model = Measurement
            fields = ("kpi", "period", "value", "source")
            import_id_fields = ("kpi", "period")

        def after_save_instance(self, instance, row, **kwargs):
            during.update(upsert_from_another_connection(manager_a, OVERLAPPING_ROW))

    dataset = tablib.Dataset(
        ["sales.deals_closed", "2024-01-01", "9", ""],
        headers=["kpi", "period", "value", "source"],
    )

    result = DryRunResource().import_data(dataset, dry_run=True, use_transactions=True)

    assert not result.has_errors()
    assert "lock timeout" in during["error"]
    assert during["seconds"] >= 1
    assert Measurement.objects.get().value == 1  # the dry run rolled back


# --- Export -------------------------------------------------------------------------


def export(client):
    return client.post(
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


def test_export_is_scoped_to_the_managers_silos(client, kpis, manager_a):
    factories.MeasurementFactory(kpi=kpis["deals"], period=dt.date(2024, 1, 1), value=3)
    factories.MeasurementFactory(kpi=kpis["csat"], period=dt.date(2024, 1, 1), value=4)
    client.force_login(manager_a)

    response = export(client)

    assert response.status_code == 200
    assert response.content.decode().splitlines() == [
        "kpi,period,value,source",
        "sales.deals_closed,2024-01-01,3.0,",
    ]


def test_export_quotes_text_a_spreadsheet_would_run(client, kpis, manager_a):
    factories.MeasurementFactory(
        kpi=kpis["deals"], period=dt.date(2024, 1, 1), value=-3.5, source="=1+2"
    )
    client.force_login(manager_a)

    exported = export(client).content.decode()

    assert exported.splitlines() == [
        "kpi,period,value,source",
        "sales.deals_closed,2024-01-01,-3.5,'=1+2",
    ]
