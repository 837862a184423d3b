"""A silo manager works only on their own silos in the admin; the CCO team sees all."""

import datetime as dt

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from goals.models import Goal
from metrics.admin_mixins import human_number
from metrics.models import KPI, Measurement
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def data(silo_a, silo_b, manager_a, manager_b):
    """Two silos with a KPI, a measurement and a goal each."""
    cycle = factories.CycleFactory(name="FY2027")
    kpi_a = factories.KPIFactory(silo=silo_a, slug="deals_closed")
    kpi_b = factories.KPIFactory(silo=silo_b, slug="csat", aggregation="mean")
    return {
        "cycle": cycle,
        "kpi_a": kpi_a,
        "kpi_b": kpi_b,
        "measurement_a": factories.MeasurementFactory(kpi=kpi_a, value=12),
        "measurement_b": factories.MeasurementFactory(kpi=kpi_b, value=4.2),
        "goal_a": factories.GoalFactory(cycle=cycle, kpi=kpi_a),
        "goal_b": factories.GoalFactory(cycle=cycle, kpi=kpi_b),
    }


def changelist_objects(client, model_path):
    response = client.get(f"/admin/{model_path}/")
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


@pytest.mark.parametrize(
    ("model_path", "a_key", "b_key"),
    [
        ("metrics/kpi", "kpi_a", "kpi_b"),
        ("metrics/measurement", "measurement_a", "measurement_b"),
        ("goals/goal", "goal_a", "goal_b"),
    ],
)
def test_change_lists_show_each_manager_only_their_silo(
    client, data, manager_a, manager_b, cco, model_path, a_key, b_key
):
    client.force_login(manager_a)
    assert changelist_objects(client, model_path) == [data[a_key]]
    client.force_login(manager_b)
    assert changelist_objects(client, model_path) == [data[b_key]]
    client.force_login(cco)
    assert set(changelist_objects(client, model_path)) == {data[a_key], data[b_key]}


@pytest.mark.parametrize(
    ("model_path", "b_key", "history_status"),
    [
        # simple-history's view could show a deleted object's last copy: it refuses.
        ("metrics/kpi", "kpi_b", 403),
        # Django's own history view treats an unknown object like the change view.
        ("metrics/measurement", "measurement_b", 302),
        ("goals/goal", "goal_b", 403),
    ],
)
def test_another_silos_object_is_not_found(
    client, data, manager_a, model_path, b_key, history_status
):
    client.force_login(manager_a)
    url = f"/admin/{model_path}/{data[b_key].pk}/change/"

    response = client.get(url)

    assert response.status_code == 302
    assert response.url == reverse("admin:index")
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert len(messages) == 1
    assert "doesn\u2019t exist" in messages[0]  # Django uses a typographic apostrophe
    history = client.get(f"/admin/{model_path}/{data[b_key].pk}/history/")
    assert history.status_code == history_status
    delete = client.post(
        f"/admin/{model_path}/{data[b_key].pk}/delete/", {"post": "yes"}
    )
    assert delete.status_code == 302
    assert type(data[b_key]).objects.filter(pk=data[b_key].pk).exists()


def test_posting_a_change_to_another_silos_kpi_changes_nothing(client, data, manager_a):
    client.force_login(manager_a)
    kpi_b = data["kpi_b"]

    response = client.post(
        f"/admin/metrics/kpi/{kpi_b.pk}/change/",
        {
            "name": "Hijacked",
            "unit": "x",
            "direction": "higher_is_better",
            "frequency": "monthly",
            "aggregation": "sum",
            "is_active": "on",
        },
    )

    assert response.status_code == 302
    kpi_b.refresh_from_db()
    assert kpi_b.name != "Hijacked"
    assert kpi_b.history.count() == 1


def test_goal_form_offers_only_own_kpis(client, data, manager_a):
    client.force_login(manager_a)

    response = client.get("/admin/goals/goal/add/")

    kpi_field = response.context["adminform"].form.fields["kpi"]
    assert list(kpi_field.queryset) == [data["kpi_a"]]


def goal_post_data(cycle, kpi, **overrides):
    data = {
        "cycle": cycle.pk,
        "kpi": kpi.pk,
        "name": "Close more deals",
        "baseline": "100",
        "target": "150",
        "period_start": "2027-01-01",
        "period_end": "2027-12-01",
    }
    data.update(overrides)
    return data


