"""Issue 13's conflict pages: the register (filters, tabs, CSV of the filtered view),
the heatmap by worst severity, the conflict page's chart and words, owner and due date
on acknowledging, and comments over the API; every page and action for every role.

The browser half is tests/test_browser_conflicts.py.
"""

import csv
import datetime as dt
import io
from urllib.parse import parse_qs

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from conflicts.api.serializers import REGISTER_COLUMNS
from conflicts.models import Conflict, ConflictComment, ConflictTransition
from tests import factories

pytestmark = pytest.mark.django_db

REGISTER = "/report/conflicts/register/"
DUE = "2099-12-31"


@pytest.fixture
def finance():
    return factories.SiloFactory(slug="finance", name="Finance", position=30)


@pytest.fixture
def manager_f(finance):
    """A manager of Finance only: "another silo" for Sales -> Support."""
    return factories.silo_manager(finance, username="manager_f")


@pytest.fixture
def nobody():
    """A signed-in account without any ducttape role."""
    return factories.UserFactory(username="nobody")


@pytest.fixture
def register(silo_a, silo_b, finance, cco):
    """Six conflicts of Sales (20), Finance (30) and Support (40), one of each kind of
    row the register shows (ids by letter):

    a  Sales deals closed -> Support ticket backlog   high    open
    b  Sales discount rate -> Support ticket backlog  low     acknowledged (cco, overdue)
    c  Sales discount rate -> Finance gross margin    medium  open, confirmed
    d  Finance gross margin -> Sales deals closed     low     dismissed, with its note
    e  Sales deals closed -> Finance gross margin     medium  accepted trade-off, note
    f  Support ticket backlog -> Finance gross margin low     open, declared, stale
    """
    deals = factories.KPIFactory(
        silo=silo_a, slug="deals_closed", name="Deals closed", unit="deals"
    )
    discount = factories.KPIFactory(
        silo=silo_a, slug="discount", name="Discount rate", unit="%"
    )
    backlog = factories.KPIFactory(
        silo=silo_b,
        slug="backlog",
        name="Ticket backlog",
        unit="tickets",
        direction="lower_is_better",
    )
    margin = factories.KPIFactory(
        silo=finance, slug="margin", name="Gross margin", unit="%"
    )
    return {
        "a": factories.ConflictFactory(
            leader_kpi=deals,
            affected_kpi=backlog,
            effect=2.5,
            effect_low=1.5,
            effect_high=3.5,
            effect_step=4.0,
            grid="monthly",
        ),
        "b": factories.ConflictFactory(
            leader_kpi=discount,
            affected_kpi=backlog,
            severity="low",
            status="acknowledged",
            owner=cco,
            due_date=dt.date(2020, 1, 31),
            note="Support plans two more agents.",
        ),
        "c": factories.ConflictFactory(
            leader_kpi=discount,
            affected_kpi=margin,
            kind="confirmed",
            is_declared=True,
            severity="medium",
            correlation=-0.42,
            lag=3,
            q_value=0.0123,
            periods=36,
            effect=-0.4,
            effect_low=-0.6,
            effect_high=-0.2,
            effect_step=1.0,
            grid="monthly",
        ),
        "d": factories.ConflictFactory(
            leader_kpi=margin,
            affected_kpi=deals,
            severity="low",
            status="dismissed",
            note="Not a real effect: both follow the season.",
        ),
        "e": factories.ConflictFactory(
            leader_kpi=deals,
            affected_kpi=margin,
            severity="medium",
            status="accepted_tradeoff",
            note="Growth first this year.",
        ),
        "f": factories.ConflictFactory(
            leader_kpi=backlog,
            affected_kpi=margin,
            kind="declared",
            is_declared=True,
            is_observed=False,
            correlation=None,
            severity="low",
            stale=True,
        ),
    }


def letters(register, conflicts):
    names = {conflict.pk: name for name, conflict in register.items()}
    return [names[conflict.pk] for conflict in conflicts]


