"""Valid in, valid out (issue 21): incoming resources are checked against the R4B models before
anything is stored; stored answers that were not valid FHIR are repaired by a migration."""

import importlib
import json

import pytest
from django.apps import apps as django_apps
from django.test import Client
from django.utils import timezone

from monitoring.models import Reading
from questionnaires.models import Questionnaire, QuestionnaireResponse
from tests.factories import device_token_of
from tests.factories import vital_signs_observation as _obs
from tests.fhir_schema import fhir_problems

pytestmark = pytest.mark.django_db
FHIR = "application/fhir+json"
repair_migration = importlib.import_module("questionnaires.migrations.0006_response_items_valid_fhir")


def _post(client: Client, path: str, body) -> "object":
    return client.post(path, json.dumps(body), content_type=FHIR)


def _expressions(response) -> list[str]:
    return [e for issue in response.json()["issue"] for e in issue.get("expression", [])]


def _login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _qr(cast, **overrides) -> dict:
    resource = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{cast.questionnaire.url}|{cast.questionnaire.version}",
        "status": "completed", "subject": {"reference": f"Patient/{cast.patient_a.pk}"},
        "item": [
            {"linkId": "breathless", "answer": [{"valueCoding": {
                "system": "https://proplatform.example/fhir/CodeSystem/change", "code": "same"}}]},
            {"linkId": "swelling", "answer": [{"valueBoolean": False}]},
            {"linkId": "pillows", "answer": [{"valueInteger": 2}]},
            {"linkId": "contact", "answer": [{"valueBoolean": False}]},
        ],
    }
    resource.update(overrides)
    return resource


def test_an_observation_with_an_element_fhir_does_not_define_is_refused_naming_it_and_not_stored(cast):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {device_token_of(cast.patient_a, 'scale')[1]}")
    resource = _obs(cast.patient_a, identifier="x-1", valueQuantityy={"value": 1})
    resource["valueQuantity"]["colour"] = "blue"
    response = _post(client, "/fhir/Observation", resource)
    assert response.status_code == 400, response.json()
    assert response.json()["resourceType"] == "OperationOutcome"
    assert {"Observation.valueQuantityy", "Observation.valueQuantity.colour"} <= set(_expressions(response))
    assert not Reading.objects.exists()


def test_an_observation_with_an_empty_array_is_refused_naming_it(cast):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {device_token_of(cast.patient_a, 'scale')[1]}")
    response = _post(client, "/fhir/Observation", _obs(cast.patient_a, note=[]))
    assert response.status_code == 400
    assert "Observation.note" in _expressions(response)
    assert not Reading.objects.exists()


def test_a_transaction_bundle_with_one_invalid_entry_stores_nothing_and_names_the_entry(cast):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {device_token_of(cast.patient_a, 'scale')[1]}")
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": _obs(cast.patient_a, identifier="t-1"), "request": {"method": "POST", "url": "Observation"}},
        {"resource": _obs(cast.patient_a, identifier="t-2", flavour="sour"),
         "request": {"method": "POST", "url": "Observation"}}]}
    response = _post(client, "/fhir", bundle)
    assert response.status_code == 400
    assert "Bundle.entry[1].resource.flavour" in _expressions(response)
    assert not Reading.objects.exists()


def test_a_batch_bundle_refuses_the_invalid_entry_and_stores_the_valid_one(cast):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {device_token_of(cast.patient_a, 'scale')[1]}")
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": _obs(cast.patient_a, identifier="b-1"), "request": {"method": "POST", "url": "Observation"}},
        {"resource": _obs(cast.patient_a, identifier="b-2", flavour="sour"),
         "request": {"method": "POST", "url": "Observation"}}]}
    response = _post(client, "/fhir", bundle)
    assert response.status_code == 200
    statuses = [e["response"]["status"] for e in response.json()["entry"]]
    assert statuses == ["201 Created", "400 Bad Request"]
    assert Reading.objects.count() == 1


def test_a_response_whose_answers_carry_display_element_and_empty_arrays_is_refused_and_not_stored(cast):
    broken = _qr(cast)
    broken["item"][0]["answer"][0]["valueCoding"].update(
        {"extension": [], "display_element": {"extension": [{"url": "x", "valueString": "y"}]}})
    response = _post(_login(cast.patient_a.user), "/fhir/QuestionnaireResponse", broken)
    assert response.status_code == 400, response.json()
    assert {"QuestionnaireResponse.item[0].answer[0].valueCoding.display_element",
            "QuestionnaireResponse.item[0].answer[0].valueCoding.extension"} <= set(_expressions(response))
    assert not QuestionnaireResponse.objects.exists()


