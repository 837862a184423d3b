"""Database-held rules of the metrics models, checked against the real PostgreSQL."""

import datetime as dt
import math

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from metrics.models import KPI, ImpactLink, Measurement
from tests import factories

pytestmark = pytest.mark.django_db


def test_kpi_key_is_silo_slug_dot_kpi_slug(silo_a):
    kpi = factories.KPIFactory(silo=silo_a, slug="deals_closed")

    assert kpi.key == "sales.deals_closed"
    assert KPI.objects.get(key="sales.deals_closed") == kpi


def test_kpi_slug_is_unique_within_a_silo(silo_a):
    factories.KPIFactory(silo=silo_a, slug="deals_closed")

    with pytest.raises(IntegrityError), transaction.atomic():
        factories.KPIFactory(silo=silo_a, slug="deals_closed")
    assert KPI.objects.count() == 1


def test_kpi_key_is_unique_even_when_written_directly(silo_a, silo_b):
    factories.KPIFactory(silo=silo_a, slug="deals_closed")
    clash = KPI(silo=silo_b, slug="other", key="sales.deals_closed", name="x", unit="u")
    clash.direction = "higher_is_better"

    with pytest.raises(IntegrityError), transaction.atomic():
        clash.save()
    assert KPI.objects.count() == 1


def test_kpi_key_never_changes_once_created(silo_a, silo_b):
    kpi = factories.KPIFactory(silo=silo_a, slug="deals_closed")
    kpi.slug = "deals_won"
    with pytest.raises(ValidationError, match="cannot change"):
        kpi.full_clean()

    kpi.refresh_from_db()
    kpi.silo = silo_b
    with pytest.raises(ValidationError, match="cannot change"):
        kpi.full_clean()

    kpi.refresh_from_db()
    kpi.name = "Deals won"
    kpi.full_clean()
    kpi.save()
    assert KPI.objects.get(pk=kpi.pk).key == "sales.deals_closed"


@pytest.mark.parametrize(
    ("direction", "band_low", "band_high", "allowed"),
    [
        ("target_band", 1.0, 2.0, True),
        ("target_band", 2.0, 2.0, True),
        ("target_band", 3.0, 2.0, False),
        ("target_band", None, 2.0, False),
        ("higher_is_better", None, None, True),
        ("lower_is_better", 1.0, 2.0, False),
    ],
)
def test_kpi_band_must_match_direction(silo_a, direction, band_low, band_high, allowed):
    kpi = factories.KPIFactory.build(
        silo=silo_a, direction=direction, band_low=band_low, band_high=band_high
    )
    if allowed:
        kpi.save()
        assert KPI.objects.filter(pk=kpi.pk).exists()
    else:
        with pytest.raises(IntegrityError), transaction.atomic():
            kpi.save()
        assert KPI.objects.count() == 0


def test_measurement_is_unique_per_kpi_and_period():
    measurement = factories.MeasurementFactory(period=dt.date(2024, 3, 1), value=1.0)

    with pytest.raises(IntegrityError), transaction.atomic():
        Measurement.objects.create(
            kpi=measurement.kpi, period=dt.date(2024, 3, 1), value=2.0
        )
    assert list(Measurement.objects.values_list("value", flat=True)) == [1.0]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e15, -1e15, 1e155])
def test_database_rejects_measurement_values_outside_the_bound(value):
    kpi = factories.KPIFactory()

    with (
        pytest.raises(IntegrityError, match="measurement_value_bounded"),
        transaction.atomic(),
    ):
        Measurement.objects.create(kpi=kpi, period=dt.date(2024, 1, 1), value=value)
    assert Measurement.objects.count() == 0


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_form_validation_rejects_non_finite_values(value):
    measurement = Measurement(kpi=factories.KPIFactory(), period=dt.date(2024, 1, 1))
    measurement.value = value

    with pytest.raises(ValidationError) as excinfo:
        measurement.full_clean()
    assert excinfo.value.message_dict == {
        "value": ["Enter a finite number (not NaN or infinity)."]
    }


