"""Holes a review found in the admin, each closed and pinned by a test."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from core.roles import BI_READERS, SILO_MANAGERS
from goals.models import Goal, SharedGoal
from metrics.models import KPI, Measurement
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def kpi_b(silo_b):
    return factories.KPIFactory(silo=silo_b, slug="csat", name="CSAT")


def test_history_form_cannot_write(client, silo_a, manager_a, reader):
    kpi = factories.KPIFactory(silo=silo_a, slug="deals", name="Deals")
    version = kpi.history.get()
    url = f"/admin/metrics/kpi/{kpi.pk}/history/{version.history_id}/"
    form = {
        "name": "Hijacked",
        "unit": "x",
        "direction": "higher_is_better",
        "frequency": "monthly",
        "aggregation": "sum",
        "is_active": "on",
    }

    for user in (reader, manager_a):
        client.force_login(user)
        assert client.post(url, form).status_code == 403
        assert client.get(url).status_code == 200

    kpi.refresh_from_db()
    assert kpi.name == "Deals"
    assert kpi.history.count() == 1


def test_silo_history_form_cannot_grant_management(client, silo_b, manager_a):
    version = silo_b.history.get()
    client.force_login(manager_a)

    response = client.post(
        f"/admin/metrics/silo/{silo_b.pk}/history/{version.history_id}/",
        {
            "slug": silo_b.slug,
            "name": silo_b.name,
            "position": 1,
            "managers": [manager_a.pk],
        },
    )

    assert response.status_code == 403
    assert list(silo_b.managers.all()) == []


def test_manager_who_is_also_a_reader_still_changes_only_their_silos(client, kpi_b):
    from django.contrib.auth.models import Group

    user = factories.user_in(SILO_MANAGERS, username="both")
    user.groups.add(Group.objects.get(name=BI_READERS))
    factories.MeasurementFactory(kpi=kpi_b)
    client.force_login(user)

    response = client.post(
        "/admin/metrics/measurement/",
        {
            "action": "delete_selected",
            "_selected_action": [m.pk for m in Measurement.objects.all()],
            "post": "yes",
        },
    )

    assert response.status_code == 302
    assert Measurement.objects.count() == 1
    assert client.get(f"/admin/metrics/kpi/{kpi_b.pk}/change/").status_code == 302


def test_listed_on_a_silo_without_the_manager_role_cannot_import(
    client, silo_a, reader
):
    factories.KPIFactory(silo=silo_a, slug="deals")
    silo_a.managers.add(reader)
    client.force_login(reader)

    response = client.post(
        "/admin/metrics/measurement/import/",
        {
            "format": "0",
            "import_file": SimpleUploadedFile(
                "m.csv", b"kpi,period,value\nsales.deals,2024-01-01,3\n"
            ),
        },
    )

    assert response.status_code == 403
    assert Measurement.objects.count() == 0


def test_kpi_direction_cannot_switch_to_a_band_under_single_target_goals(
    silo_a, manager_a, client
):
    kpi = factories.KPIFactory(silo=silo_a, slug="deals")
    factories.GoalFactory(kpi=kpi)  # measured over 2027
    factories.MeasurementFactory(kpi=kpi, period=dt.date(2027, 1, 1), value=120)
    kpi.direction, kpi.band_low, kpi.band_high = "target_band", 1.0, 2.0

    with pytest.raises(ValidationError) as excinfo:
        kpi.full_clean()
    assert (
        "switching to or from a target band"
        in excinfo.value.message_dict["direction"][0]
    )

    # Even if it is written behind the admin's back, the goal list still renders.
    kpi.save()
    client.force_login(manager_a)
    response = client.get("/admin/goals/goal/")
    assert response.status_code == 200
    assert "goal does not fit the KPI" in response.content.decode()


def test_kpi_frequency_is_frozen_once_it_has_measurements(silo_a):
    kpi = factories.KPIFactory(silo=silo_a, slug="deals")
    factories.MeasurementFactory(kpi=kpi)
    kpi.frequency = "weekly"

    with pytest.raises(ValidationError) as excinfo:
        kpi.full_clean()
    assert list(excinfo.value.message_dict) == ["frequency"]


def test_link_history_is_hidden_from_managers_of_other_silos(
    client, silo_b, kpi_b, manager_a
):
    finance = factories.SiloFactory(slug="finance", name="Finance")
    link = factories.ImpactLinkFactory(
        leader_kpi=kpi_b, affected_kpi=factories.KPIFactory(silo=finance)
    )
    client.force_login(manager_a)

    assert (
        client.get(f"/admin/metrics/impactlink/{link.pk}/history/").status_code == 403
    )
    version = link.history.get()
    form_url = f"/admin/metrics/impactlink/{link.pk}/history/{version.history_id}/"
    assert client.get(form_url).status_code in (403, 404)


def test_new_shared_goal_refuses_goals_of_another_cycle(client, silo_a, silo_b, cco):
    fy27 = factories.CycleFactory(name="FY2027")
    fy28 = factories.CycleFactory(
        name="FY2028", start_date=dt.date(2028, 1, 1), end_date=dt.date(2028, 12, 31)
    )
    goals = [
        factories.GoalFactory(cycle=fy28, kpi=factories.KPIFactory(silo=s))
        for s in (silo_a, silo_b)
    ]
    client.force_login(cco)

    response = client.post(
        "/admin/goals/sharedgoal/add/",
        {
            "cycle": fy27.pk,
            "name": "Mixed",
            "description": "",
            "contributions-TOTAL_FORMS": "2",
            "contributions-INITIAL_FORMS": "0",
            "contributions-0-goal": goals[0].pk,
            "contributions-0-weight": "1",
            "contributions-1-goal": goals[1].pk,
            "contributions-1-weight": "1",
        },
    )

    assert response.status_code == 200
    assert "belongs to another cycle than the shared goal" in response.content.decode()
    assert SharedGoal.objects.count() == 0


def test_silo_slug_is_frozen_once_it_has_kpis(client, silo_a, cco):
    factories.KPIFactory(silo=silo_a, slug="deals")
    client.force_login(cco)

    client.post(
        f"/admin/metrics/silo/{silo_a.pk}/change/",
        {"slug": "revenue", "name": "Sales", "position": 20},
    )

    silo_a.refresh_from_db()
    assert silo_a.slug == "sales"
    assert KPI.objects.get().key == "sales.deals"


def test_deleted_goal_history_outlives_its_kpi(client, silo_a, manager_a):
    goal = factories.GoalFactory(kpi=factories.KPIFactory(silo=silo_a), name="")
    goal_id, kpi = goal.pk, goal.kpi
    goal.delete()
    kpi.delete()
    client.force_login(manager_a)

    response = client.get(f"/admin/goals/goal/{goal_id}/history/")

    assert response.status_code == 200
    assert Goal.history.filter(id=goal_id).count() == 2