def test_a_questionnaire_with_an_unknown_element_is_refused_naming_it(cast):
    body = {"resourceType": "Questionnaire", "url": "https://example.org/q/x", "version": "1", "status": "active",
            "item": [{"linkId": "q1", "type": "boolean", "text": "Ok?", "helpText": "no such element"}]}
    response = _post(_login(cast.admin), "/fhir/Questionnaire", body)
    assert response.status_code == 400
    assert "Questionnaire.item[0].helpText" in _expressions(response)
    assert not Questionnaire.objects.filter(url="https://example.org/q/x").exists()


def test_the_demo_answers_are_valid_fhir_without_parser_field_names(cast):
    from clinic.management.commands.demo import _calm_answers
    from questionnaires.library import load
    from questionnaires.services import questionnaire_import

    # lung-followup has Danish translations of its option displays (_display), which the old
    # model_dump wrote out as display_element.
    lung = questionnaire_import(resource=load("lung-followup"))
    items = _calm_answers(lung)
    assert "display_element" not in json.dumps(items) and "[]" not in json.dumps(items)
    response = QuestionnaireResponse(patient=cast.patient_a, questionnaire=lung, items=items, status="completed",
                                     authored_at=timezone.now(), received_at=timezone.now())
    from interop.mapping import response_to_fhir

    response.pk = 1
    assert fhir_problems(response_to_fhir(response)) == []


BROKEN = [{"linkId": "g", "text": "Group", "item": [{"linkId": "breathless", "answer": [{"valueCoding": {
    "system": "urn:s", "code": "same", "display": "Same", "extension": [],
    "display_element": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/translation",
                                       "extension": [{"url": "lang", "extension": [], "valueCode": "da"},
                                                     {"url": "content", "extension": [], "valueString": "Uændret"}]}]},
}}]}]}]
REPAIRED = [{"linkId": "g", "text": "Group", "item": [{"linkId": "breathless", "answer": [{"valueCoding": {
    "system": "urn:s", "code": "same", "display": "Same"}}]}]}]


def test_the_migration_repairs_stored_answers_once_and_leaves_clean_ones_alone(cast):
    now = timezone.now()
    broken = QuestionnaireResponse.objects.create(patient=cast.patient_a, questionnaire=cast.questionnaire,
                                                  items=BROKEN, status="completed", authored_at=now, received_at=now)
    clean = QuestionnaireResponse.objects.create(patient=cast.patient_b, questionnaire=cast.questionnaire,
                                                 items=REPAIRED, status="completed", authored_at=now, received_at=now)
    clean_updated = clean.updated_at
    repair_migration.repair(django_apps, None)
    broken.refresh_from_db()
    clean.refresh_from_db()
    assert broken.items == REPAIRED
    assert clean.updated_at == clean_updated  # untouched
    first_repair = broken.updated_at
    repair_migration.repair(django_apps, None)  # idempotent
    broken.refresh_from_db()
    assert broken.items == REPAIRED and broken.updated_at == first_repair


@pytest.mark.parametrize(("change", "expression"), [
    ({"status": "in-progress"}, "QuestionnaireResponse.status"),
    ({"subject": {"reference": "Group/1"}}, "QuestionnaireResponse.subject"),
    ({"questionnaire": ""}, "QuestionnaireResponse.questionnaire"),
])
def test_a_refused_response_names_the_element_at_fault(cast, change, expression):
    body = {**_qr(cast), **change}
    if body["questionnaire"] == "":
        del body["questionnaire"]
    response = _post(_login(cast.patient_a.user), "/fhir/QuestionnaireResponse", body)
    assert response.status_code == 400
    assert _expressions(response) == [expression]


@pytest.mark.parametrize(("bundle", "expression"), [
    ({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {}}]}, "Bundle.type"),
    ({"resourceType": "Bundle", "type": "batch"}, "Bundle.entry"),
])
def test_a_refused_bundle_names_the_element_at_fault(cast, bundle, expression):
    response = _post(Client(HTTP_AUTHORIZATION=f"Bearer {cast.device_token_a}"), "/fhir", bundle)
    assert response.status_code == 400
    assert _expressions(response) == [expression]


def test_a_bundle_with_an_element_fhir_does_not_define_is_refused_naming_it_and_nothing_stored(cast):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {device_token_of(cast.patient_a, 'scale')[1]}")
    bundle = {"resourceType": "Bundle", "type": "batch", "priority": "high", "entry": [
        {"resource": _obs(cast.patient_a, identifier="p-1"), "request": {"method": "POST", "url": "Observation",
                                                                        "urgent": True}}]}
    response = _post(client, "/fhir", bundle)
    assert response.status_code == 400
    assert {"Bundle.priority", "Bundle.entry[0].request.urgent"} <= set(_expressions(response))
    assert not Reading.objects.exists()