def test_goal_cannot_be_put_on_another_silos_kpi(client, data, manager_a):
    client.force_login(manager_a)
    goal_a = data["goal_a"]

    created = client.post(
        "/admin/goals/goal/add/", goal_post_data(data["cycle"], data["kpi_b"], name="x")
    )
    moved = client.post(
        f"/admin/goals/goal/{goal_a.pk}/change/",
        goal_post_data(data["cycle"], data["kpi_b"]),
    )

    for response in (created, moved):
        assert response.status_code == 200
        assert response.context["adminform"].form.errors["kpi"] == [
            "Select a valid choice. That choice is not one of the available choices."
        ]
    goal_a.refresh_from_db()
    assert goal_a.kpi == data["kpi_a"]
    assert Goal.objects.count() == 2


def test_manager_adds_a_goal_for_their_own_silo(client, data, manager_a):
    client.force_login(manager_a)
    kpi = factories.KPIFactory(silo=data["kpi_a"].silo, slug="revenue")

    response = client.post(
        "/admin/goals/goal/add/", goal_post_data(data["cycle"], kpi, target="200")
    )

    assert response.status_code == 302
    goal = Goal.objects.get(kpi=kpi)
    assert (goal.baseline, goal.target) == (100.0, 200.0)
    assert goal.history.get().history_user == manager_a


def autocomplete(client, term=""):
    response = client.get(
        "/admin/autocomplete/",
        {"term": term, "app_label": "goals", "model_name": "goal", "field_name": "kpi"},
    )
    assert response.status_code == 200
    return [row["text"] for row in response.json()["results"]]


def test_kpi_autocomplete_is_scoped(client, data, manager_a, cco):
    client.force_login(manager_a)
    assert autocomplete(client) == [str(data["kpi_a"])]
    assert autocomplete(client, "csat") == []
    client.force_login(cco)
    assert autocomplete(client) == [str(data["kpi_a"]), str(data["kpi_b"])]


def test_bulk_delete_cannot_reach_another_silo(client, data, manager_a):
    client.force_login(manager_a)
    measurement_a, measurement_b = data["measurement_a"], data["measurement_b"]

    response = client.post(
        "/admin/metrics/measurement/",
        {
            "action": "delete_selected",
            "_selected_action": [measurement_a.pk, measurement_b.pk],
            "post": "yes",
        },
    )

    assert response.status_code == 302
    assert list(Measurement.objects.all()) == [measurement_b]


def test_manager_cannot_create_a_kpi_in_another_silo(client, data, manager_a):
    client.force_login(manager_a)

    response = client.post(
        "/admin/metrics/kpi/add/",
        {
            "silo": data["kpi_b"].silo_id,
            "slug": "sneaky",
            "name": "Sneaky",
            "unit": "count",
            "direction": "higher_is_better",
            "frequency": "monthly",
            "aggregation": "sum",
            "is_active": "on",
        },
    )

    assert response.status_code == 200
    assert "silo" in response.context["adminform"].form.errors
    assert not KPI.objects.filter(slug="sneaky").exists()


def test_manager_cannot_edit_silos_links_or_cycles(client, data, manager_a):
    client.force_login(manager_a)
    silo = data["kpi_a"].silo

    for path in (
        "metrics/silo/add/",
        "metrics/impactlink/add/",
        "cycles/cycle/add/",
        "goals/sharedgoal/add/",
    ):
        assert client.get(f"/admin/{path}").status_code == 403
    response = client.post(
        f"/admin/metrics/silo/{silo.pk}/change/",
        {"slug": silo.slug, "name": "Renamed", "position": 1},
    )
    assert response.status_code == 403
    silo.refresh_from_db()
    assert silo.name == "Sales"


def test_anonymous_and_roleless_users_are_kept_out(client, data):
    response = client.get("/admin/metrics/kpi/")
    assert response.status_code == 302
    assert response.url.startswith("/admin/login/")
    client.force_login(factories.UserFactory(username="nobody"))
    assert client.get("/admin/metrics/kpi/").status_code == 403


def test_bi_reader_sees_everything_and_changes_nothing(client, data, reader):
    client.force_login(reader)

    assert set(changelist_objects(client, "metrics/kpi")) == {
        data["kpi_a"],
        data["kpi_b"],
    }
    response = client.post(
        f"/admin/metrics/kpi/{data['kpi_a'].pk}/change/",
        {
            "name": "Changed",
            "unit": "x",
            "direction": "higher_is_better",
            "frequency": "monthly",
            "aggregation": "sum",
        },
    )
    assert response.status_code == 403
    data["kpi_a"].refresh_from_db()
    assert data["kpi_a"].name != "Changed"


