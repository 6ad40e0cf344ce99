"""Conditional create (If-None-Exist, Bundle ifNoneExist) and Prefer: return=... on every create
(issue 21)."""

import json

import pytest
from django.test import Client

from monitoring.models import Reading
from questionnaires.models import Questionnaire, QuestionnaireResponse
from tests.factories import device_token_of
from tests.factories import vital_signs_observation as _obs

pytestmark = pytest.mark.django_db
FHIR = "application/fhir+json"


def _device(cast) -> Client:
    # A scale: the observations here are weights, and a device's token sends only what it measures.
    return Client(HTTP_AUTHORIZATION=f"Bearer {device_token_of(cast.patient_a, 'scale')[1]}")


def _login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _post(client: Client, path: str, body, **headers) -> "object":
    return client.post(path, json.dumps(body), content_type=FHIR, **headers)


def _qr(cast, value: str, contact: bool = False) -> dict:
    return {"resourceType": "QuestionnaireResponse", "status": "completed",
            "questionnaire": f"{cast.questionnaire.url}|{cast.questionnaire.version}",
            "subject": {"reference": f"Patient/{cast.patient_a.pk}"},
            "identifier": {"system": "urn:app", "value": value},
            "item": [{"linkId": "breathless", "answer": [{"valueCoding": {
                "system": "https://proplatform.example/fhir/CodeSystem/change", "code": "same"}}]},
                {"linkId": "swelling", "answer": [{"valueBoolean": False}]},
                {"linkId": "pillows", "answer": [{"valueInteger": 2}]},
                {"linkId": "contact", "answer": [{"valueBoolean": contact}]}]}


def _questionnaire(url: str, version: str = "1", **extra) -> dict:
    return {"resourceType": "Questionnaire", "url": url, "version": version, "status": "active",
            "item": [{"linkId": "q1", "type": "boolean", "text": "Ok?"}], **extra}


def test_an_observation_matching_if_none_exist_is_answered_200_with_the_stored_one_and_not_duplicated(cast):
    client = _device(cast)
    first = _post(client, "/fhir/Observation", _obs(cast.patient_a, identifier="w-1"))
    assert first.status_code == 201
    # another value under the same identifier: without the condition this would be a 409 conflict
    again = _post(client, "/fhir/Observation", _obs(cast.patient_a, identifier="w-1", value=90),
                  HTTP_IF_NONE_EXIST="identifier=urn:dev|w-1")
    assert again.status_code == 200, again.json()
    assert again.json()["id"] == first.json()["id"] and again["Location"].endswith(first.json()["id"])
    assert Reading.objects.count() == 1


def test_an_observation_with_no_match_is_created_and_several_matches_are_412(cast):
    client = _device(cast)
    created = _post(client, "/fhir/Observation", _obs(cast.patient_a, identifier="w-2"),
                    HTTP_IF_NONE_EXIST="identifier=urn:dev|w-2")
    assert created.status_code == 201
    # another reading (a reading's time and value are its identity, whatever the identifier)
    other = _obs(cast.patient_a, identifier="w-2", value=82.0)
    other["identifier"][0]["system"] = "urn:other"
    assert _post(client, "/fhir/Observation", other).status_code == 201
    several = _post(client, "/fhir/Observation", _obs(cast.patient_a, identifier="w-3"),
                    HTTP_IF_NONE_EXIST="identifier=w-2")
    assert several.status_code == 412
    assert several.json()["issue"][0]["expression"] == ["If-None-Exist"]
    assert Reading.objects.count() == 2


def test_an_unsupported_if_none_exist_parameter_is_refused_rather_than_ignored(cast):
    response = _post(_device(cast), "/fhir/Observation", _obs(cast.patient_a, identifier="w-4"),
                     HTTP_IF_NONE_EXIST="code=29463-7")
    assert response.status_code == 400 and response.json()["resourceType"] == "OperationOutcome"
    assert response.json()["issue"][0]["expression"] == ["If-None-Exist"]
    assert not Reading.objects.exists()


def test_bundle_entries_with_if_none_exist_return_the_stored_one_in_batch_and_transaction(cast):
    client = _device(cast)
    assert _post(client, "/fhir/Observation", _obs(cast.patient_a, identifier="e-1")).status_code == 201
    for kind in ("batch", "transaction"):
        bundle = {"resourceType": "Bundle", "type": kind, "entry": [
            {"resource": _obs(cast.patient_a, identifier="e-1", value=77),
             "request": {"method": "POST", "url": "Observation", "ifNoneExist": "identifier=urn:dev|e-1"}},
            {"resource": _obs(cast.patient_a, identifier=f"new-{kind}", value=70 + len(kind)),
             "request": {"method": "POST", "url": "Observation", "ifNoneExist": f"identifier=urn:dev|new-{kind}"}}]}
        response = _post(client, "/fhir", bundle)
        assert response.status_code == 200, response.json()
        assert [e["response"]["status"] for e in response.json()["entry"]] == ["200 OK", "201 Created"]
    assert Reading.objects.count() == 3


