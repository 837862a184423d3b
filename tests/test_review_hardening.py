"""Issue 10, points 10, 11 and 12, replayed as the outside review made them.

10. ``?is_active=0`` was silently ignored (every KPI listed); every boolean filter now
    reads the usual spellings and refuses the rest with a 400, as do choice filters.
11. Four simultaneous sign-offs for one silo gave three 201s; exactly one may succeed.
12. Names with CR/LF and HTML broke alert mails into lines; a name stays on one line.
"""

import threading

import pytest
from django.core import mail
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from conflicts.services.events import run_events_dispatch
from planning.models import SignOff
from tests import factories

# --- point 10: booleans and choices in filters ------------------------------------------


@pytest.fixture
def kpis(silo_a):
    return {
        "active": factories.KPIFactory(silo=silo_a, slug="active"),
        "retired": factories.KPIFactory(silo=silo_a, slug="retired", is_active=False),
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("value", "keys"),
    [
        ("true", ["sales.active"]),
        ("True", ["sales.active"]),
        ("1", ["sales.active"]),
        ("yes", ["sales.active"]),
        ("on", ["sales.active"]),
        ("false", ["sales.retired"]),
        ("0", ["sales.retired"]),
        ("no", ["sales.retired"]),
        ("OFF", ["sales.retired"]),
        ("", ["sales.active", "sales.retired"]),
    ],
)
def test_boolean_filters_read_the_usual_spellings(api, kpis, reader, value, keys):
    api.force_authenticate(reader)

    response = api.get("/api/v1/kpis/", {"is_active": value})

    assert response.status_code == 200
    assert [row["key"] for row in response.json()["results"]] == keys


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "name"),
    [("/api/v1/kpis/", "is_active"), ("/api/v1/conflicts/", "stale")],
)
@pytest.mark.parametrize("value", ["maybe", "2", "nope", "t"])
def test_boolean_filters_refuse_anything_else(api, kpis, reader, path, name, value):
    api.force_authenticate(reader)

    response = api.get(path, {name: value})

    assert response.status_code == 400
    assert response.json() == {
        name: [
            f"Use true or false (also accepted: 1/0, yes/no, on/off); got '{value}'."
        ]
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/v1/kpis/", "direction"),
        ("/api/v1/kpis/", "frequency"),
        ("/api/v1/conflicts/", "severity"),
        ("/api/v1/conflicts/", "status"),
        ("/api/v1/cycles/", "phase"),
        ("/api/v1/rollup-runs/", "status"),
    ],
)
def test_choice_filters_refuse_unknown_choices(api, reader, path, name):
    api.force_authenticate(reader)

    response = api.get(path, {name: "sideways"})

    assert response.status_code == 400
    assert list(response.json()) == [name]
    assert "sideways is not one of the available choices" in response.json()[name][0]


# --- point 11: simultaneous sign-offs ---------------------------------------------------


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_four_simultaneous_sign_offs_for_one_silo_record_exactly_one(silo_a, manager_a):
    cycle = factories.CycleFactory(name="FY2027", phase="aligning")
    cycle.silos.set([silo_a])
    token = Token.objects.create(user=manager_a).key
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def sign() -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        try:
            barrier.wait(timeout=10)
            response = client.post(
                f"/api/v1/cycles/{cycle.pk}/sign-offs/",
                {"silo": "sales"},
                format="json",
            )
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=sign) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [201, 400, 400, 400]
    assert SignOff.objects.count() == 1
    # One sign-off was ever recorded: none was made and then replaced by another.
    assert SignOff.history.filter(history_type="+").count() == 1
    assert SignOff.history.filter(history_type="-").count() == 0


# --- point 12: names in alert mails -----------------------------------------------------


@pytest.mark.django_db
def test_a_name_with_line_breaks_and_html_stays_on_one_line_in_the_alert_mail(
    cco, django_capture_on_commit_callbacks
):
    cco.email = "cco@example.com"
    cco.save()
    leader = factories.KPIFactory(
        silo=factories.SiloFactory(slug="sales", name="Sales\r\nBcc: evil@example.com"),
        name="<b>Deals</b>\nclosed\x1b[31m",
    )
    affected = factories.KPIFactory(
        silo=factories.SiloFactory(slug="support", name="Sup\u202eport"),
        name="Ticket\tbacklog\u2028now",
    )
    conflict = factories.ConflictFactory(
        leader_kpi=leader, affected_kpi=affected, correlation=-0.71, q_value=0.001
    )

    with django_capture_on_commit_callbacks(execute=True):
        run_events_dispatch(
            run_id=1, new_ids=[], reopened_ids=[], high_ids=[conflict.pk]
        )

    (message,) = mail.outbox
    assert message.subject == (
        f"ducttape: High-severity conflict to review: {leader.key} → {affected.key}"
    )
    assert message.body.splitlines() == [
        "When Sales Bcc: evil@example.com's <b>Deals</b> closed[31m improves, "
        "Support's ticket backlog now worsens one month later: r = -0.71, "
        "q = 0.001, over 40 months.",
        "",
        f"Open in ducttape: http://127.0.0.1:8000/report/conflicts/{conflict.pk}/",
    ]
