"""The questionnaire import report in Danish (issue 24): every problem the review knows, per
linkId as the API gives it, is said in Danish on the editor's page; none falls through in English."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import translation

from editor.import_report import message_in_words, report_lines
from questionnaires.services import questionnaire_review

pytestmark = pytest.mark.django_db

SEV = "http://proplatform.dk/fhir/StructureDefinition/answer-severity"
ITEM_CONTROL = "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl"


def _q(*items, **extra):
    return {"resourceType": "Questionnaire", "url": "https://example.org/Q/r", "status": "active",
            "item": list(items), **extra}


# One questionnaire per problem kind of questionnaires.definition._review_item and the parser.
BAD = [
    _q({"linkId": "a", "type": "boolean", "text": "A"}, {"linkId": "a", "type": "boolean", "text": "B"}),
    _q({"linkId": "a", "type": "boolean"}, extension=[{"url": "https://example.org/x", "valueString": "y"}]),
    _q({"linkId": "att", "type": "attachment", "required": True}),
    _q({"linkId": "att", "type": "attachment"}),
    _q({"linkId": "d", "type": "display", "text": "x", "item": [{"linkId": "e", "type": "boolean"}]}),
    _q({"linkId": "g", "type": "group", "repeats": True, "item": [{"linkId": "e", "type": "boolean"}]}),
    _q({"linkId": "s", "type": "string", "repeats": True}),
    _q({"linkId": "c", "type": "choice", "answerOption": [{"valueCoding": {"code": "x"}},
                                                          {"valueCoding": {"code": "x"}}]}),
    _q({"linkId": "c", "type": "choice", "answerValueSet": "http://loinc.org/vs/LL1"}),
    _q({"linkId": "c", "type": "choice"}),
    _q({"linkId": "s", "type": "string", "answerOption": [{"valueString": "x"}]}),
    _q({"linkId": "s", "type": "string", "extension": [{"url": "https://example.org/odd", "valueString": "x"}]}),
    _q({"linkId": "c", "type": "choice", "answerOption": [
        {"valueCoding": {"code": "x"}, "extension": [{"url": "https://example.org/odd", "valueString": "x"}]}]}),
    _q({"linkId": "b", "type": "boolean", "extension": [{"url": SEV, "valueCode": "purple"}]}),
    _q({"linkId": "c", "type": "choice", "answerOption": [
        {"valueCoding": {"code": "x"}, "extension": [{"url": SEV, "valueCode": "orange"}]}]}),
    _q({"linkId": "s", "type": "string", "extension": [{"url": SEV, "valueCode": "red"}]}),
    _q({"linkId": "s", "type": "string", "extension": [{"url": ITEM_CONTROL, "valueCodeableConcept": {
        "coding": [{"system": "http://hl7.org/fhir/questionnaire-item-control", "code": "autocomplete"}]}}]}),
    _q({"linkId": "n", "type": "integer", "extension": [{"url": ITEM_CONTROL, "valueCodeableConcept": {
        "coding": [{"system": "http://hl7.org/fhir/questionnaire-item-control", "code": "slider"}]}}]}),
    _q({"linkId": "s", "type": "string", "readOnly": True, "required": True}),
    _q({"linkId": "s", "type": "string", "enableWhen": [{"question": "nope", "operator": "=", "answerBoolean": True}]}),
    _q({"linkId": "d", "type": "display", "text": "x"},
       {"linkId": "s", "type": "string", "enableWhen": [{"question": "d", "operator": "=", "answerBoolean": True}]}),
    _q({"linkId": "b", "type": "boolean"},
       {"linkId": "s", "type": "string", "enableWhen": [{"question": "b", "operator": "exists", "answerString": "x"}]}),
    _q({"linkId": "b", "type": "boolean"}, {"linkId": "s", "type": "string", "enableWhen": [
        {"question": "b", "operator": "=", "answerBoolean": True},
        {"question": "b", "operator": "=", "answerBoolean": False}]}),
    {"resourceType": "Questionnaire", "status": "active", "item": [{"linkId": "a", "type": "boolean"}]},
    {"resourceType": "Questionnaire", "url": "https://example.org/Q/r", "item": []},
    {"resourceType": "Questionnaire", "url": "https://example.org/Q/r", "status": "finished", "item": []},
]


def test_every_problem_the_review_finds_is_said_in_danish_and_none_falls_through():
    seen = 0
    with translation.override("da"):
        for resource in BAD:
            issues = questionnaire_review(resource=resource)
            assert issues, resource
            for line in report_lines(issues):
                seen += 1
                assert not line.message.startswith("Ikke oversat"), line.message
    assert seen >= len(BAD)


def test_the_words_keep_what_the_english_named():
    with translation.override("da"):
        assert message_in_words("enableWhen refers to unknown item 'nope'") == (
            "Betingelsen (enableWhen) henviser til det ukendte spørgsmål “nope”.")
        assert message_in_words("item type 'attachment' cannot be answered here; it is shown as a note") == (
            "Spørgsmål af typen “attachment” kan ikke besvares her; det vises som en note.")
        assert message_in_words("something new") == "Ikke oversat: something new"
    with translation.override("en"):
        assert message_in_words("linkId is used twice") == "This linkId is used twice."


def test_the_editor_shows_the_report_per_link_id_in_danish(client, cast):
    client.force_login(cast.admin)
    resource = _q({"linkId": "sig", "type": "boolean", "text": "Åndenød?"},
                  {"linkId": "sig", "type": "boolean", "text": "Hoste?"},
                  {"linkId": "foto", "type": "attachment", "text": "Billede"})
    page = client.post(reverse("editor-questionnaire-upload", args=[cast.program_a.pk]),
                       {"action": "check", "file": SimpleUploadedFile("q.json", json.dumps(resource).encode())},
                       HTTP_ACCEPT_LANGUAGE="da")
    body = page.content.decode()
    assert "Dette linkId bruges to gange." in body
    assert "Spørgsmål af typen “attachment” kan ikke besvares her; det vises som en note." in body
    assert "is used twice" not in body and "cannot be answered here" not in body