def test_a_transaction_whose_if_none_exist_matches_several_stores_nothing(cast):
    client = _device(cast)
    for value, system in ((80, "urn:a"), (81, "urn:b")):
        other = _obs(cast.patient_a, identifier="dup", value=value)
        other["identifier"][0]["system"] = system
        _post(client, "/fhir/Observation", other)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": _obs(cast.patient_a, identifier="t-new", value=60),
         "request": {"method": "POST", "url": "Observation"}},
        {"resource": _obs(cast.patient_a, identifier="t-x", value=61),
         "request": {"method": "POST", "url": "Observation", "ifNoneExist": "identifier=dup"}}]}
    response = _post(client, "/fhir", bundle)
    assert response.status_code == 412
    assert response.json()["issue"][0]["expression"] == ["Bundle.entry[1].request.ifNoneExist"]
    assert Reading.objects.count() == 2


def test_a_response_matching_if_none_exist_is_not_stored_again(cast):
    client = _login(cast.patient_a.user)
    first = _post(client, "/fhir/QuestionnaireResponse", _qr(cast, "r-1"))
    assert first.status_code == 201
    # other answers under the same identifier would be a 409; the condition answers the stored one
    again = _post(client, "/fhir/QuestionnaireResponse", _qr(cast, "r-1", contact=True),
                  HTTP_IF_NONE_EXIST="identifier=urn:app|r-1")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert QuestionnaireResponse.objects.count() == 1


def test_a_questionnaire_matching_url_and_version_is_not_imported_again_and_several_are_412(cast):
    client = _login(cast.admin)
    url = "https://example.org/q/c"
    assert _post(client, "/fhir/Questionnaire", _questionnaire(url)).status_code == 201
    again = _post(client, "/fhir/Questionnaire", _questionnaire(url, title="Other content"),
                  HTTP_IF_NONE_EXIST=f"url={url}&version=1")
    assert again.status_code == 200
    assert Questionnaire.objects.filter(url=url).count() == 1
    assert _post(client, "/fhir/Questionnaire", _questionnaire(url, "2")).status_code == 201
    several = _post(client, "/fhir/Questionnaire", _questionnaire(url, "3"), HTTP_IF_NONE_EXIST=f"url={url}")
    assert several.status_code == 412
    assert Questionnaire.objects.filter(url=url).count() == 2


def test_an_identical_questionnaire_reimport_answers_200_with_the_stored_version_and_no_new_row(cast):
    client = _login(cast.admin)
    body = _questionnaire("https://example.org/q/same")
    first = _post(client, "/fhir/Questionnaire", body)
    again = _post(client, "/fhir/Questionnaire", body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert Questionnaire.objects.filter(url="https://example.org/q/same").count() == 1


@pytest.mark.parametrize("kind", ["Observation", "QuestionnaireResponse", "Questionnaire"])
def test_prefer_return_minimal_answers_an_empty_body_and_the_location(cast, kind):
    client, body = {
        "Observation": (_device(cast), _obs(cast.patient_a, identifier="m-1")),
        "QuestionnaireResponse": (_login(cast.patient_a.user), _qr(cast, "m-1")),
        "Questionnaire": (_login(cast.admin), _questionnaire("https://example.org/q/m")),
    }[kind]
    response = _post(client, f"/fhir/{kind}", body, HTTP_PREFER="return=minimal")
    assert response.status_code == 201
    assert response.content == b""
    assert f"/fhir/{kind}/" in response["Location"]


@pytest.mark.parametrize("kind", ["Observation", "QuestionnaireResponse", "Questionnaire"])
def test_prefer_return_operation_outcome_answers_an_informational_outcome_and_stores_the_resource(cast, kind):
    client, body, model = {
        "Observation": (_device(cast), _obs(cast.patient_a, identifier="o-1"), Reading),
        "QuestionnaireResponse": (_login(cast.patient_a.user), _qr(cast, "o-1"), QuestionnaireResponse),
        "Questionnaire": (_login(cast.admin), _questionnaire("https://example.org/q/o"), Questionnaire),
    }[kind]
    before = model.objects.count()
    response = _post(client, f"/fhir/{kind}", body, HTTP_PREFER="return=OperationOutcome")
    assert response.status_code == 201
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "information"
    assert model.objects.count() == before + 1