# --- the register ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # Most severe first, then by silo pair in value-chain order, then by id.
        ("", ["a", "c", "e", "b", "d", "f"]),
        ("silo=finance", ["c", "e", "d", "f"]),
        ("leader_silo=sales", ["a", "c", "e", "b"]),
        ("affected_silo=support", ["a", "b"]),
        ("leader_silo=sales&affected_silo=finance", ["c", "e"]),
        ("severity=medium", ["c", "e"]),
        ("severity=high&severity=low", ["a", "b", "d", "f"]),
        ("status=open", ["a", "c", "f"]),
        ("status=acknowledged", ["b"]),
        ("status=accepted_tradeoff&status=resolved&status=dismissed", ["e", "d"]),
        ("kind=confirmed", ["c"]),
        ("kind=declared", ["f"]),
        ("kind=observed&kind=declared", ["a", "e", "b", "d", "f"]),
        # Text: a KPI's key or name, or the note, in any case.
        ("q=backlog", ["a", "b", "f"]),
        ("q=DISCOUNT+RATE", ["c", "b"]),
        ("q=finance.margin", ["c", "e", "d", "f"]),
        ("q=season", ["d"]),
        ("q=%20%20", ["a", "c", "e", "b", "d", "f"]),
        ("q=nothing+like+it", []),
        ("stale=true", ["f"]),
        ("stale=false", ["a", "c", "e", "b", "d"]),
        ("silo=sales&status=open&severity=high", ["a"]),
    ],
)
def test_each_filter_lists_exactly_its_conflicts(
    client, cco, register, query, expected
):
    client.force_login(cco)

    response = client.get(f"{REGISTER}?{query}")

    assert response.status_code == 200
    assert letters(register, response.context["conflicts"]) == expected
    assert response.context["page"].paginator.count == len(expected)
    # "Download CSV" carries the same filters.
    carried = response.context["query"]
    assert parse_qs(carried, keep_blank_values=True) == parse_qs(
        query, keep_blank_values=True
    )
    csv_link = "/report/conflicts.csv" + (f"?{carried}" if carried else "")
    assert f'href="{csv_link}"'.replace("&", "&amp;") in response.content.decode()


def test_the_closed_tab_lists_closed_conflicts_with_their_notes(client, cco, register):
    client.force_login(cco)
    review = client.get(REGISTER)
    [closed_tab] = [t for t in review.context["tabs"] if t["name"] == "closed"]
    assert closed_tab["query"] == (
        "status=accepted_tradeoff&status=resolved&status=dismissed"
    )

    response = client.get(f"{REGISTER}?{closed_tab['query']}")

    assert letters(register, response.context["conflicts"]) == ["e", "d"]
    assert [t["current"] for t in response.context["tabs"]] == [False, True, False]
    page = response.content.decode()
    assert "Growth first this year." in page
    assert "Not a real effect: both follow the season." in page


def test_the_register_shows_owner_due_date_and_overdue(client, cco, register):
    client.force_login(cco)

    response = client.get(f"{REGISTER}?status=acknowledged")

    [row] = response.context["conflicts"]
    assert (row.owner.username, row.due_date, row.overdue) == (
        "cco",
        dt.date(2020, 1, 31),
        True,
    )
    assert 'cco, 2020-01-31 <span class="badge flag">overdue</span>' in (
        response.content.decode()
    )


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        (
            "severity=urgent",
            "severity",
            "Select a valid choice. urgent is not one of the available choices.",
        ),
        (
            "status=closed",
            "status",
            "Select a valid choice. closed is not one of the available choices.",
        ),
        (
            "kind=suspected",
            "kind",
            "Select a valid choice. suspected is not one of the available choices.",
        ),
        (
            "silo=nowhere",
            "silo",
            "Select a valid choice. That choice is not one of the available choices.",
        ),
        (
            "leader_silo=a%00b",
            "leader_silo",
            "Select a valid choice. That choice is not one of the available choices.",
        ),
        (
            "stale=maybe",
            "stale",
            "Use true or false (also accepted: 1/0, yes/no, on/off); got 'maybe'.",
        ),
        (
            "q=" + "x" * 201,
            "q",
            "Ensure this value has at most 200 characters (it has 201).",
        ),
        ("q=a%00b", "q", "Null characters are not allowed."),
    ],
)
def test_a_bad_filter_value_is_a_400_that_says_which(
    client, cco, register, query, field, message
):
    client.force_login(cco)

    page = client.get(f"{REGISTER}?{query}")
    download = client.get(f"/report/conflicts.csv?{query}")

    assert page.status_code == 400
    assert page.context["errors"] == {field: [message]}
    assert page.context["conflicts"] == []
    text = page.content.decode()
    assert "The register cannot be filtered so:" in text
    assert download.status_code == 400
    assert download["Content-Type"] == "text/plain; charset=utf-8"
    assert download.content.decode() == (
        f"The register cannot be filtered so: {field}: {message}"
    )


