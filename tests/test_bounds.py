"""Issue 10, points 1, 2, 6 and 7: every stored figure and text is bounded, so that no
stored value can fail a page or a job later; a roll-up that fails is recorded.

The review's reproductions are replayed against the real PostgreSQL: an upload of
1e155 to a mean KPI (PostgreSQL's AVG then overflowed on five pages and in every
roll-up), a guardrail baseline of 1.7976931348623157e308 (every roll-up then failed to
write Infinity into jsonb), 8 MB descriptions and 9 MB notes, and a huge value that
silently dropped a KPI from detection.
"""

import datetime as dt
import math

import pytest
from django.db import IntegrityError, connection, transaction

from conflicts import services as conflict_services
from conflicts.models import DetectionRun
from core.bounds import LONG_TEXT_MAX, MAX_MAGNITUDE, finite_json
from goals import rollups
from goals.models import Contribution, Goal, Guardrail, RollupRun, SharedGoal
from metrics.models import KPI, ImpactLink, Measurement, Silo
from planning.models import Priority, ReadinessAnswer, SignOff
from tests import factories
from tests.goals.rollup_world import build

pytestmark = pytest.mark.django_db

#: The largest storable figure, just below the bound.
LARGEST = math.nextafter(MAX_MAGNITUDE, 0)
TOO_LARGE = (
    "Enter a number whose magnitude is below 1e15 (1,000,000,000,000,000); "
    "got {:g}. No KPI reaches that size: check the unit or the decimal point."
)


def too_large(value: float) -> str:
    return TOO_LARGE.format(value)


# --- point 1: the upload that broke five pages and every roll-up ------------------------


