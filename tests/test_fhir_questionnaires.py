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
        (json.dumps(_new_questionnaire(type="attachment", required=True)), "q1"),
        (json.dumps({**_new_questionnaire(), "status": "published"}), "status"),
    ],
    ids=["malformed-json", "wrong-resource-type", "required-item-we-cannot-take", "invalid-status"],
)
def test_bad_questionnaire_imports_answer_an_operation_outcome_and_store_nothing(cast, body, needle):
    before = Questionnaire.objects.count()
    response = _client(cast.admin).post("/fhir/Questionnaire", body, content_type=FHIR)
    assert response.status_code == 400
    outcome = OperationOutcome.model_validate(response.json())
    assert any(needle.lower() in (issue.diagnostics or "").lower() for issue in outcome.issue), response.json()
    assert Questionnaire.objects.count() == before


def test_an_import_with_warnings_is_stored_and_its_warnings_name_the_link_ids(cast):
    body = json.dumps(_new_questionnaire(type="attachment"))
    client = _client(cast.admin)
    strict = client.post("/fhir/Questionnaire", body, content_type=FHIR, HTTP_PREFER="handling=strict")
    assert strict.status_code == 400
    assert "q1" in strict.json()["issue"][0]["diagnostics"]
    assert not Questionnaire.objects.filter(url="https://example.org/q/new").exists()

    lenient = client.post("/fhir/Questionnaire", body, content_type=FHIR, HTTP_PREFER="return=OperationOutcome")
    assert lenient.status_code == 201
    outcome = OperationOutcome.model_validate(lenient.json())
    assert outcome.issue[0].severity == "warning" and "q1" in outcome.issue[0].diagnostics
    assert Questionnaire.objects.filter(url="https://example.org/q/new").exists()


@pytest.mark.parametrize("name", ["questionnaire-sdc-test-all-data-types", "questionnaire-sdc-test-enablewhen",
                                  "questionnaire-sdc-test-required-field"])
def test_the_official_sdc_examples_import_through_the_fhir_api(cast, name):
    from tests.questionnaire_samples import EXAMPLES

    path = EXAMPLES / f"{name}.json"
    response = _client(cast.admin).post("/fhir/Questionnaire", path.read_text(encoding="utf-8"),
                                        content_type=FHIR)
    assert response.status_code == 201, response.json()
    FhirQuestionnaire.model_validate(response.json())


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


def _qr(cast, patient, **overrides) -> dict:
    resource = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{cast.questionnaire.url}|{cast.questionnaire.version}",
        "status": "completed",
        "subject": {"reference": f"Patient/{patient.pk}"},
        "identifier": {"system": "urn:app", "value": "resp-1"},
        "item": [
            {"linkId": "breathless", "answer": [{"valueCoding": {
                "system": "https://proplatform.example/fhir/CodeSystem/change", "code": "same"}}]},
            {"linkId": "swelling", "answer": [{"valueBoolean": False}]},
            {"linkId": "pillows", "answer": [{"valueInteger": 2}]},
            {"linkId": "contact", "answer": [{"valueBoolean": True}]},
        ],
    }
    resource.update(overrides)
    return resource


def _post(client: Client, body) -> "object":
    return client.post("/fhir/QuestionnaireResponse", json.dumps(body) if not isinstance(body, str) else body,
                       content_type=FHIR)


def test_patient_submits_a_fhir_response_which_is_stored_once_and_raises_the_contact_alert(
        cast, django_capture_on_commit_callbacks):
    from alerts.models import Alert

    client = _client(cast.patient_a.user)
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, _qr(cast, cast.patient_a))
    assert response.status_code == 201, response.json()
    FhirResponse.model_validate(response.json())
    assert response["Location"].endswith(f"/fhir/QuestionnaireResponse/{response.json()['id']}")
    assert Alert.objects.filter(patient=cast.patient_a, severity="yellow").count() == 1
    again = _post(client, _qr(cast, cast.patient_a))
    assert again.status_code == 200 and again.json()["id"] == response.json()["id"]
    assert QuestionnaireResponse.objects.filter(patient=cast.patient_a).count() == 1