def csv_rows(response):
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    text = b"".join(response.streaming_content).decode()
    reader = csv.reader(io.StringIO(text))
    return next(reader), list(reader)


def test_the_csv_holds_exactly_the_filtered_view_in_its_order(client, cco, register):
    client.force_login(cco)
    register["d"].note = "=HYPERLINK(evil) season"
    register["d"].save()

    header, rows = csv_rows(client.get("/report/conflicts.csv?silo=finance"))

    assert header == REGISTER_COLUMNS
    assert header[-3:] == ["owner", "due_date", "overdue"]
    picked = [
        {
            name: row[header.index(name)]
            for name in (
                "id",
                "leader_kpi",
                "affected_kpi",
                "severity",
                "status",
                "note",
                "stale",
                "owner",
                "due_date",
                "overdue",
            )
        }
        for row in rows
    ]
    assert picked == [
        {
            "id": str(register["c"].pk),
            "leader_kpi": "sales.discount",
            "affected_kpi": "finance.margin",
            "severity": "medium",
            "status": "open",
            "note": "",
            "stale": "false",
            "owner": "",
            "due_date": "",
            "overdue": "false",
        },
        {
            "id": str(register["e"].pk),
            "leader_kpi": "sales.deals_closed",
            "affected_kpi": "finance.margin",
            "severity": "medium",
            "status": "accepted_tradeoff",
            "note": "Growth first this year.",
            "stale": "false",
            "owner": "",
            "due_date": "",
            "overdue": "false",
        },
        {
            "id": str(register["d"].pk),
            "leader_kpi": "finance.margin",
            "affected_kpi": "sales.deals_closed",
            "severity": "low",
            "status": "dismissed",
            # A note a spreadsheet would run as a formula is quoted (core.csv).
            "note": "'=HYPERLINK(evil) season",
            "stale": "false",
            "owner": "",
            "due_date": "",
            "overdue": "false",
        },
        {
            "id": str(register["f"].pk),
            "leader_kpi": "support.backlog",
            "affected_kpi": "finance.margin",
            "severity": "low",
            "status": "open",
            "note": "",
            "stale": "true",
            "owner": "",
            "due_date": "",
            "overdue": "false",
        },
    ]


def test_the_csv_of_the_acknowledged_says_owner_due_date_and_overdue(
    client, cco, register
):
    client.force_login(cco)

    header, rows = csv_rows(client.get("/report/conflicts.csv?status=acknowledged"))

    assert [(row[0], row[header.index("owner")], row[-2], row[-1]) for row in rows] == [
        (str(register["b"].pk), "cco", "2020-01-31", "true")
    ]


def add_conflicts(count, silo_a, silo_b, owner):
    for number in range(count):
        factories.ConflictFactory(
            leader_kpi=factories.KPIFactory(silo=silo_a),
            affected_kpi=factories.KPIFactory(silo=silo_b),
            status="acknowledged",
            owner=owner,
            due_date=dt.date(2099, 1, 1),
            status_changed_by=factories.UserFactory(),
            note=f"note {number}",
        )


#: The session and its user, the user's groups, the register's count and its page
#: (owners and both KPIs and silos joined), the three silo filters' choices.
REGISTER_QUERIES = 8