def test_the_reviews_upload_of_1e155_to_a_mean_kpi_is_refused(api, silo_b, manager_b):
    factories.KPIFactory(silo=silo_b, slug="csat_pct", aggregation="mean")
    api.force_authenticate(manager_b)

    response = api.post(
        "/api/v1/measurements/bulk/",
        {
            "measurements": [
                {"kpi": "support.csat_pct", "period": "2026-11-01", "value": 1e155}
            ]
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {
        "errors": [{"index": 0, "field": "value", "message": too_large(1e155)}]
    }
    assert Measurement.objects.count() == 0


@pytest.fixture
def extreme(silo_a, silo_b):
    """The roll-up company, with its sum and mean KPIs at the largest storable values
    for twelve months (and the guardrail's KPI at the most negative one), a conflict
    between them and a priority: every page and job that aggregates them."""
    world = build(silo_a, silo_b)
    for kpi, value in ((world["deals"], LARGEST), (world["margin"], LARGEST)):
        Measurement.objects.bulk_create(
            Measurement(kpi=kpi, period=dt.date(2027, month, 1), value=value)
            for month in range(4, 13)
        )
    Measurement.objects.filter(kpi__in=[world["deals"], world["margin"]]).update(
        value=LARGEST
    )
    Measurement.objects.filter(kpi=world["csat"]).update(value=-LARGEST)
    Goal.objects.filter(kpi=world["margin"]).update(period_end=dt.date(2027, 12, 1))
    world["conflict"] = factories.ConflictFactory(
        leader_kpi=world["deals"], affected_kpi=world["margin"]
    )
    return world


def test_the_largest_storable_values_break_no_page(client, extreme, cco):
    client.force_login(cco)
    goal = Goal.objects.get(kpi=extreme["margin"])

    pages = {
        path: client.get(path).status_code
        for path in (
            f"/report/cycles/{extreme['cycle'].pk}/",
            "/admin/goals/goal/",
            f"/admin/goals/goal/{goal.pk}/change/",
            f"/admin/goals/sharedgoal/{extreme['shared'].pk}/change/",
            f"/report/conflicts/{extreme['conflict'].pk}/",
            "/report/conflicts/",
        )
    }

    assert set(pages.values()) == {200}, pages


def test_the_largest_storable_values_break_no_api_read(api, extreme, reader):
    api.force_authenticate(reader)

    figures = api.get("/api/v1/figures/", {"kpi": "finance.margin"})
    goals = api.get("/api/v1/goals/")
    csv = api.get("/api/v1/figures/?format=csv")

    assert (figures.status_code, goals.status_code, csv.status_code) == (200, 200, 200)
    # A mean of values all equal to LARGEST, from baseline 30 to target 40: met.
    assert {row["attainment"] for row in figures.json()["results"]} == {1.0}
    # The header, 12 months of deals and of margin, CSAT's 2 months.
    assert b"".join(csv.streaming_content).count(b"\n") == 1 + 12 + 12 + 2


def test_the_largest_storable_values_roll_up(extreme):
    run = rollups.shared_goals_rollup(day=dt.date(2027, 12, 31))

    assert run.status == RollupRun.Status.DONE
    snapshot = extreme["shared"].snapshots.get()
    assert snapshot.progress == 0.5  # both met (1.0), capped: CSAT fell by ~1e15
    assert snapshot.uncapped_progress == 1.0
    assert snapshot.guardrails[0]["worsened_by"] == 84.0 + LARGEST
    assert snapshot.guardrails[0]["breached"] is True


def test_a_failed_rollup_is_recorded_with_its_error_in_the_admin_and_the_api(
    api, client, silo_a, silo_b, reader, cco
):
    build(silo_a, silo_b)
    # A real database error in the middle of the roll-up's write.
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE FUNCTION refuse_snapshot() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION 'snapshots are read-only today'; END
            $$ LANGUAGE plpgsql;
            CREATE TRIGGER refuse_snapshot BEFORE INSERT ON goals_sharedgoalsnapshot
            FOR EACH ROW EXECUTE FUNCTION refuse_snapshot();
            """
        )

    with pytest.raises(Exception, match="snapshots are read-only today"):
        rollups.shared_goals_rollup(
            day=dt.date(2027, 4, 2), reason=RollupRun.Reason.SCHEDULE
        )

    run = RollupRun.objects.get()
    assert (run.status, run.reason, run.day, run.shared_goals) == (
        "failed",
        "schedule",
        dt.date(2027, 4, 2),
        0,
    )
    assert run.error.startswith("ProgrammingError: snapshots are read-only today")
    api.force_authenticate(reader)
    listed = api.get("/api/v1/rollup-runs/", {"status": "failed"}).json()
    assert [(r["id"], r["status"], r["error"]) for r in listed["results"]] == [
        (run.pk, "failed", run.error)
    ]
    assert api.get("/api/v1/rollup-runs/", {"status": "done"}).json()["count"] == 0
    client.force_login(cco)
    admin_list = client.get("/admin/goals/rolluprun/?status__exact=failed")
    assert admin_list.status_code == 200
    assert "snapshots are read-only today" in admin_list.content.decode()


# --- points 1 and 2: every numeric input is bounded, at every door ---------------------

BOUNDED_FIELDS = [
    (Measurement, "value"),
    (KPI, "band_low"),
    (KPI, "band_high"),
    (Goal, "baseline"),
    (Goal, "target"),
    (Guardrail, "baseline"),
    (Guardrail, "tolerance"),
    (Contribution, "weight"),
]


@pytest.mark.parametrize("value", [MAX_MAGNITUDE, -MAX_MAGNITUDE, math.inf, math.nan])
@pytest.mark.parametrize(
    ("model", "field"), BOUNDED_FIELDS, ids=lambda x: getattr(x, "__name__", x)
)
def test_the_database_refuses_figures_outside_the_bound(
    silo_a, silo_b, model, field, value
):
    world = build(silo_a, silo_b)
    band = factories.KPIFactory(
        silo=silo_a, slug="band", direction="target_band", band_low=1, band_high=2
    )
    factories.MeasurementFactory(kpi=world["deals"], period=dt.date(2026, 1, 1))
    rows = model.objects.filter(pk=band.pk) if model is KPI else model.objects.all()
    if field in ("band_low", "band_high") and value == -MAX_MAGNITUDE:
        rows.update(band_low=-MAX_MAGNITUDE + 1e9, band_high=-MAX_MAGNITUDE + 1e10)

    with pytest.raises(IntegrityError, match="bounded"), transaction.atomic():
        rows.update(**{field: value})


@pytest.mark.parametrize("value", [LARGEST, -LARGEST])
def test_the_largest_figures_are_stored(value):
    kpi = factories.KPIFactory()

    Measurement.objects.create(kpi=kpi, period=dt.date(2024, 1, 1), value=value)

    assert Measurement.objects.get().value == value


@pytest.mark.parametrize("value", [1e15, 1.7976931348623157e308])
@pytest.mark.parametrize("field", ["baseline", "tolerance"])
def test_the_reviews_guardrail_figure_is_refused_and_nothing_changes(
    api, silo_a, silo_b, cco, field, value
):
    world = build(silo_a, silo_b)
    api.force_authenticate(cco)
    guardrail = {"kpi": "support.csat", "baseline": 84, "tolerance": 2, field: value}

    response = api.patch(
        f"/api/v1/shared-goals/{world['shared'].pk}/",
        {"guardrails": [guardrail]},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {"guardrails": {"0": {field: [too_large(value)]}}}
    assert list(Guardrail.objects.values_list("baseline", "tolerance")) == [(84.0, 2.0)]


def test_a_contribution_weight_of_1e15_is_refused(api, silo_a, silo_b, cco):
    world = build(silo_a, silo_b)
    api.force_authenticate(cco)
    goals = list(Goal.objects.order_by("pk").values_list("pk", flat=True))

    response = api.patch(
        f"/api/v1/shared-goals/{world['shared'].pk}/",
        {
            "contributions": [
                {"goal": goals[0], "weight": 1e15},
                {"goal": goals[1], "weight": 1},
            ]
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {"contributions": {"0": {"weight": [too_large(1e15)]}}}
    assert sorted(Contribution.objects.values_list("weight", flat=True)) == [1.0, 2.0]


@pytest.mark.parametrize("field", ["baseline", "target"])
def test_goal_figures_of_1e15_are_refused_by_the_api(api, silo_a, manager_a, field):
    goal = factories.GoalFactory(kpi=factories.KPIFactory(silo=silo_a))
    api.force_authenticate(manager_a)

    response = api.patch(f"/api/v1/goals/{goal.pk}/", {field: 1e15}, format="json")

    assert response.status_code == 400
    assert response.json() == {field: [too_large(1e15)]}
    goal.refresh_from_db()
    assert (goal.baseline, goal.target) == (100.0, 150.0)


def test_a_band_edge_of_1e15_is_refused_by_the_api(api, silo_a, manager_a):
    api.force_authenticate(manager_a)

    response = api.post(
        "/api/v1/kpis/",
        {
            "silo": "sales",
            "slug": "band",
            "name": "Band",
            "unit": "%",
            "direction": "target_band",
            "band_low": 1,
            "band_high": 1e15,
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {"band_high": [too_large(1e15)]}
    assert not KPI.objects.exists()


def test_the_admin_measurement_form_refuses_1e15(client, silo_a, manager_a):
    kpi = factories.KPIFactory(silo=silo_a)
    client.force_login(manager_a)

    response = client.post(
        "/admin/metrics/measurement/add/",
        {"kpi": kpi.pk, "period": "2024-01-01", "value": "1e15", "source": ""},
    )

    assert response.status_code == 200
    assert too_large(1e15) in response.content.decode().replace("&#x27;", "'")
    assert not Measurement.objects.exists()


def test_job_json_is_finite_by_construction():
    data = {"a": [1.5, math.inf, {"b": -math.inf, "c": math.nan}], "d": (2.0, "x")}

    assert finite_json(data) == {
        "a": [1.5, None, {"b": None, "c": None}],
        "d": [2.0, "x"],
    }


# --- point 6: unbounded text ------------------------------------------------------------

TEXT_FIELDS = [
    (Silo, "description"),
    (KPI, "description"),
    (ImpactLink, "rationale"),
    (Goal, "notes"),
    (SharedGoal, "description"),
    (Priority, "description"),
    (SignOff, "note"),
    (ReadinessAnswer, "note"),
]


@pytest.mark.parametrize(
    ("model", "field"), TEXT_FIELDS, ids=lambda x: getattr(x, "__name__", x)
)
def test_the_database_refuses_text_over_the_limit(
    silo_a, silo_b, manager_a, cco, model, field
):
    world = build(silo_a, silo_b)
    factories.ImpactLinkFactory(leader_kpi=world["deals"], affected_kpi=world["csat"])
    priority = factories.PriorityFactory(cycle=world["cycle"], accountable_silo=silo_a)
    SignOff.objects.create(cycle=world["cycle"], silo=silo_a, user=manager_a)
    ReadinessAnswer.objects.create(cycle=world["cycle"], number=1, answer="yes")
    rows = model.objects.filter(pk=priority.pk) if model is Priority else model.objects
    rows.all().update(**{field: "x" * LONG_TEXT_MAX})

    with pytest.raises(IntegrityError, match="length"), transaction.atomic():
        rows.all().update(**{field: "x" * (LONG_TEXT_MAX + 1)})


def test_the_reviews_8_mb_kpi_description_is_refused_and_history_stays_small(
    api, silo_a, manager_a
):
    kpi = factories.KPIFactory(silo=silo_a, slug="deals", description="Deals won.")
    api.force_authenticate(manager_a)
    history_rows = KPI.history.count()

    for _ in range(3):
        response = api.patch(
            f"/api/v1/kpis/{kpi.key}/", {"description": "x" * 8_000_000}, format="json"
        )
        assert response.status_code == 400
        assert response.json() == {
            "description": ["Ensure this field has no more than 5000 characters."]
        }

    assert KPI.history.count() == history_rows
    assert KPI.objects.get().description == "Deals won."
    listing = api.get("/api/v1/kpis/")
    assert len(listing.content) < 5_000


def test_a_9_mb_goal_note_is_refused(api, silo_a, manager_a):
    goal = factories.GoalFactory(kpi=factories.KPIFactory(silo=silo_a))
    api.force_authenticate(manager_a)

    response = api.patch(
        f"/api/v1/goals/{goal.pk}/", {"notes": "n" * 9_000_000}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "notes": ["Ensure this field has no more than 5000 characters."]
    }
    assert Goal.objects.get().notes == ""


def test_a_note_of_exactly_the_limit_is_stored(api, silo_a, manager_a):
    goal = factories.GoalFactory(kpi=factories.KPIFactory(silo=silo_a))
    api.force_authenticate(manager_a)

    response = api.patch(
        f"/api/v1/goals/{goal.pk}/", {"notes": "é" * LONG_TEXT_MAX}, format="json"
    )

    assert response.status_code == 200
    assert Goal.objects.get().notes == "é" * LONG_TEXT_MAX


def test_the_admin_refuses_an_overlong_kpi_description(client, silo_a, manager_a):
    kpi = factories.KPIFactory(silo=silo_a, slug="deals")
    client.force_login(manager_a)

    response = client.post(
        f"/admin/metrics/kpi/{kpi.pk}/change/",
        {
            "name": kpi.name,
            "unit": kpi.unit,
            "description": "x" * (LONG_TEXT_MAX + 1),
            "direction": kpi.direction,
            "frequency": kpi.frequency,
            "aggregation": kpi.aggregation,
            "is_active": "on",
        },
    )

    assert response.status_code == 200
    assert "Ensure this value has at most 5000 characters" in response.content.decode()
    assert KPI.objects.get().description == ""


# --- point 7: a KPI detection could not test is named, with the reason ------------------


def test_a_run_lists_every_kpi_it_could_not_test_and_why(api, silo_a, silo_b, reader):
    months = [dt.date(2024 + (m // 12), m % 12 + 1, 1) for m in range(30)]
    noisy = factories.KPIFactory(silo=silo_a, slug="noisy")
    steady = factories.KPIFactory(silo=silo_a, slug="steady")
    short = factories.KPIFactory(silo=silo_b, slug="short")
    factories.KPIFactory(silo=silo_b, slug="empty")
    factories.KPIFactory(
        silo=silo_b, slug="band", direction="target_band", band_low=1, band_high=2
    )
    factories.KPIFactory(silo=silo_b, slug="retired", is_active=False)
    rows = [
        Measurement(kpi=noisy, period=m, value=(i * 7919) % 13)
        for i, m in enumerate(months)
    ]
    # A straight line: its changes are all equal.
    rows += [
        Measurement(kpi=steady, period=m, value=10 + 2 * i)
        for i, m in enumerate(months)
    ]
    rows += [
        Measurement(kpi=short, period=m, value=i) for i, m in enumerate(months[:6])
    ]
    Measurement.objects.bulk_create(rows)

    run = conflict_services.detection_run_now(
        max_lag=3, min_pairs=12, q_threshold=0.05, block_size=1000
    )

    expected = [
        {
            "kpi": "sales.steady",
            "reason": "its changes never vary, so there is nothing to correlate",
        },
        {
            "kpi": "support.band",
            "reason": "a target-band KPI has no better direction to correlate (its "
            "declared links still raise conflicts)",
        },
        {"kpi": "support.empty", "reason": "no measurements yet"},
        {
            "kpi": "support.short",
            "reason": "only 5 month-over-month changes; at least 12 are needed",
        },
    ]
    assert (run.status, run.untested_kpis, run.untested) == ("succeeded", 4, expected)
    api.force_authenticate(reader)
    body = api.get(f"/api/v1/detection-runs/{run.pk}/").json()
    assert (body["untested_kpis"], body["untested"]) == (4, expected)
    assert DetectionRun.objects.get().untested == expected
