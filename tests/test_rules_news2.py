"""NEWS2 (home subset) from home vitals: the RCP 2017 bands, totals and single-parameter 3s,
the window, erroneous and late readings, and definitions refused at save time."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone, translation

from alerts.definitions import rule_save
from alerts.models import Alert, AlertFinding, Rule
from alerts.rules import news2
from monitoring.models import Reading, Source
from tests.factories import evaluate

pytestmark = pytest.mark.django_db

UNITS = {"respiratory-rate": "/min", "spo2": "%", "blood-pressure": "mm[Hg]", "heart-rate": "/min",
         "body-temperature": "Cel"}
NORMAL = {"respiratory-rate": "16", "spo2": "97", "blood-pressure": "120", "heart-rate": "70",
          "body-temperature": "37.0"}


@pytest.fixture
def rule(cast):
    return Rule.objects.create(program=cast.program_a, kind="news2", name="NEWS2 home", severity="yellow",
                               params={})


def _reading(patient, measure, value, *, ago=timedelta(minutes=30), **extra):
    return Reading.objects.create(
        patient=patient, measure=measure, value=Decimal(value), unit=UNITS[measure],
        value2=Decimal("80") if measure == "blood-pressure" else None,
        effective_at=timezone.now() - ago, source=Source.DEVICE, **extra)


def _vitals(patient, values, *, ago=timedelta(minutes=30)):
    """Stores a set of vitals measured a minute apart (the last one given is the newest) and
    evaluates them as one batch, as a device upload would."""
    readings = [_reading(patient, m, v, ago=ago - timedelta(minutes=i)) for i, (m, v) in enumerate(values.items())]
    evaluate([r.pk for r in readings])
    return readings


def _news2_alert(rule):
    return Alert.objects.filter(rule=rule).first()


# --- the chart --------------------------------------------------------------------------------

@pytest.mark.parametrize(("measure", "value", "points"), [
    ("respiratory-rate", "8", 3), ("respiratory-rate", "9", 1), ("respiratory-rate", "11", 1),
    ("respiratory-rate", "12", 0), ("respiratory-rate", "20", 0), ("respiratory-rate", "21", 2),
    ("respiratory-rate", "24", 2), ("respiratory-rate", "25", 3),
    ("spo2", "91", 3), ("spo2", "92", 2), ("spo2", "93", 2), ("spo2", "94", 1), ("spo2", "95", 1), ("spo2", "96", 0),
    ("blood-pressure", "90", 3), ("blood-pressure", "91", 2), ("blood-pressure", "100", 2),
    ("blood-pressure", "101", 1), ("blood-pressure", "110", 1), ("blood-pressure", "111", 0),
    ("blood-pressure", "219", 0), ("blood-pressure", "220", 3),
    ("heart-rate", "40", 3), ("heart-rate", "41", 1), ("heart-rate", "50", 1), ("heart-rate", "51", 0),
    ("heart-rate", "90", 0), ("heart-rate", "91", 1), ("heart-rate", "110", 1), ("heart-rate", "111", 2),
    ("heart-rate", "130", 2), ("heart-rate", "131", 3),
    ("body-temperature", "35.0", 3), ("body-temperature", "35.1", 1), ("body-temperature", "36.0", 1),
    ("body-temperature", "36.1", 0), ("body-temperature", "38.0", 0), ("body-temperature", "38.1", 1),
    ("body-temperature", "39.0", 1), ("body-temperature", "39.1", 2),
    # Between the chart's bands: read at the chart's resolution, as a nurse reads the chart.
    ("body-temperature", "36.05", 0), ("body-temperature", "35.04", 3), ("heart-rate", "90.4", 0),
])
def test_each_parameter_scores_the_points_of_its_news2_band_exactly_at_the_edges(measure, value, points):
    band = next(b for b in news2.CHART if b.measure == measure)
    assert band.points(Decimal(value))[1] == points


# --- totals -----------------------------------------------------------------------------------

def test_a_total_of_exactly_five_raises_a_yellow_alert_labelled_as_a_home_subset(cast, rule):
    with translation.override("en"):
        readings = _vitals(cast.patient_a, {**NORMAL, "respiratory-rate": "22", "spo2": "93", "heart-rate": "95"})
    alert = _news2_alert(rule)
    assert alert is not None and alert.severity == "yellow"
    assert alert.reason.startswith("NEWS2 (home subset: 5 of 7 parameters) is 5; limit 5.")
    assert "Breathing rate 22 breaths per minute: 2 points" in alert.reason
    assert "Systolic blood pressure 120 mmHg: 0 points" in alert.reason
    ev = alert.evidence
    assert ev["subset"] == "NEWS2 (home subset: 5 of 7 parameters)"
    assert ev["total"] == 5 and ev["trigger"] == "total" and ev["missing"] == []
    assert ev["not_measured_at_home"] == ["supplemental-oxygen", "consciousness"]
    by_measure = {p["measure"]: p for p in ev["parameters"]}
    assert by_measure["respiratory-rate"]["value"] == "22" and by_measure["respiratory-rate"]["points"] == 2
    assert by_measure["spo2"]["points"] == 2 and by_measure["heart-rate"]["points"] == 1
    assert by_measure["blood-pressure"]["reading_id"] == readings[2].pk
    assert by_measure["body-temperature"]["value"] == "37"
    assert by_measure["heart-rate"]["value"] == "95" and by_measure["blood-pressure"]["value"] == "120"


def test_a_total_of_four_without_a_three_raises_nothing(cast, rule):
    _vitals(cast.patient_a, {**NORMAL, "respiratory-rate": "22", "spo2": "93"})
    assert _news2_alert(rule) is None


def test_a_total_of_seven_raises_a_red_alert(cast, rule):
    _vitals(cast.patient_a, {**NORMAL, "respiratory-rate": "22", "spo2": "92", "heart-rate": "115",
                             "body-temperature": "38.5", "blood-pressure": "90"})
    alert = _news2_alert(rule)
    assert alert.severity == "red"
    assert alert.evidence["total"] == 10
    assert {p["measure"]: p["value"] for p in alert.evidence["parameters"]}["blood-pressure"] == "90"


def test_three_points_in_one_parameter_raise_a_yellow_alert_although_the_total_is_low(cast, rule):
    with translation.override("en"):
        _vitals(cast.patient_a, {**NORMAL, "heart-rate": "135"})
    alert = _news2_alert(rule)
    assert alert.severity == "yellow"
    assert alert.evidence["trigger"] == "single-parameter"
    assert "is 3, but Pulse alone scores 3 points" in alert.reason


def test_single_parameter_threes_can_be_switched_off(cast, rule):
    rule.params = {"single_parameter_three": "off"}
    rule.save()
    _vitals(cast.patient_a, {**NORMAL, "heart-rate": "135"})
    assert _news2_alert(rule) is None


def test_worsening_vitals_add_evidence_to_the_open_alert_and_turn_it_red(cast, rule):
    _vitals(cast.patient_a, {**NORMAL, "respiratory-rate": "22", "spo2": "93", "heart-rate": "95"},
            ago=timedelta(hours=2))
    assert _news2_alert(rule).severity == "yellow"
    _vitals(cast.patient_a, {"respiratory-rate": "26", "spo2": "91"}, ago=timedelta(minutes=5))
    assert Alert.objects.filter(rule=rule).count() == 1
    alert = _news2_alert(rule)
    assert alert.severity == "red"
    assert alert.evidence["total"] == 7  # 3 + 3 + pulse 95 (1) + 0 + 0
    # each reading from the fourth one on scored at least 5: one alert, four findings
    assert AlertFinding.objects.filter(rule=rule, alert=alert).count() == 4


# --- which readings count -----------------------------------------------------------------------

def test_readings_older_than_the_window_do_not_count(cast, rule):
    _vitals(cast.patient_a, {"respiratory-rate": "22", "spo2": "93"}, ago=timedelta(hours=13))
    _vitals(cast.patient_a, {"heart-rate": "95", "blood-pressure": "120", "body-temperature": "37.0"})
    assert _news2_alert(rule) is None  # only 1 point within 12 hours


def test_too_few_parameters_within_the_window_give_no_score(cast, rule):
    rule.params = {"min_parameters": 3}
    rule.save()
    _vitals(cast.patient_a, {"respiratory-rate": "26", "heart-rate": "135"})  # 6 points, 2 parameters
    assert _news2_alert(rule) is None
    _vitals(cast.patient_a, {"spo2": "97"}, ago=timedelta(minutes=5))
    assert _news2_alert(rule).evidence["subset"] == "NEWS2 (home subset: 3 of 7 parameters)"


def test_an_erroneous_reading_is_left_out_of_the_score(cast, rule):
    bad = _reading(cast.patient_a, "respiratory-rate", "30", ago=timedelta(minutes=40),
                   erroneous_at=timezone.now(), erroneous_reason="counted twice")
    _vitals(cast.patient_a, {"spo2": "93", "heart-rate": "95", "body-temperature": "37.0"})
    assert _news2_alert(rule) is None  # 3 points without the erroneous 3 (6 with it)
    Reading.objects.filter(pk=bad.pk).update(erroneous_at=None)
    _vitals(cast.patient_a, {"body-temperature": "37.0"}, ago=timedelta(minutes=5))
    assert _news2_alert(rule).evidence["total"] == 6


def test_the_latest_reading_of_a_parameter_in_the_window_is_the_one_scored(cast, rule):
    _vitals(cast.patient_a, {"respiratory-rate": "26"}, ago=timedelta(hours=3))  # 3 points, then better
    _vitals(cast.patient_a, {"respiratory-rate": "16"}, ago=timedelta(hours=2))
    _vitals(cast.patient_a, {"spo2": "96", "heart-rate": "70"})
    assert _news2_alert(rule) is None


def test_a_late_upload_is_scored_with_the_readings_before_its_own_measuring_time(cast, rule):
    rule.params = {"min_parameters": 1}
    rule.save()
    _vitals(cast.patient_a, {"respiratory-rate": "22", "spo2": "93"}, ago=timedelta(hours=1))
    # Measured 5 hours ago, uploaded now: the readings of an hour ago were not there yet.
    late = _reading(cast.patient_a, "heart-rate", "95", ago=timedelta(hours=5))
    _reading(cast.patient_a, "body-temperature", "37.0", ago=timedelta(hours=5, minutes=1))
    evaluate([late.pk])
    assert _news2_alert(rule) is None


def test_readings_of_other_measures_do_not_start_a_score(cast, rule):
    _vitals(cast.patient_a, {**NORMAL, "respiratory-rate": "26", "heart-rate": "135"})
    Alert.objects.filter(rule=rule).delete()
    AlertFinding.objects.filter(rule=rule).delete()
    weight = Reading.objects.create(patient=cast.patient_a, measure="body-weight", value=Decimal("70"), unit="kg",
                                    effective_at=timezone.now(), source=Source.DEVICE)
    evaluate([weight.pk])
    assert _news2_alert(rule) is None


def test_per_patient_override_raises_the_yellow_total(cast, rule):
    from alerts.definitions import rule_override_set

    rule_override_set(rule=rule, patient=cast.patient_a, params={"yellow_total": 6}, by=cast.admin,
                      reason="COPD: usual NEWS2 of 5")
    _vitals(cast.patient_a, {**NORMAL, "respiratory-rate": "22", "spo2": "93", "heart-rate": "95"})
    assert _news2_alert(rule) is None


# --- bad definitions ----------------------------------------------------------------------------

@pytest.mark.parametrize(("params", "message"), [
    ({"window_hours": 0}, "window_hours must be more than 0"),
    ({"window_hours": -3}, "window_hours must be more than 0"),
    ({"yellow_total": 7, "red_total": 5}, "yellow_total must be below red_total"),
    ({"yellow_total": 5, "red_total": 5}, "yellow_total must be below red_total"),
    ({"red_total": 16}, "red_total must be between 1 and 15"),
    ({"min_parameters": 0}, "min_parameters"),
    ({"single_parameter_three": "purple"}, "single_parameter_three"),
    ({"measure": "spo2"}, "measure"),
])
def test_invalid_news2_definitions_are_refused_at_save_with_a_clear_message(cast, params, message):
    rule = Rule(program=cast.program_a, kind="news2", name="NEWS2", severity="yellow", params=params)
    with pytest.raises(ValidationError) as exc:
        rule_save(rule=rule, by=cast.admin)
    assert message in " ".join(exc.value.message_dict["params"])
    assert not Rule.objects.filter(kind="news2").exists()


def test_a_deliberately_failing_kind_is_recorded_and_the_other_rules_still_raise(cast, rule, monkeypatch):
    import types

    from alerts.models import RuleError
    from alerts.rules import KINDS

    def evaluate_reading(params, reading, ctx):
        raise KeyError("deliberately broken")

    monkeypatch.setitem(KINDS, "broken", types.SimpleNamespace(Params=news2.Params, evaluate_reading=evaluate_reading))
    broken = Rule.objects.create(program=cast.program_a, kind="broken", name="Broken", severity="red", params={})
    readings = _vitals(cast.patient_a, {**NORMAL, "respiratory-rate": "22", "spo2": "91", "heart-rate": "95"})
    assert _news2_alert(rule) is not None  # NEWS2 still raised
    assert Alert.objects.filter(rule__kind="threshold", patient=cast.patient_a).exists()  # SpO2 < 92 too
    assert RuleError.objects.filter(rule=broken).count() == len(readings)
    assert "deliberately broken" in RuleError.objects.filter(rule=broken).first().error