@pytest.mark.parametrize(
    "url", [REGISTER, f"{REGISTER}?status=acknowledged&q=kpi&severity=high"]
)
def test_the_register_makes_the_same_queries_for_1_and_5_conflicts(
    client, cco, silo_a, silo_b, django_assert_num_queries, url
):
    client.force_login(cco)
    add_conflicts(1, silo_a, silo_b, factories.cco_member())
    client.get(url)

    with django_assert_num_queries(REGISTER_QUERIES):
        few = client.get(url)
    add_conflicts(4, silo_a, silo_b, factories.cco_member())
    with django_assert_num_queries(REGISTER_QUERIES):
        many = client.get(url)

    assert (few.status_code, len(few.context["conflicts"])) == (200, 1)
    assert (many.status_code, len(many.context["conflicts"])) == (200, 5)


#: The session, its user, the user's groups, the rows (one query, streamed).
CSV_QUERIES = 4


def test_the_csv_makes_the_same_queries_for_1_and_5_conflicts(
    client, cco, silo_a, silo_b, django_assert_num_queries
):
    client.force_login(cco)
    add_conflicts(1, silo_a, silo_b, factories.cco_member())

    with django_assert_num_queries(CSV_QUERIES):
        _, few = csv_rows(client.get("/report/conflicts.csv?status=acknowledged"))
    add_conflicts(4, silo_a, silo_b, factories.cco_member())
    with django_assert_num_queries(CSV_QUERIES):
        _, many = csv_rows(client.get("/report/conflicts.csv?status=acknowledged"))

    assert (len(few), len(many)) == (1, 5)


# --- the heatmap -----------------------------------------------------------------


def test_the_heatmap_is_coloured_by_worst_severity_and_links_to_the_register(
    client, cco, register
):
    client.force_login(cco)

    response = client.get("/report/conflicts/")

    silos = response.context["silos"]
    cells = {
        (leader.slug, silo.slug): (cell.count, cell.worst, cell.words, cell.style)
        for leader, row in response.context["heatmap"]
        for silo, cell in zip(silos, row, strict=True)
        if cell is not None and cell.count
    }
    # The closed (d, e) and the stale (f) are not counted.
    assert cells == {
        ("sales", "support"): (
            2,
            "high",
            "worst high",
            "background: #b03a2e; color: #ffffff",
        ),
        ("sales", "finance"): (
            1,
            "medium",
            "worst medium",
            "background: #f5c26b; color: #1d2430",
        ),
    }
    url = (
        "/report/conflicts/register/?leader_silo=sales&affected_silo=support"
        "&status=open&status=acknowledged&stale=false"
    )
    [cell] = [
        cell
        for leader, row in response.context["heatmap"]
        for silo, cell in zip(silos, row, strict=True)
        if (leader.slug, silo.slug) == ("sales", "support")
    ]
    assert cell.url == url
    assert f'<a href="{url.replace("&", "&amp;")}"' in response.content.decode()
    # Empty cells link nowhere.
    empty = [
        cell
        for _, row in response.context["heatmap"]
        for cell in row
        if cell is not None and not cell.count
    ]
    assert {(cell.url, cell.style) for cell in empty} == {
        ("", "background: #ffffff; color: #5c6773")
    }

    opened = client.get(url)

    assert letters(register, opened.context["conflicts"]) == ["a", "b"]


def test_a_cell_of_low_conflicts_only_says_worst_low(client, cco, register):
    client.force_login(cco)
    Conflict.objects.filter(pk=register["a"].pk).update(severity="low")

    response = client.get("/report/conflicts/")

    [row] = [
        row for leader, row in response.context["heatmap"] if leader.slug == "sales"
    ]
    support = [s.slug for s in response.context["silos"]].index("support")
    assert (row[support].count, row[support].words, row[support].style) == (
        2,
        "worst low",
        "background: #dfe8f3; color: #1d2430",
    )


# --- the conflict page -------------------------------------------------------------


