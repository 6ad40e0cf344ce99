"""Rule kind ``bands``: four-band thresholds (OpenTele) — red outside the alert bands, yellow
between the warning and alert bands; blood pressure with systolic and diastolic bands."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone, translation

from alerts.definitions import rule_save
from alerts.models import Alert, AlertFinding, Rule, Snooze
from alerts.rules import parse_params
from monitoring.models import Reading, Source
from tests.factories import evaluate

pytestmark = pytest.mark.django_db

SPO2 = {"measure": "spo2", "bands": {"alert_low": 88, "warning_low": 92}}
BP = {"measure": "blood-pressure",
      "bands": {"alert_low": 80, "warning_low": 90, "warning_high": 160, "alert_high": 180},
      "bands2": {"warning_high": 100, "alert_high": 110}}


def _rule(cast, params):
    Rule.objects.update(active=False)  # the cast's own rules would add findings of their own
    return rule_save(rule=Rule(program=cast.program_a, kind="bands", name="bands", severity="yellow",
                               params=params), by=cast.admin)


def _reading(cast, value, value2=None, measure="spo2", minutes_ago=5):
    reading = Reading.objects.create(
        patient=cast.patient_a, measure=measure, value=Decimal(str(value)),
        value2=None if value2 is None else Decimal(str(value2)),
        unit={"spo2": "%", "blood-pressure": "mm[Hg]"}[measure],
        effective_at=timezone.now() - timedelta(minutes=minutes_ago), source=Source.DEVICE)
    evaluate([reading.pk])
    return reading


def _severity(reading):
    finding = AlertFinding.objects.filter(source_key=f"reading:{reading.pk}").first()
    return finding.severity if finding else None


def test_an_spo2_trajectory_gets_the_colour_of_each_band_and_limits_belong_to_the_better_band(cast):
    _rule(cast, SPO2)
    values = ["96", "92", "91", "88", "87", "93"]
    readings = [_reading(cast, v, minutes_ago=60 - i) for i, v in enumerate(values)]
    assert [_severity(r) for r in readings] == [None, None, "yellow", "yellow", "red", None]
    alert = Alert.objects.get()  # one alert that turned red, not three
    assert alert.severity == "red"
    assert alert.findings.count() == 3


def test_red_reason_names_the_red_limit_in_plain_words(cast):
    _rule(cast, SPO2)
    with translation.override("en"):
        reading = _reading(cast, "85")
    alert = Alert.objects.get()
    assert alert.reason == "Oxygen saturation (SpO2) 85 % is below the red limit of 88 %."
    assert alert.evidence["findings"] == [
        {"component": "value", "value": "85", "severity": "red", "side": "low", "limit": "88"}]
    assert alert.evidence["reading_id"] == reading.pk


def test_high_bands_alone_work_without_low_ones(cast):
    _rule(cast, {"measure": "body-temperature", "bands": {"warning_high": "38.0", "alert_high": "39.0"}})
    readings = []
    for i, value in enumerate(["36.5", "38.0", "38.1", "39.0", "39.1"]):
        reading = Reading.objects.create(patient=cast.patient_a, measure="body-temperature",
                                         value=Decimal(value), unit="Cel", source=Source.DEVICE,
                                         effective_at=timezone.now() - timedelta(minutes=30 - i))
        evaluate([reading.pk])
        readings.append(reading)
    assert [_severity(r) for r in readings] == [None, None, "yellow", "yellow", "red"]


def test_blood_pressure_the_worse_component_decides_and_the_reason_names_it(cast):
    _rule(cast, BP)
    with translation.override("en"):
        reading = _reading(cast, 170, 115, measure="blood-pressure")
    alert = Alert.objects.get()
    assert alert.severity == "red"
    assert _severity(reading) == "red"
    # The deciding (red, diastolic) part first, then the yellow systolic.
    assert alert.reason == ("Blood pressure (diastolic) 115 mmHg is above the red limit of 110 mmHg. "
                            "Blood pressure (systolic) 170 mmHg is above the yellow limit of 160 mmHg.")
    assert alert.evidence["component"] == "value2"


def test_blood_pressure_trajectory_per_component(cast):
    _rule(cast, BP)
    pairs = [(130, 80), (165, 85), (150, 105), (185, 95), (120, 112), (85, 60), (75, 50)]
    readings = [_reading(cast, s, d, measure="blood-pressure", minutes_ago=60 - i) for i, (s, d) in enumerate(pairs)]
    assert [_severity(r) for r in readings] == [None, "yellow", "yellow", "red", "red", "yellow", "red"]


def test_a_reading_of_another_measure_is_not_judged(cast):
    _rule(cast, SPO2)
    reading = Reading.objects.create(patient=cast.patient_a, measure="heart-rate", value=30, unit="/min",
                                     effective_at=timezone.now(), source=Source.DEVICE)
    evaluate([reading.pk])
    assert not Alert.objects.exists()


def test_an_erroneous_reading_raises_nothing(cast):
    _rule(cast, SPO2)
    reading = Reading.objects.create(patient=cast.patient_a, measure="spo2", value=80, unit="%",
                                     effective_at=timezone.now(), source=Source.DEVICE,
                                     erroneous_at=timezone.now(), erroneous_reason="finger cold")
    evaluate([reading.pk])
    assert not Alert.objects.exists()


def test_a_snoozed_level_is_quiet_but_the_rule_still_fires_beyond_it(cast):
    _rule(cast, SPO2)
    Snooze.objects.create(patient=cast.patient_a, measure="spo2", low=88, high=91,
                          until=timezone.now() + timedelta(days=7), reason="COPD, usually 89-91 %",
                          created_by=cast.clinician_a)
    quiet = _reading(cast, "90", minutes_ago=10)
    loud = _reading(cast, "86", minutes_ago=5)
    assert _severity(quiet) is None
    assert _severity(loud) == "red"


def test_a_late_upload_is_judged_by_the_day_it_was_measured(cast):
    # Measured before the patient's treatment episode began: no programme rule applied then.
    _rule(cast, SPO2)
    early = _reading(cast, "80", minutes_ago=60 * 24 * 40)
    assert _severity(early) is None
    assert _severity(_reading(cast, "80", minutes_ago=60 * 24 * 10)) == "red"


# --- invalid definitions are refused when saved ----------------------------------------------

@pytest.mark.parametrize(("params", "message"), [
    ({"measure": "spo2", "bands": {"alert_low": 92, "warning_low": 88}},
     r"bands out of order: alert_low \(92\) must be below warning_low \(88\)"),
    ({"measure": "spo2", "bands": {"warning_low": 92, "warning_high": 92}}, "bands out of order"),
    ({"measure": "blood-pressure", "bands": {"warning_high": 160, "alert_high": 150}}, "bands out of order"),
    ({"measure": "spo2", "bands": {"alert_low": 88, "alert_high": 80}}, "bands out of order"),
    ({"measure": "oxygen", "bands": {"alert_low": 88}}, "unknown measure 'oxygen'"),
    ({"measure": "spo2", "bands": {"alert_low": 88}, "bands2": {"alert_high": 100}}, "no second component"),
    ({"measure": "spo2", "bands": {}}, "give at least one of"),
    ({"measure": "spo2"}, "give bands"),
    ({"measure": "spo2", "bands": {"alert_low": 880}}, "outside the possible spo2 values"),
    ({"measure": "blood-pressure", "bands2": {"alert_high": 250}}, "bands2.alert_high 250 is outside"),
    ({"measure": "spo2", "bands": {"alert_lo": 88}}, "alert_lo"),
    ({"measure": "spo2", "bands": {"alert_low": "low"}}, "alert_low"),
])
def test_an_invalid_bands_rule_is_refused_with_a_clear_message(cast, params, message):
    with pytest.raises(ValidationError, match=message):
        rule_save(rule=Rule(program=cast.program_a, kind="bands", name="bad", severity="red", params=params),
                  by=cast.admin)
    assert not Rule.objects.filter(name="bad").exists()


def test_the_simple_threshold_kind_keeps_its_low_and_high_meaning(cast):
    params = parse_params("threshold", {"measure": "spo2", "low": 92})
    assert params.low == 92
    refused = pytest.raises(ValidationError, match="Den nedre grænse skal være under den øvre grænse.")
    with translation.override("da"), refused:
        parse_params("threshold", {"measure": "spo2", "low": 92, "high": 90})
