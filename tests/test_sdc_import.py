"""SDC import (issue 21): HL7's PHQ-9 example keeps its answer lists (a contained ValueSet with a
compose and no expansion) and its scoring (a calculatedExpression summing ordinal values); items
nested under a question are imported, shown and validated; an identical re-import is 200."""

import json
import re
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from interop.mapping import response_to_fhir
from questionnaires import definition as qdef
from questionnaires.forms import field_name
from questionnaires.models import Questionnaire, QuestionnaireResponse
from questionnaires.services import questionnaire_import, response_submit
from questionnaires.validation import flat_answers, response_validate
from tests.fhir_schema import fhir_problems

pytestmark = pytest.mark.django_db
FHIR = "application/fhir+json"
PHQ9 = Path(__file__).parent / "fixtures" / "sdc" / "questionnaire-sdc-profile-example-PHQ9.json"
CS = "http://hl7.org/fhir/uv/sdc/CodeSystem/CSPHQ9"
QUESTIONS = [f"H1/T1/Q{n}" for n in range(1, 10)]


def _admin(cast) -> Client:
    client = Client()
    client.force_login(cast.admin)
    return client


def test_hl7s_sdc_phq9_imports_with_its_nine_answer_lists_weights_and_scoring(cast):
    response = _admin(cast).post("/fhir/Questionnaire", PHQ9.read_text(encoding="utf-8"), content_type=FHIR)
    assert response.status_code == 201, response.json()
    stored = Questionnaire.objects.get(url="http://hl7.org/fhir/uv/sdc/Questionnaire/questionnaire-sdc-profile-example-PHQ9")
    by_id = stored.definition.by_link_id()
    for link_id in QUESTIONS:
        options = by_id[link_id].answerOption
        assert [o.code for o in options] == ["Not-at-all", "Several-days", "More than half the days",
                                             "Nearly every day"]
        assert [o.weight for o in options] == [0, 1, 2, 3]
        assert {o.valueCoding.system for o in options} == {CS}
        assert not by_id[link_id].free_text_choice
    assert stored.scoring["scales"][0]["code"]["code"] == "44261-6"
    assert stored.scoring["scales"][0]["items"] == QUESTIONS
    # the score item is computed, not asked: no warning about it, nor about its calculatedExpression
    assert [str(i) for i in stored.definition.review()] == [
        "extension http://hl7.org/fhir/StructureDefinition/rendering-styleSensitive is ignored"]


def test_a_response_to_the_sdc_phq9_is_scored_from_the_contained_value_sets_ordinal_values(cast):
    phq9 = questionnaire_import(resource=json.loads(PHQ9.read_text(encoding="utf-8")))
    cast.program_a.questionnaires.add(phq9)
    chosen = ["Several-days"] * 8 + ["Nearly every day"]  # 8 x 1 + 3
    items = [{"linkId": "H1/T1", "item": [{"linkId": q, "answer": [{"valueCoding": {"system": CS, "code": c}}]}
                                          for q, c in zip(QUESTIONS, chosen, strict=True)]}]
    response = response_submit(patient=cast.patient_a, questionnaire=phq9, items=items, author=cast.patient_a.user)
    assert response.scores[0]["value"] == 11
    assert response.scores[0]["code"]["code"] == "44261-6"


def test_a_contained_value_set_that_needs_a_terminology_server_is_not_guessed(cast):
    resource = json.loads(PHQ9.read_text(encoding="utf-8"))
    include = resource["contained"][0]["compose"]["include"][0]
    include["filter"] = [{"property": "concept", "op": "is-a", "value": "x"}]
    definition = qdef.parse(resource)
    assert definition.by_link_id()["H1/T1/Q1"].free_text_choice
    assert any("cannot be expanded" in str(i) for i in definition.review())


def test_the_same_questionnaire_imported_twice_is_200_with_the_stored_version_and_no_new_row(cast):
    client = _admin(cast)
    body = PHQ9.read_text(encoding="utf-8")
    first = client.post("/fhir/Questionnaire", body, content_type=FHIR)
    again = client.post("/fhir/Questionnaire", body, content_type=FHIR)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert Questionnaire.objects.filter(url__endswith="questionnaire-sdc-profile-example-PHQ9").count() == 1


NESTED = {
    "resourceType": "Questionnaire", "url": "https://example.org/q/nested", "version": "1", "status": "active",
    "item": [{"linkId": "pain", "type": "boolean", "text": "Har du ondt?", "required": True, "item": [
        {"linkId": "pain-where", "type": "string", "text": "Hvor gør det ondt?",
         "enableWhen": [{"question": "pain", "operator": "=", "answerBoolean": True}]}]}],
}