def test_the_conflict_page_says_the_effect_in_words_and_charts_both_kpis(
    client, manager_b, register
):
    conflict = register["a"]
    for month, value in enumerate([10, 12, 15], start=1):
        factories.MeasurementFactory(
            kpi=conflict.leader_kpi, period=dt.date(2024, month, 1), value=value
        )
    for month, value in enumerate([100, 104, 111, 120], start=1):
        factories.MeasurementFactory(
            kpi=conflict.affected_kpi, period=dt.date(2024, month, 1), value=value
        )
    client.force_login(manager_b)

    response = client.get(f"/report/conflicts/{conflict.pk}/")

    assert response.status_code == 200
    assert response.context["headline"] == (
        "When Sales' deals closed rises by 4 deals, Support's ticket backlog rises "
        "by 10 tickets one month later (95% interval 6 to 14)."
    )
    assert response.context["verdict"] == (
        "That is bad for Support: a lower ticket backlog is better."
    )
    chart = response.context["values_chart"]
    assert chart.spec() == {
        "labels": ["Jan 2024", "Feb 2024", "Mar 2024", "Apr 2024"],
        "sparkline": False,
        "axes": [
            {"id": "y", "title": "Deals closed (deals)", "percent": False},
            {"id": "y2", "title": "Ticket backlog (tickets)", "percent": False},
        ],
        "series": [
            {
                "name": "Sales: Deals closed",
                "values": [10.0, 12.0, 15.0, None],
                "color": "#1f5fa8",
                "dashed": False,
                "axis": "y",
                "unit": "deals",
            },
            {
                "name": "Support: Ticket backlog",
                "values": [100.0, 104.0, 111.0, 120.0],
                "color": "#b03a2e",
                "dashed": True,
                "axis": "y2",
                "unit": "tickets",
            },
        ],
    }
    page = response.content.decode()
    assert '<canvas data-chart="values-chart-data"' in page
    assert "<summary>Values as a table</summary>" in page
    assert "chart.umd.min.js" in page
    assert "<svg" not in page
    # The statistics are explained aside, not in the headline.
    assert "<summary>What the numbers mean</summary>" in page
    assert "Correlation r = -0.71" in page
    assert "q = 0.001" in page
    assert (
        '<p id="lag"><strong>Lag:</strong> 1 month: Ticket backlog responds one '
        "month later.</p>"
    ) in page


def test_the_effect_of_a_percentage_reads_in_percentage_points(client, cco, register):
    client.force_login(cco)

    response = client.get(f"/report/conflicts/{register['c'].pk}/")

    assert response.context["headline"] == (
        "When Sales' discount rate rises by 1 percentage point, Finance's gross "
        "margin falls by 0.4 percentage points 3 months later (95% interval 0.2 to "
        "0.6)."
    )
    assert response.context["verdict"] == (
        "That is bad for Finance: a higher gross margin is better."
    )


def test_the_conflict_page_shows_owner_due_date_and_overdue(client, cco, register):
    client.force_login(cco)

    page = client.get(f"/report/conflicts/{register['b'].pk}/").content.decode()

    assert (
        '<p id="owner-due">Owner: <strong>cco</strong>, due 2020-01-31 '
        '<span class="badge flag">Overdue</span></p>'
    ) in page


#: The session, its user, the groups, the conflict, the goals with actuals, the
#: measurements, the owner candidates, the comments and the transitions.
DETAIL_QUERIES = 9


def test_the_conflict_page_makes_the_same_queries_for_few_and_many_rows(
    client, cco, register, django_assert_num_queries
):
    conflict = register["a"]
    client.force_login(cco)
    url = f"/report/conflicts/{conflict.pk}/"

    def grow(number):
        author = factories.silo_manager(conflict.leader_silo)
        ConflictComment.objects.create(conflict=conflict, author=author, body="x")
        factories.MeasurementFactory(
            kpi=conflict.leader_kpi, period=dt.date(2024, number, 1), value=number
        )
        factories.MeasurementFactory(
            kpi=conflict.affected_kpi, period=dt.date(2024, number, 1), value=number
        )

    grow(1)
    grow(2)
    client.get(url)
    with django_assert_num_queries(DETAIL_QUERIES):
        few = client.get(url)
    for number in range(3, 8):
        grow(number)
    with django_assert_num_queries(DETAIL_QUERIES):
        many = client.get(url)

    assert (len(few.context["comments"]), len(many.context["comments"])) == (2, 7)


