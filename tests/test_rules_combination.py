"""Combinations across a symptom answer and a home reading ("more breathless AND SpO2 < 92 %"):
the pair fires on whichever event completes it, within the window, with grades read from the
questionnaire version answered; definitions that cannot work are refused at save time."""

import copy
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone, translation

from alerts.definitions import rule_save
from alerts.evaluation.responses import response_evaluate
from alerts.models import Alert, AlertFinding, Rule
from monitoring.models import Reading, Source
from questionnaires.library import load
from questionnaires.models import QuestionnaireResponse
from questionnaires.services import questionnaire_import
from tests.factories import evaluate

pytestmark = pytest.mark.django_db

DISPLAY = {"same": "Nej, som jeg plejer", "bit-worse": "Lidt mere", "much-worse": "Meget mere"}


@pytest.fixture
def rule(cast):
    # The cast's own SpO2 < 92 threshold rule is switched off: these tests watch the pair only.
    Rule.objects.filter(kind="threshold").update(active=False)
    return Rule.objects.create(
        program=cast.program_a, kind="combination", name="Breathless and low SpO2", severity="red",
        params={"answer": {"questionnaire": cast.questionnaire.url, "link_id": "breathless", "min_grade": 1},
                "reading": {"measure": "spo2", "comparison": "<", "value": 92}, "window_hours": 24})


def _answer(cast, code, *, ago=timedelta(minutes=10), questionnaire=None, patient=None):
    response = QuestionnaireResponse.objects.create(
        patient=patient or cast.patient_a, questionnaire=questionnaire or cast.questionnaire,
        authored_at=timezone.now() - ago,
        items=[{"linkId": "breathless", "text": "Er du mere forpustet end du plejer?",
                "answer": [{"valueCoding": {"system": "https://proplatform.example/fhir/CodeSystem/change",
                                            "code": code, "display": DISPLAY[code]}}]}],
    )
    response_evaluate(response_id=response.pk)
    return response


def _spo2(cast, value, *, ago=timedelta(minutes=5), patient=None, **extra):
    reading = Reading.objects.create(patient=patient or cast.patient_a, measure="spo2", value=Decimal(value),
                                     unit="%", effective_at=timezone.now() - ago, source=Source.DEVICE, **extra)
    evaluate([reading.pk])
    return reading


def _alerts(rule):
    return list(Alert.objects.filter(rule=rule))


def test_answer_then_low_reading_fires_on_the_reading_that_completes_the_pair(cast, rule):
    response = _answer(cast, "much-worse", ago=timedelta(hours=3))
    assert _alerts(rule) == []
    with translation.override("en"):
        reading = _spo2(cast, "90")
    [alert] = _alerts(rule)
    assert alert.severity == "red"
    assert alert.source_key == f"reading:{reading.pk}"
    assert alert.reason == ("Answered “Meget mere” to “Er du mere forpustet end du plejer?” and Oxygen "
                            "saturation (SpO2) was 90 % (limit < 92 %) within 24 hours.")
    ev = alert.evidence
    assert (ev["response_id"], ev["reading_id"], ev["completed_by"]) == (response.pk, reading.pk, "reading")
    assert (ev["code"], ev["grade"], ev["value"], ev["limit"]) == ("much-worse", "2", "90", "92")


def test_low_reading_then_answer_fires_on_the_answer_that_completes_the_pair(cast, rule):
    reading = _spo2(cast, "89", ago=timedelta(hours=5))
    assert _alerts(rule) == []
    response = _answer(cast, "bit-worse")  # grade 1: exactly at the minimum grade
    [alert] = _alerts(rule)
    assert alert.source_key == f"response:{response.pk}"
    assert alert.evidence["reading_id"] == reading.pk and alert.evidence["completed_by"] == "response"


def test_both_halves_arriving_again_add_evidence_to_the_one_open_alert(cast, rule):
    _answer(cast, "much-worse", ago=timedelta(hours=3))
    _spo2(cast, "90", ago=timedelta(hours=2))
    _spo2(cast, "88")
    assert len(_alerts(rule)) == 1
    assert AlertFinding.objects.filter(rule=rule).count() == 2


def test_a_reading_exactly_at_the_limit_does_not_complete_the_pair(cast, rule):
    _answer(cast, "much-worse", ago=timedelta(hours=3))
    _spo2(cast, "92")
    assert _alerts(rule) == []


def test_an_answer_below_the_minimum_grade_does_not_complete_the_pair(cast, rule):
    _spo2(cast, "88", ago=timedelta(hours=1))
    _answer(cast, "same")
    assert _alerts(rule) == []


