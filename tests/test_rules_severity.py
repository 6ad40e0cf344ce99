"""Rule kind ``answer-severity``: each answer option may carry a colour in the questionnaire
definition (AmbuFlex); a response takes the worst colour of its answers, and "Do you want us to
contact you? yes" is always at least yellow."""

import copy
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone, translation

from alerts.definitions import rule_save
from alerts.evaluation.responses import response_evaluate
from alerts.models import Alert, AlertFinding, Rule
from questionnaires.definition import EXT_ANSWER_SEVERITY
from questionnaires.library import load
from questionnaires.services import (
    QuestionnaireImportError,
    questionnaire_export,
    questionnaire_import,
    questionnaire_revise,
    response_submit,
)
from tests.factories import response_items

pytestmark = pytest.mark.django_db

LUNG = "https://proplatform.example/fhir/Questionnaire/lung-followup"


@pytest.fixture
def lung(cast):
    Rule.objects.update(active=False)  # the cast's own rules would add findings of their own
    rule_save(rule=Rule(program=cast.program_a, kind="answer-severity", name="Answer colours", severity="yellow",
                        params={"questionnaire": LUNG}), by=cast.admin)
    return questionnaire_import(resource=load("lung-followup"))


def _answer(cast, questionnaire, minutes_ago=5, **answers):
    response = response_submit(patient=cast.patient_a, questionnaire=questionnaire,
                               items=response_items(questionnaire, answers), author=cast.patient_a.user,
                               authored_at=timezone.now() - timedelta(minutes=minutes_ago))
    assert response_evaluate(response_id=response.pk) == 1
    return response


def _finding(response):
    # This kind's finding; the instrument's safety net (test_rules_safety.py) may add its own.
    return AlertFinding.objects.filter(source_key=f"response:{response.pk}", rule__kind="answer-severity").first()


def test_a_response_with_no_coloured_answer_raises_nothing(cast, lung):
    assert _finding(_answer(cast, lung)) is None
    assert not Alert.objects.exists()


def test_a_yellow_answer_makes_the_response_yellow_and_the_reason_quotes_it(cast, lung):
    response = _answer(cast, lung, pain="bit-worse")
    finding = _finding(response)
    assert finding.severity == "yellow"
    # Danish by default: the question and the answer as the patient saw them.
    assert "“Har du flere smerter end du plejer?”: Lidt mere" in finding.reason
    assert finding.evidence["answers"] == [{"link_id": "pain", "question": "Har du flere smerter end du plejer?",
                                            "answer": "Lidt mere", "severity": "yellow"}]


def test_the_worst_colour_wins_and_the_reason_lists_the_red_answers_first(cast, lung):
    with translation.override("en"):
        response = _answer(cast, lung, pain="much-worse", fatigue="much-worse", cough="bit-worse",
                           **{"face-neck-swelling": "LA33-6"})
    finding = _finding(response)
    assert finding.severity == "red"
    assert finding.reason == (
        "Red answers: “Do you have more pain than usual?”: Much more; "
        "“Is your face or neck swollen?”: Yes. "
        "Also yellow: “Are you more tired than usual?”: Much more; "
        "“Have you been coughing more than usual?”: A bit more.")
    assert Alert.objects.get().severity == "red"


def test_yes_to_a_red_boolean_item_is_red_and_no_is_nothing(cast, lung):
    assert _finding(_answer(cast, lung, minutes_ago=10, haemoptysis=False)) is None
    assert _finding(_answer(cast, lung, minutes_ago=5, haemoptysis=True)).severity == "red"


def test_asking_to_be_contacted_is_always_at_least_yellow(cast, lung):
    finding = _finding(_answer(cast, lung, contact=True))
    assert finding.severity == "yellow"
    assert "Vil du gerne kontaktes af os?" in finding.reason


def test_asking_to_be_contacted_does_not_lower_a_red_response(cast, lung):
    assert _finding(_answer(cast, lung, contact=True, haemoptysis=True)).severity == "red"


def test_a_rule_for_red_only_ignores_yellow_responses(cast, lung):
    Rule.objects.filter(kind="answer-severity").update(params={"questionnaire": LUNG, "at_least": "red"})
    asked = _answer(cast, lung, minutes_ago=10, contact=True, pain="bit-worse")
    assert _finding(asked) is None
    # The contact request still reaches a person: through the instrument's safety net.
    assert AlertFinding.objects.get(source_key=f"response:{asked.pk}", rule__kind="safety").severity == "yellow"
    assert _finding(_answer(cast, lung, minutes_ago=5, pain="much-worse")).severity == "red"