# --- owner and due date --------------------------------------------------------------


def acknowledge(client, conflict, **fields):
    return client.post(
        f"/report/conflicts/{conflict.pk}/",
        {"status": "acknowledged", "note": "On the agenda.", **fields},
    )


@pytest.mark.parametrize(
    ("owner", "due_date"),
    [("cco", DUE), ("manager_a", DUE), ("manager_b", DUE), ("root", "2099-01-01")],
)
def test_the_cco_team_acknowledges_with_an_owner_and_a_due_date(
    client, cco, manager_a, manager_b, superuser, register, owner, due_date
):
    client.force_login(cco)
    conflict = register["a"]

    response = acknowledge(client, conflict, owner=owner, due_date=due_date)

    assert response.status_code == 302
    conflict.refresh_from_db()
    assert (conflict.status, conflict.owner.username, conflict.due_date) == (
        "acknowledged",
        owner,
        dt.date.fromisoformat(due_date),
    )
    page = client.get(f"/report/conflicts/{conflict.pk}/").content.decode()
    assert (
        f'<p id="owner-due">Owner: <strong>{owner}</strong>, due {due_date}</p>' in page
    )


def test_the_form_offers_the_cco_team_and_the_two_silos_managers(
    client, cco, manager_a, manager_b, manager_f, reader, superuser, register
):
    client.force_login(cco)

    response = client.get(f"/report/conflicts/{register['a'].pk}/")

    assert [u.username for u in response.context["owner_choices"]] == [
        "cco",
        "manager_a",
        "manager_b",
        "root",
    ]
    assert '<label for="owner">Owner: who follows it up</label>' in (
        response.content.decode()
    )


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        (
            {},
            {
                "owner": [
                    "Name an owner: who follows the conflict up (the CCO team or a "
                    "manager of one of its two silos)."
                ],
                "due_date": ["Set a due date: when the owner reports back."],
            },
        ),
        (
            {"owner": "manager_f", "due_date": DUE},
            {
                "owner": [
                    "manager_f cannot own this conflict: choose a member of the CCO "
                    "team or a manager of Sales or Support."
                ]
            },
        ),
        (
            {"owner": "reader", "due_date": DUE},
            {
                "owner": [
                    "reader cannot own this conflict: choose a member of the CCO "
                    "team or a manager of Sales or Support."
                ]
            },
        ),
        (
            {"owner": "ghost", "due_date": DUE},
            {"owner": ["Choose the owner from the list."]},
        ),
        (
            {"owner": "cco", "due_date": "2020-01-01"},
            {
                "due_date": [
                    "The due date 2020-01-01 has passed: choose today or later."
                ]
            },
        ),
        (
            {"owner": "cco", "due_date": "31/12/2099"},
            {"due_date": ["Enter the due date as YYYY-MM-DD."]},
        ),
        (
            {"owner": "cc\x00o", "due_date": DUE},
            {"owner": ["Choose the owner from the list."]},
        ),
    ],
)
def test_acknowledging_without_a_proper_owner_or_due_date_is_a_400_naming_it(
    client, cco, manager_f, reader, register, fields, errors
):
    client.force_login(cco)
    conflict = register["a"]

    response = acknowledge(client, conflict, **fields)

    assert response.status_code == 400
    assert response.context["errors"] == errors
    text = response.content.decode()
    for messages in errors.values():
        for message in messages:
            assert message.replace("'", "&#x27;") in text
    conflict.refresh_from_db()
    assert (conflict.status, conflict.owner, conflict.due_date) == ("open", None, None)
    assert ConflictTransition.objects.count() == 0


def test_an_owner_is_set_only_when_acknowledging(client, cco, register):
    client.force_login(cco)
    conflict = register["b"]

    response = client.post(
        f"/report/conflicts/{conflict.pk}/",
        {"status": "resolved", "note": "Fixed.", "owner": "cco", "due_date": DUE},
    )

    assert response.status_code == 400
    assert response.context["errors"] == {
        "owner": [
            "An owner and a due date are set when acknowledging, not on this step."
        ]
    }
    conflict.refresh_from_db()
    assert conflict.status == "acknowledged"