def test_halves_further_apart_than_the_window_do_not_pair(cast, rule):
    _answer(cast, "much-worse", ago=timedelta(hours=30))
    _spo2(cast, "88")
    assert _alerts(rule) == []


def test_a_later_answer_of_as_usual_means_the_patient_is_no_longer_breathless(cast, rule):
    _answer(cast, "much-worse", ago=timedelta(hours=6))
    _answer(cast, "same", ago=timedelta(hours=2))
    _spo2(cast, "88")
    assert _alerts(rule) == []


def test_an_erroneous_low_reading_does_not_complete_the_pair_for_a_later_answer(cast, rule):
    _spo2(cast, "85", ago=timedelta(hours=2), erroneous_at=timezone.now(), erroneous_reason="finger cold")
    _answer(cast, "much-worse")
    assert _alerts(rule) == []


def test_a_late_uploaded_reading_measured_before_the_answer_still_pairs(cast, rule):
    # Answered 2 hours ago; the oximeter measured 3 hours ago but uploads only now.
    _answer(cast, "much-worse", ago=timedelta(hours=2))
    _spo2(cast, "89", ago=timedelta(hours=3))
    assert len(_alerts(rule)) == 1


def test_codes_instead_of_a_grade_pick_the_answers_that_count(cast, rule):
    rule.params = {**rule.params, "answer": {"questionnaire": cast.questionnaire.url, "link_id": "breathless",
                                             "codes": ["much-worse"]}}
    rule.save()
    _answer(cast, "bit-worse", ago=timedelta(hours=1))
    _spo2(cast, "88")
    assert _alerts(rule) == []
    _answer(cast, "much-worse")
    assert len(_alerts(rule)) == 1


def test_grades_come_from_the_questionnaire_version_that_was_answered(cast, rule):
    # Version 2 grades "bit-worse" 0: an answer to version 2 no longer meets "at least 1",
    # while the same code answered on version 1 still does.
    resource = copy.deepcopy(load("hf-daily"))
    resource["version"] = "2"
    item = next(i for i in resource["item"] if i["linkId"] == "breathless")
    for option in item["answerOption"]:
        if option["valueCoding"]["code"] == "bit-worse":
            option["extension"] = [{"url": "http://hl7.org/fhir/StructureDefinition/ordinalValue",
                                    "valueDecimal": 0}]
    version2 = questionnaire_import(resource=resource)
    _spo2(cast, "88", ago=timedelta(hours=1))
    _answer(cast, "bit-worse", questionnaire=version2)
    assert _alerts(rule) == []
    _answer(cast, "bit-worse", ago=timedelta(minutes=5))
    assert len(_alerts(rule)) == 1


def test_another_patients_reading_does_not_complete_the_pair(cast, rule):
    Rule.objects.filter(pk=rule.pk).update(program=cast.program_b)
    rule.refresh_from_db()
    _answer(cast, "much-worse", ago=timedelta(hours=1), patient=cast.patient_b)
    _spo2(cast, "85")  # patient A
    assert _alerts(rule) == []
    _spo2(cast, "85", patient=cast.patient_b)
    assert [a.patient_id for a in _alerts(rule)] == [cast.patient_b.pk]


@pytest.mark.parametrize(("change", "message"), [
    ({"window_hours": 0}, "window_hours must be more than 0"),
    ({"window_hours": -1}, "window_hours must be more than 0"),
    ({"reading": {"measure": "lung-capacity", "comparison": "<", "value": 92}}, "unknown measure 'lung-capacity'"),
    ({"reading": {"measure": "spo2", "comparison": "<", "value": 150}}, "value must be between 50 and 100"),
    ({"reading": {"measure": "spo2", "comparison": "=<", "value": 92}}, "comparison"),
    ({"reading": {"measure": "spo2", "component": "value2", "comparison": "<", "value": 92}},
     "spo2 has no second component"),
    ({"answer": {"questionnaire": "q", "link_id": "breathless"}}, "give either min_grade or a non-empty list"),
    ({"answer": {"questionnaire": "q", "link_id": "breathless", "min_grade": 1, "codes": ["x"]}},
     "give either min_grade or a non-empty list"),
    ({"answer": {"questionnaire": "q", "link_id": "breathless", "codes": []}}, "give either min_grade"),
])
def test_invalid_combination_definitions_are_refused_at_save_with_a_clear_message(cast, rule, change, message):
    bad = Rule(program=cast.program_a, kind="combination", name="Bad", severity="red",
               params={**rule.params, **change})
    with pytest.raises(ValidationError) as exc:
        rule_save(rule=bad, by=cast.admin)
    assert message in " ".join(exc.value.message_dict["params"])
    assert Rule.objects.filter(kind="combination").count() == 1