def test_kpi_change_list_shows_the_latest_value(client, data, manager_a):
    factories.MeasurementFactory(
        kpi=data["kpi_a"], period=dt.date(2024, 2, 1), value=17
    )
    client.force_login(manager_a)

    response = client.get("/admin/metrics/kpi/")

    assert "17 count (2024-02-01)" in response.content.decode()


def test_goal_change_list_shows_actual_and_progress(client, data, manager_a):
    goal = data["goal_a"]  # baseline 100, target 150, sum over 2027
    for month, value in ((1, 60.0), (2, 65.0)):
        factories.MeasurementFactory(
            kpi=goal.kpi, period=dt.date(2027, month, 1), value=value
        )
    client.force_login(manager_a)

    response = client.get("/admin/goals/goal/")

    row = response.context["cl"].result_list[0]
    assert row.actual == 125.0
    body = response.content.decode()
    assert "125 count" in body
    # A sum goal's totals pro rata: by February 2/12 of the year's 100 (the baseline)
    # and 150 (the target) are due; 125 already is more than the whole gain, so 100%,
    # on track (a running total is "met" only at its due period).
    assert '<td class="field-progress">100%</td>' in body
    assert "17% by Feb 2027 (linear)" in body
    assert '<td class="field-status_display">on track</td>' in body


@pytest.mark.parametrize(
    "model_path", ["metrics/kpi", "goals/goal", "metrics/measurement"]
)
def test_change_list_query_count_does_not_grow_with_rows(
    client, silo_a, manager_a, model_path
):
    cycle = factories.CycleFactory()

    def add_rows(count):
        for _ in range(count):
            goal = factories.GoalFactory(
                cycle=cycle, kpi=factories.KPIFactory(silo=silo_a)
            )
            factories.MeasurementFactory(kpi=goal.kpi)

    client.force_login(manager_a)
    add_rows(2)
    with CaptureQueriesContext(connection) as few:
        assert client.get(f"/admin/{model_path}/").status_code == 200
    add_rows(20)
    with CaptureQueriesContext(connection) as many:
        assert client.get(f"/admin/{model_path}/").status_code == 200

    assert len(many.captured_queries) == len(few.captured_queries)


def test_filters_and_owner_choices_name_only_the_managers_silo(
    client, data, manager_a, manager_b
):
    factories.silo_manager(data["kpi_a"].silo, username="colleague_a")
    finance = factories.SiloFactory(slug="finance", name="Finance", position=50)
    finance.managers.add(manager_a)
    factories.KPIFactory(silo=finance, slug="gross_margin")
    client.force_login(manager_a)

    kpi_list = client.get("/admin/metrics/kpi/")
    goal_form = client.get("/admin/goals/goal/add/")

    silo_filter = next(
        spec for spec in kpi_list.context["cl"].filter_specs if spec.title == "silo"
    )
    assert sorted(label for _, label in silo_filter.lookup_choices) == [
        "Finance",
        "Sales",
    ]
    owner_field = goal_form.context["adminform"].form.fields["owner"]
    assert sorted(u.username for u in owner_field.queryset) == [
        "colleague_a",
        "manager_a",
    ]


def test_site_root_is_the_home_and_the_admins_view_site_leads_there(client, cco):
    anonymous = client.get("/", follow=True)
    client.force_login(cco)
    signed_in = client.get("/", follow=True)
    admin_index = client.get("/admin/").content.decode()

    view_site = client.get("/start/", follow=True)

    assert anonymous.redirect_chain == [("/admin/login/?next=/", 302)]
    assert signed_in.redirect_chain == []
    assert signed_in.status_code == 200
    assert '<a href="/start/">View site</a>' in admin_index
    assert view_site.redirect_chain == [("/", 302)]
    # One navigation: the admin's brand leads home, and the app's links are in its
    # header, those the role may follow only.
    assert '<div id="site-name"><a href="/">ducttape</a></div>' in admin_index
    nav = admin_index.split('<nav aria-label="ducttape" class="app-navigation">')[1]
    assert nav.split("</nav>")[0].startswith('<a href="/">Home</a> · ')
    assert '<a href="/report/conflicts/">Conflict report</a>' in nav.split("</nav>")[0]


def test_a_managers_admin_header_has_no_cco_pages(client, manager_a):
    client.force_login(manager_a)

    header = client.get("/admin/").content.decode().split("</header>")[0]

    assert '<a href="/">Home</a>' in header
    assert "/report/conflicts/" not in header


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (1_492_113.4, "1,492,113"),
        (12_000.0, "12,000"),
        (5.5432, "5.543"),
        (179.0, "179"),
    ],
)
def test_admin_numbers_are_readable(value, shown):
    assert human_number(value) == shown