def test_the_api_refuses_an_acknowledgement_without_owner_and_due_date(
    api, cco, register
):
    api.force_authenticate(cco)
    conflict = register["a"]

    response = api.post(
        f"/api/v1/conflicts/{conflict.pk}/transition/",
        {"status": "acknowledged", "note": "Seen."},
        format="json",
    )
    unknown = api.post(
        f"/api/v1/conflicts/{conflict.pk}/transition/",
        {"status": "acknowledged", "note": "Seen.", "owner": "ghost", "due_date": DUE},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {
        "owner": [
            "Name an owner: who follows the conflict up (the CCO team or a manager "
            "of one of its two silos)."
        ],
        "due_date": ["Set a due date: when the owner reports back."],
    }
    assert unknown.status_code == 400
    assert unknown.json() == {"owner": ["Object with username=ghost does not exist."]}
    conflict.refresh_from_db()
    assert (conflict.status, conflict.owner) == ("open", None)


def test_the_api_reads_owner_due_date_and_overdue(api, reader, register):
    api.force_authenticate(reader)

    row = api.get(f"/api/v1/conflicts/{register['b'].pk}/").json()
    listed = api.get("/api/v1/conflicts/?status=acknowledged").json()["results"]

    assert (row["owner"], row["due_date"], row["overdue"]) == (
        "cco",
        "2020-01-31",
        True,
    )
    assert [(c["owner"], c["due_date"], c["overdue"]) for c in listed] == [
        ("cco", "2020-01-31", True)
    ]


# --- comments over the API --------------------------------------------------------


def test_the_thread_over_the_api_lists_comments_oldest_first(
    api, reader, manager_a, cco, register
):
    conflict = register["a"]
    first = ConflictComment.objects.create(
        conflict=conflict, author=manager_a, body="Sales sees it."
    )
    second = ConflictComment.objects.create(
        conflict=conflict, author=cco, body="On the agenda."
    )
    api.force_authenticate(reader)

    body = api.get(f"/api/v1/conflicts/{conflict.pk}/comments/").json()

    assert body["count"] == 2
    assert [(c["id"], c["author"], c["body"]) for c in body["results"]] == [
        (first.pk, "manager_a", "Sales sees it."),
        (second.pk, "cco", "On the agenda."),
    ]
    assert body["results"][0]["created_at"] == (
        first.created_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    )


@pytest.mark.parametrize("role", ["manager_a", "manager_b", "cco", "superuser"])
def test_the_cco_team_and_both_silos_managers_comment_over_the_api(
    api, register, role, request
):
    user = request.getfixturevalue(role)
    conflict = register["a"]
    api.force_authenticate(user)
    before = timezone.now()

    response = api.post(
        f"/api/v1/conflicts/{conflict.pk}/comments/",
        {"body": "  We see the backlog rise too.  "},
        format="json",
    )

    assert response.status_code == 201
    comment = ConflictComment.objects.get()
    assert response.json() == {
        "id": comment.pk,
        "author": user.username,
        "body": "We see the backlog rise too.",
        "created_at": comment.created_at.astimezone(dt.UTC)
        .isoformat()
        .replace("+00:00", "Z"),
    }
    assert (comment.conflict, comment.author, comment.created_at >= before) == (
        conflict,
        user,
        True,
    )


@pytest.mark.parametrize(
    ("role", "status", "body"),
    [
        ("reader", 403, {"detail": "Your role may read here but not write."}),
        ("manager_f", 404, {"detail": "No Conflict matches the given query."}),
        (
            "nobody",
            403,
            {
                "detail": "Your account has no ducttape role (BI readers, Silo "
                "managers, CCO team)."
            },
        ),
        ("anonymous", 401, {"detail": "Authentication credentials were not provided."}),
    ],
)
def test_others_cannot_comment_over_the_api(
    api, register, manager_f, nobody, reader, role, status, body
):
    if role != "anonymous":
        api.force_authenticate(
            {"reader": reader, "manager_f": manager_f}.get(role, nobody)
        )
    conflict = register["a"]

    response = api.post(
        f"/api/v1/conflicts/{conflict.pk}/comments/", {"body": "Mine."}, format="json"
    )

    assert response.status_code == status
    assert response.json() == body
    assert not ConflictComment.objects.exists()


@pytest.mark.parametrize(
    ("payload", "errors"),
    [
        ({"body": "   "}, {"body": ["Write the comment first."]}),
        ({"body": ""}, {"body": ["Write the comment first."]}),
        ({"body": "a\x00b"}, {"body": ["Null characters are not allowed."]}),
        (
            {"body": "x" * 4001},
            {"body": ["Keep the comment to 4000 characters (it has 4001)."]},
        ),
        ({}, {"body": ["This field is required."]}),
        ({"body": ["a list"]}, {"body": ["Not a valid string."]}),
    ],
)
def test_a_bad_comment_over_the_api_is_a_400_naming_the_field(
    api, manager_a, register, payload, errors
):
    api.force_authenticate(manager_a)

    response = api.post(
        f"/api/v1/conflicts/{register['a'].pk}/comments/", payload, format="json"
    )

    assert response.status_code == 400
    assert response.json() == errors
    assert not ConflictComment.objects.exists()


# --- every page and action, every role --------------------------------------------

LOGIN = "login"
PAGE_ROLES = ["anonymous", "nobody", "manager_a", "manager_f", "cco", "reader", "root"]
CCO_PAGE = (LOGIN, 403, 403, 403, 200, 403, 200)

#: (method, path, body, outcome per role in PAGE_ROLES order). manager_a manages
#: Sales, which leads conflict a (Sales -> Support); manager_f manages Finance only.
PAGE_MATRIX = [
    ("GET", "/report/conflicts/", None, CCO_PAGE),
    ("GET", REGISTER, None, CCO_PAGE),
    ("GET", f"{REGISTER}?status=open&silo=sales", None, CCO_PAGE),
    ("GET", "/report/conflicts.csv", None, CCO_PAGE),
    ("GET", "/report/conflicts.csv?severity=high", None, CCO_PAGE),
    ("GET", "/report/conflicts/{a}/", None, (LOGIN, 403, 200, 404, 200, 200, 200)),
    (
        "POST",
        "/report/conflicts/{a}/",
        {"status": "acknowledged", "note": "Seen.", "owner": "cco", "due_date": DUE},
        (LOGIN, 403, 403, 403, 302, 403, 302),
    ),
    (
        "POST",
        "/report/conflicts/{a}/",
        {"comment": "Seen from here."},
        (LOGIN, 403, 302, 404, 302, 403, 302),
    ),
]


@pytest.mark.parametrize("role", PAGE_ROLES)
@pytest.mark.parametrize(
    ("method", "path", "body", "outcomes"),
    PAGE_MATRIX,
    ids=[
        f"{m} {p} {'comment' if b and 'comment' in b else ''}"
        for m, p, b, _ in PAGE_MATRIX
    ],
)
def test_every_conflict_page_answers_each_role_as_the_matrix_says(
    client,
    register,
    cco,
    reader,
    manager_a,
    manager_f,
    nobody,
    superuser,
    role,
    method,
    path,
    body,
    outcomes,
):
    users = {
        "anonymous": AnonymousUser(),
        "nobody": nobody,
        "manager_a": manager_a,
        "manager_f": manager_f,
        "cco": cco,
        "reader": reader,
        "root": superuser,
    }
    if role != "anonymous":
        client.force_login(users[role])
    url = path.replace("{a}", str(register["a"].pk))
    expected = outcomes[PAGE_ROLES.index(role)]
    before = (
        ConflictTransition.objects.count(),
        ConflictComment.objects.count(),
        list(Conflict.objects.order_by("pk").values_list("status", "owner")),
    )

    response = client.get(url) if method == "GET" else client.post(url, body)

    if expected == LOGIN:
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/?next=")
    else:
        assert response.status_code == expected
    after = (
        ConflictTransition.objects.count(),
        ConflictComment.objects.count(),
        list(Conflict.objects.order_by("pk").values_list("status", "owner")),
    )
    assert (after != before) == (method == "POST" and expected == 302)