def test_a_rule_for_another_questionnaire_ignores_this_one(cast, lung):
    Rule.objects.filter(kind="answer-severity").update(
        params={"questionnaire": "https://proplatform.example/fhir/Questionnaire/hf-daily"})
    assert _finding(_answer(cast, lung, pain="much-worse")) is None


def test_a_rule_without_a_questionnaire_judges_every_questionnaire(cast, lung):
    Rule.objects.filter(kind="answer-severity").update(params={})
    hf = cast.questionnaire
    response = response_submit(patient=cast.patient_a, questionnaire=hf, author=cast.patient_a.user,
                               items=response_items(hf, {"breathless": "much-worse"}))
    response_evaluate(response_id=response.pk)
    assert _finding(response).severity == "red"


def test_each_response_is_judged_by_the_colours_of_the_version_it_answered(cast, lung):
    resource = copy.deepcopy(lung.resource)
    for item in resource["item"][0]["item"]:
        if item["linkId"] == "pain":
            for option in item["answerOption"]:
                if option["valueCoding"]["code"] == "bit-worse":
                    option["extension"] = [e for e in option["extension"] if e["url"] != EXT_ANSWER_SEVERITY]
                    option["extension"].append({"url": EXT_ANSWER_SEVERITY, "valueCode": "red"})
    v2 = questionnaire_revise(questionnaire=lung, resource=resource)
    assert v2.version == "2"
    old = _answer(cast, lung, minutes_ago=10, pain="bit-worse")
    new = _answer(cast, v2, minutes_ago=5, pain="bit-worse")
    assert (_finding(old).severity, _finding(new).severity) == ("yellow", "red")
    assert _finding(new).evidence["version"] == "2"


def test_answer_colours_survive_export_and_import(cast, lung):
    exported = questionnaire_export(questionnaire=lung)
    exported["url"] = "https://other.example/fhir/Questionnaire/lung"
    imported = questionnaire_import(resource=exported)
    colours = {(i.linkId, o.code): o.severity for i in lung.definition.items() for o in i.answerOption}
    again = {(i.linkId, o.code): o.severity for i in imported.definition.items() for o in i.answerOption}
    assert colours == again
    assert colours[("pain", "much-worse")] == "red" and colours[("pain", "same")] is None
    assert imported.definition.by_link_id()["haemoptysis"].severity == "red"


def test_a_colour_other_than_yellow_or_red_is_refused_on_import(cast):
    resource = load("lung-followup")
    resource["url"] = "https://other.example/fhir/Questionnaire/orange"
    pain = next(i for i in resource["item"][0]["item"] if i["linkId"] == "pain")
    pain["answerOption"][1]["extension"].append({"url": EXT_ANSWER_SEVERITY, "valueCode": "orange"})
    with pytest.raises(QuestionnaireImportError, match="answer-severity on answer option 'bit-worse' must be"):
        questionnaire_import(resource=resource)


def test_a_colour_on_a_choice_item_itself_is_reported_as_ignored(cast):
    resource = load("lung-followup")
    pain = next(i for i in resource["item"][0]["item"] if i["linkId"] == "pain")
    pain.setdefault("extension", []).append({"url": EXT_ANSWER_SEVERITY, "valueCode": "red"})
    from questionnaires.services import questionnaire_review

    assert [str(i) for i in questionnaire_review(resource=resource) if i.link_id == "pain"] == [
        "item 'pain': answer-severity on a non-boolean item is ignored; put it on its answer options"]


@pytest.mark.parametrize(("params", "message"), [
    ({"at_least": "green"}, "at_least"),
    ({"questionnaire": ""}, "questionnaire"),
    ({"colour": "red"}, "colour"),
])
def test_an_invalid_answer_severity_rule_is_refused(cast, params, message):
    with pytest.raises(ValidationError, match=message):
        rule_save(rule=Rule(program=cast.program_a, kind="answer-severity", name="bad", severity="red",
                            params=params), by=cast.admin)
    assert not Rule.objects.filter(name="bad").exists()