def test_items_nested_under_a_question_are_imported_validated_and_stored_under_the_answer(cast):
    nested = questionnaire_import(resource=NESTED)
    assert [i.linkId for i in nested.definition.items()] == ["pain", "pain-where"]
    given = [{"linkId": "pain", "answer": [{"valueBoolean": True, "item": [
        {"linkId": "pain-where", "answer": [{"valueString": "I ryggen"}]}]}]}]
    checked = response_validate(nested.definition, given)
    assert checked.ok, checked.errors
    assert checked.items == [{"linkId": "pain", "text": "Har du ondt?", "answer": [{"valueBoolean": True, "item": [
        {"linkId": "pain-where", "text": "Hvor gør det ondt?", "answer": [{"valueString": "I ryggen"}]}]}]}]
    assert flat_answers(checked.items) == {"pain": [{"valueBoolean": True}],
                                           "pain-where": [{"valueString": "I ryggen"}]}
    cast.program_a.questionnaires.add(nested)
    stored = response_submit(patient=cast.patient_a, questionnaire=nested, items=given, author=cast.patient_a.user)
    assert stored.answers_for("pain-where")[0].code == "I ryggen"
    assert fhir_problems(response_to_fhir(stored)) == []


def test_a_nested_answer_that_breaks_its_rules_is_refused_naming_the_nested_link_id(cast):
    nested = questionnaire_import(resource=NESTED)
    given = [{"linkId": "pain", "answer": [{"valueBoolean": True, "item": [
        {"linkId": "pain-where", "answer": [{"valueInteger": 3}]}]}]}]
    checked = response_validate(nested.definition, given)
    assert [e.link_id for e in checked.errors] == ["pain-where"]


def test_a_question_with_nested_items_is_rendered_with_its_follow_up(cast):
    nested = questionnaire_import(resource=NESTED)
    cast.program_a.questionnaires.add(nested)
    client = Client()
    client.force_login(cast.patient_a.user)
    html = client.get(f"/me/questionnaires/{nested.pk}/page/1/").content.decode()
    assert "Har du ondt?" in html and "Hvor gør det ondt?" in html
    assert html.index("Har du ondt?") < html.index('class="q-nested"') < html.index("Hvor gør det ondt?")


def test_items_nested_under_a_display_item_are_still_refused(cast):
    resource = {**NESTED, "item": [{"linkId": "d", "type": "display", "text": "Info",
                                    "item": [{"linkId": "x", "type": "boolean", "text": "?"}]}]}
    assert any("display item" in str(i) for i in qdef.parse(resource).review() if i.severity == "error")


def test_the_rendered_phq9_shows_nine_questions_with_their_answers_and_not_the_score_item(cast):
    phq9 = questionnaire_import(resource=json.loads(PHQ9.read_text(encoding="utf-8")))
    cast.program_a.questionnaires.add(phq9)
    client = Client()
    client.force_login(cast.patient_a.user)
    start = client.get(f"/me/questionnaires/{phq9.pk}/")
    html = client.get(start["Location"]).content.decode()
    for item in phq9.definition.item[0].item[:9]:
        assert item.text.replace("'", "&#x27;") in html
        # each question offers the four answers of the contained ValueSet
        assert len(re.findall(rf'name="{re.escape(field_name(item))}"', html)) == 4
    assert "total score" not in html and "cannot be answered here" not in html
    assert QuestionnaireResponse.objects.count() == 0 and timezone.now()


def test_a_patient_answers_a_nested_follow_up_on_the_web_form_and_it_is_stored_under_the_answer(cast):
    nested = questionnaire_import(resource=NESTED)
    cast.program_a.questionnaires.add(nested)
    client = Client()
    client.force_login(cast.patient_a.user)
    page = client.post(f"/me/questionnaires/{nested.pk}/page/1/",
                       {"q-pain": "true", "q-pain-where": "I ryggen", "action": "next"})
    assert page.status_code == 302, page.content.decode()[:2000]
    sent = client.post(page["Location"], {"identifier": ""})
    assert sent.status_code == 302
    stored = QuestionnaireResponse.objects.get(questionnaire=nested, status="completed")
    assert stored.items[0]["answer"][0]["item"][0]["answer"] == [{"valueString": "I ryggen"}]
    assert fhir_problems(response_to_fhir(stored)) == []


def test_a_response_created_over_fhir_is_read_back_at_its_location(cast):
    nested = questionnaire_import(resource=NESTED)
    cast.program_a.questionnaires.add(nested)
    client = Client()
    client.force_login(cast.patient_a.user)
    body = {"resourceType": "QuestionnaireResponse", "questionnaire": f"{nested.url}|1", "status": "completed",
            "subject": {"reference": f"Patient/{cast.patient_a.pk}"},
            "item": [{"linkId": "pain", "answer": [{"valueBoolean": True, "item": [
                {"linkId": "pain-where", "answer": [{"valueString": "I knæet"}]}]}]}]}
    created = client.post("/fhir/QuestionnaireResponse", json.dumps(body), content_type=FHIR)
    assert created.status_code == 201, created.json()
    read = client.get(created["Location"])
    assert read.status_code == 200
    assert read.json() == created.json()