@pytest.mark.parametrize(
    ("change", "link_id"),
    [
        ({"item": [{"linkId": "nope", "answer": [{"valueBoolean": True}]}]}, "nope"),
        ({"item": [{"linkId": "pillows", "answer": [{"valueString": "two"}]}]}, "pillows"),
        ({"item": [{"linkId": "swelling", "answer": [{"valueBoolean": False}]}]}, "breathless"),
    ],
    ids=["unknown-linkid", "wrong-type", "missing-required"],
)
def test_invalid_fhir_responses_name_the_link_id_and_store_nothing(cast, change, link_id):
    response = _post(_client(cast.patient_a.user), _qr(cast, cast.patient_a, **change))
    assert response.status_code == 400
    outcome = OperationOutcome.model_validate(response.json())
    assert any(link_id in (issue.diagnostics or "") + " ".join(issue.expression or []) for issue in outcome.issue)
    assert not QuestionnaireResponse.objects.exists()


@pytest.mark.parametrize(
    ("body", "status"),
    [("{broken", 400), ("[]", 400)],
    ids=["malformed-json", "not-an-object"],
)
def test_malformed_fhir_responses_are_operation_outcomes(cast, body, status):
    response = _post(_client(cast.patient_a.user), body)
    assert response.status_code == status
    assert response.json()["resourceType"] == "OperationOutcome"
    assert not QuestionnaireResponse.objects.exists()


def test_fhir_response_for_another_patient_or_unassigned_questionnaire_is_404(cast):
    client = _client(cast.patient_a.user)
    assert _post(client, _qr(cast, cast.patient_b)).status_code == 404
    unassigned = _qr(cast, cast.patient_a, questionnaire="https://example.org/q/other|1")
    assert _post(client, unassigned).status_code == 404
    assert not QuestionnaireResponse.objects.exists()


def test_drafts_and_clinicians_cannot_submit_fhir_responses(cast):
    assert _post(_client(cast.patient_a.user), _qr(cast, cast.patient_a, status="in-progress")).status_code == 400
    assert _post(_client(cast.clinician_a), _qr(cast, cast.patient_a)).status_code == 403
    assert not QuestionnaireResponse.objects.exists()


def test_an_oversize_fhir_response_is_refused_before_parsing(cast):
    big = _qr(cast, cast.patient_a, item=[{"linkId": "x" * 1000, "answer": [{"valueString": "y" * 5000}]}] * 200)
    response = _post(_client(cast.patient_a.user), big)
    assert response.status_code == 413
    assert response.json()["issue"][0]["code"] == "too-costly"
    assert not QuestionnaireResponse.objects.exists()


def test_scores_are_served_as_survey_observations_derived_from_their_response(cast):
    from fhir.resources.R4B.observation import Observation

    response = QuestionnaireResponse.objects.create(
        patient=cast.patient_a, questionnaire=cast.questionnaire, author=cast.patient_a.user, items=[],
        scores=[{"code": {"system": "http://loinc.org", "code": "44261-6", "display": "PHQ-9 total"}, "value": 12,
                 "band": {"code": "moderate", "display_da": "moderat", "display_en": "Moderate"}},
                {"code": {"system": "http://loinc.org", "code": "70274-6", "display": "GAD-7 total"}, "value": None,
                 "reason_no_score": "2 items missing"}])
    bundle = _client(cast.clinician_a).get("/fhir/Observation", {"patient": str(cast.patient_a.pk)}).json()
    assert bundle["total"] == 2
    first, second = (Observation.model_validate(e["resource"]) for e in bundle["entry"])
    assert first.code.coding[0].code == "44261-6" and first.valueQuantity.value == 12
    assert first.derivedFrom[0].reference == f"QuestionnaireResponse/{response.pk}"
    assert first.category[0].coding[0].code == "survey"
    assert second.valueQuantity is None and second.dataAbsentReason.text == "2 items missing"
    foreign = _client(cast.clinician_b).get("/fhir/Observation", {"patient": str(cast.patient_a.pk)})
    assert foreign.status_code == 404 and foreign.json()["resourceType"] == "OperationOutcome"
    assert _client(cast.clinician_a).get("/fhir/Observation").status_code == 400