@pytest.mark.parametrize("value", [1e15, -1e15, 1.7976931348623157e308])
def test_form_validation_rejects_values_of_magnitude_1e15_or_more(value):
    measurement = Measurement(kpi=factories.KPIFactory(), period=dt.date(2024, 1, 1))
    measurement.value = value

    with pytest.raises(ValidationError) as excinfo:
        measurement.full_clean()
    assert excinfo.value.message_dict == {
        "value": [
            "Enter a number whose magnitude is below 1e15 (1,000,000,000,000,000); "
            f"got {value:g}. No KPI reaches that size: check the unit or the decimal "
            "point."
        ]
    }


@pytest.mark.parametrize(
    ("frequency", "period", "valid"),
    [
        ("monthly", dt.date(2024, 2, 1), True),
        ("monthly", dt.date(2024, 2, 15), False),
        ("weekly", dt.date(2024, 1, 1), True),  # a Monday
        ("weekly", dt.date(2024, 1, 3), False),
        ("quarterly", dt.date(2024, 4, 1), True),
        ("quarterly", dt.date(2024, 5, 1), False),
    ],
)
def test_measurement_period_must_start_a_period_of_the_kpi(frequency, period, valid):
    measurement = Measurement(
        kpi=factories.KPIFactory(frequency=frequency), period=period, value=1.0
    )
    if valid:
        measurement.full_clean()
    else:
        with pytest.raises(ValidationError) as excinfo:
            measurement.full_clean()
        assert list(excinfo.value.message_dict) == ["period"]
        assert frequency in excinfo.value.message_dict["period"][0]


def test_deleting_a_kpi_with_measurements_is_refused():
    measurement = factories.MeasurementFactory()

    with pytest.raises(ProtectedError):
        measurement.kpi.delete()
    assert KPI.objects.filter(pk=measurement.kpi_id).exists()
    assert Measurement.objects.count() == 1


def test_deleting_a_kpi_without_measurements_is_allowed():
    kpi = factories.KPIFactory()

    kpi.delete()

    assert KPI.objects.count() == 0


def test_link_copies_the_silos_of_its_kpis(silo_a, silo_b):
    leader = factories.KPIFactory(silo=silo_a)
    affected = factories.KPIFactory(silo=silo_b)

    link = factories.ImpactLinkFactory(leader_kpi=leader, affected_kpi=affected)

    assert (link.leader_silo, link.affected_silo) == (silo_a, silo_b)


def test_database_refuses_a_link_inside_one_silo(silo_a):
    leader = factories.KPIFactory(silo=silo_a)
    affected = factories.KPIFactory(silo=silo_a)

    with pytest.raises(IntegrityError, match="link_across_silos"), transaction.atomic():
        factories.ImpactLinkFactory(leader_kpi=leader, affected_kpi=affected)
    assert ImpactLink.objects.count() == 0


def test_link_validation_names_the_same_silo_problem(silo_a):
    link = ImpactLink(
        leader_kpi=factories.KPIFactory(silo=silo_a),
        affected_kpi=factories.KPIFactory(silo=silo_a),
        effect="hurts",
        lag=0,
        rationale="r",
    )

    with pytest.raises(ValidationError) as excinfo:
        link.full_clean()
    assert excinfo.value.message_dict["affected_kpi"] == [
        "A link must join KPIs of two different silos."
    ]


def test_link_lag_is_at_most_twelve_periods(silo_a, silo_b):
    link = factories.ImpactLinkFactory.build(
        leader_kpi=factories.KPIFactory(silo=silo_a),
        affected_kpi=factories.KPIFactory(silo=silo_b),
        lag=13,
    )

    with (
        pytest.raises(IntegrityError, match="link_lag_at_most_12"),
        transaction.atomic(),
    ):
        link.save()
    with pytest.raises(ValidationError) as excinfo:
        link.full_clean()
    assert list(excinfo.value.message_dict) == ["lag"]
