import json

import pytest
from django.test import Client
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.questionnaire import Questionnaire as FhirQuestionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse as FhirResponse

from audit.models import AuditEvent, Outcome
from questionnaires.models import Questionnaire, QuestionnaireResponse

pytestmark = pytest.mark.django_db

FHIR = "application/fhir+json"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _new_questionnaire(url: str = "https://example.org/q/new", **item_extra) -> dict:
    return {"resourceType": "Questionnaire", "url": url, "version": "1", "status": "active", "title": "New",
            "item": [{"linkId": "q1", "type": "boolean", "text": "Ok?", **item_extra}]}


def test_questionnaire_search_returns_a_valid_searchset_bundle(cast):
    response = _client(cast.clinician_a).get("/fhir/Questionnaire")
    assert response.status_code == 200
    assert response["Content-Type"].startswith(FHIR)
    bundle = Bundle.model_validate(response.json())
    assert bundle.total == 1
    FhirQuestionnaire.model_validate(response.json()["entry"][0]["resource"])


def test_questionnaire_search_filters_by_canonical_url(cast):
    client = _client(cast.clinician_a)
    assert client.get("/fhir/Questionnaire", {"url": cast.questionnaire.url}).json()["total"] == 1
    assert client.get("/fhir/Questionnaire", {"url": "https://nowhere.example/q"}).json()["total"] == 0


def test_questionnaire_read_returns_the_stored_version_and_unknown_id_is_an_operation_outcome(cast):
    client = _client(cast.patient_a.user)
    response = client.get(f"/fhir/Questionnaire/{cast.questionnaire.pk}")
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["version"], body["url"]) == (str(cast.questionnaire.pk), "1", cast.questionnaire.url)
    for missing in ("999999", "not-a-number"):
        response = client.get(f"/fhir/Questionnaire/{missing}")
        assert response.status_code == 404
        assert OperationOutcome.model_validate(response.json()).issue[0].code == "not-found"


def test_questionnaire_endpoints_require_a_login():
    response = Client().get("/fhir/Questionnaire")
    assert response.status_code in (401, 403)
    assert response.json()["resourceType"] == "OperationOutcome"


def test_admin_imports_a_questionnaire_with_fhir_json_and_gets_its_location(cast):
    response = _client(cast.admin).post("/fhir/Questionnaire", json.dumps(_new_questionnaire()), content_type=FHIR)
    assert response.status_code == 201, response.json()
    stored = Questionnaire.objects.get(url="https://example.org/q/new")
    assert response["Location"].endswith(f"/fhir/Questionnaire/{stored.pk}")


def test_only_administrators_import_questionnaires(cast):
    for user in (cast.clinician_a, cast.patient_a.user, cast.quality):
        response = _client(user).post("/fhir/Questionnaire", json.dumps(_new_questionnaire()), content_type=FHIR)
        assert response.status_code == 403
    assert not Questionnaire.objects.filter(url="https://example.org/q/new").exists()


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("{not json", "JSON"),
        (json.dumps({"resourceType": "Patient"}), "Questionnaire"),
        (json.dumps(_new_questionnaire(type="attachment")), "q1"),
        (json.dumps({**_new_questionnaire(), "status": "published"}), "status"),
    ],
    ids=["malformed-json", "wrong-resource-type", "unsupported-item-type", "invalid-status"],
)
def test_bad_questionnaire_imports_answer_an_operation_outcome_and_store_nothing(cast, body, needle):
    before = Questionnaire.objects.count()
    response = _client(cast.admin).post("/fhir/Questionnaire", body, content_type=FHIR)
    assert response.status_code == 400
    outcome = OperationOutcome.model_validate(response.json())
    assert any(needle.lower() in (issue.diagnostics or "").lower() for issue in outcome.issue), response.json()
    assert Questionnaire.objects.count() == before


def _answer(cast, patient):
    return QuestionnaireResponse.objects.create(
        patient=patient, questionnaire=cast.questionnaire, author=patient.user,
        items=[{"linkId": "contact", "text": "Kontakt?", "answer": [{"valueBoolean": False}]}])


def test_response_search_is_scoped_to_the_care_team_and_audited(cast):
    _answer(cast, cast.patient_a)
    response = _client(cast.clinician_a).get("/fhir/QuestionnaireResponse", {"patient": str(cast.patient_a.pk)})
    assert response.status_code == 200
    bundle = response.json()
    assert bundle["total"] == 1
    FhirResponse.model_validate(bundle["entry"][0]["resource"])
    assert bundle["entry"][0]["resource"]["subject"] == {"reference": f"Patient/{cast.patient_a.pk}"}
    assert AuditEvent.objects.filter(user=cast.clinician_a, action="search", outcome=Outcome.ALLOWED,
                                     patient_ref=cast.patient_a.pk).exists()

    foreign = _client(cast.clinician_b).get("/fhir/QuestionnaireResponse", {"patient": str(cast.patient_a.pk)})
    assert foreign.status_code == 404
    assert foreign.json()["resourceType"] == "OperationOutcome"
    assert AuditEvent.objects.filter(user=cast.clinician_b, outcome=Outcome.DENIED).exists()


def test_patient_searches_own_responses_but_not_another_patients(cast):
    _answer(cast, cast.patient_a)
    client = _client(cast.patient_a.user)
    assert client.get("/fhir/QuestionnaireResponse", {"patient": f"Patient/{cast.patient_a.pk}"}).json()["total"] == 1
    assert client.get("/fhir/QuestionnaireResponse", {"patient": str(cast.patient_b.pk)}).status_code == 404


def test_response_search_without_a_patient_is_a_clear_error(cast):
    response = _client(cast.clinician_a).get("/fhir/QuestionnaireResponse")
    assert response.status_code == 400
    assert "patient" in response.json()["issue"][0]["diagnostics"]
