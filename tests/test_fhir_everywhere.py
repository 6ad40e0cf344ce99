"""Everything under /fhir answers FHIR (issue 21): unknown paths and interactions as
OperationOutcomes, the reads the server's own references need, and _format honoured."""

import json

import pytest
from django.test import Client
from django.utils import timezone
from fhir.resources.R4B.device import Device as FhirDevice
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse as FhirResponse

from audit.models import AuditEvent, Outcome
from monitoring.models import Reading, Source
from questionnaires.models import QuestionnaireResponse

pytestmark = pytest.mark.django_db
FHIR = "application/fhir+json"


def _login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _outcome(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith(FHIR), response["Content-Type"]
    assert OperationOutcome.model_validate(response.json()).issue[0].code == code


def _response(cast, patient) -> QuestionnaireResponse:
    now = timezone.now()
    return QuestionnaireResponse.objects.create(
        patient=patient, questionnaire=cast.questionnaire, author=patient.user, status="completed",
        authored_at=now, received_at=now, items=[{"linkId": "contact", "answer": [{"valueBoolean": False}]}])


@pytest.mark.parametrize("path", ["/fhir/Encounter/1", "/fhir/Encounter", "/fhir/nothing/here", "/fhir/CareTeam/1"])
def test_an_unknown_resource_type_is_a_404_operation_outcome_not_an_html_page(cast, path):
    _outcome(_login(cast.clinician_a).get(path), 404, "not-found")


@pytest.mark.parametrize(("method", "path"), [
    ("get", "/fhir/QuestionnaireResponse/1/_history"), ("get", "/fhir/Patient/x/$everything"),
    ("get", "/fhir/_history"), ("get", "/fhir/Observation/reading-1/_history/1"),
    ("post", "/fhir/$everything"), ("put", "/fhir/Observation/reading-1"), ("delete", "/fhir/Patient/x"),
    ("put", "/fhir/QuestionnaireResponse/1"), ("delete", "/fhir/Device/1"),
])
def test_an_unsupported_interaction_is_a_405_operation_outcome(cast, method, path):
    response = getattr(_login(cast.clinician_a), method)(path)
    _outcome(response, 405, "not-supported")
    assert "PUT" not in response["Allow"] and "DELETE" not in response["Allow"]


def test_a_response_created_over_fhir_can_be_read_at_its_location_by_its_care_team_and_audited(cast):
    response = _response(cast, cast.patient_a)
    read = _login(cast.clinician_a).get(f"/fhir/QuestionnaireResponse/{response.pk}")
    assert read.status_code == 200, read.content
    assert FhirResponse.model_validate(read.json()).id == str(response.pk)
    event = AuditEvent.objects.filter(resource=f"QuestionnaireResponse/{response.pk} (FHIR)").latest("pk")
    assert (event.patient_ref, event.outcome) == (cast.patient_a.pk, Outcome.ALLOWED)


def test_a_foreign_or_unknown_response_is_404_alike_and_both_are_audited(cast):
    foreign = _response(cast, cast.patient_b)
    client = _login(cast.clinician_a)
    for path in (f"/fhir/QuestionnaireResponse/{foreign.pk}", "/fhir/QuestionnaireResponse/999999",
                 "/fhir/QuestionnaireResponse/abc"):
        _outcome(client.get(path), 404, "not-found")
    assert AuditEvent.objects.filter(outcome=Outcome.DENIED, resource__startswith="QuestionnaireResponse/").count() == 3
    _outcome(_login(cast.patient_a.user).get(f"/fhir/QuestionnaireResponse/{foreign.pk}"), 404, "not-found")


def test_the_device_an_observation_refers_to_can_be_read_by_whoever_may_see_the_patient(cast):
    reading = Reading.objects.create(patient=cast.patient_a, device=cast.device_a, measure="spo2", value=95,
                                     unit="%", effective_at=timezone.now(), source=Source.DEVICE)
    client = _login(cast.clinician_a)
    observation = client.get(f"/fhir/Observation/reading-{reading.pk}").json()
    device = client.get(f"/fhir/{observation['device']['reference']}")
    assert device.status_code == 200, device.content
    assert FhirDevice.model_validate(device.json()).serialNumber == "OX-A"
    assert AuditEvent.objects.filter(resource=f"Device/{cast.device_a.pk} (FHIR)", patient_ref=cast.patient_a.pk,
                                     outcome=Outcome.ALLOWED).exists()
    _outcome(client.get(f"/fhir/Device/{cast.device_b.pk}"), 404, "not-found")
    _outcome(_login(cast.patient_b.user).get(f"/fhir/Device/{cast.device_a.pk}"), 404, "not-found")


@pytest.mark.parametrize("fmt", ["json", "application/fhir+json", "application/json"])
def test_format_json_is_honoured(cast, fmt):
    response = _login(cast.clinician_a).get("/fhir/metadata", {"_format": fmt})
    assert response.status_code == 200 and response.json()["resourceType"] == "CapabilityStatement"


@pytest.mark.parametrize(("params", "accept"), [
    ({"_format": "xml"}, None), ({"_format": "application/fhir+xml"}, None), ({}, "application/fhir+xml"),
    ({"_format": "xml"}, FHIR)])
def test_xml_asked_for_is_a_406_operation_outcome_not_json_with_200(cast, params, accept):
    headers = {"HTTP_ACCEPT": accept} if accept else {}
    response = _login(cast.clinician_a).get(f"/fhir/Patient/{cast.patient_a.pk}", params, **headers)
    _outcome(response, 406, "not-supported")


def test_the_capability_statement_lists_the_reads_that_exist(cast):
    statement = json.loads(_login(cast.clinician_a).get("/fhir/metadata").content)
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert {"code": "read"} in resources["QuestionnaireResponse"]["interaction"]
    assert {"code": "read"} in resources["Device"]["interaction"]
    assert "CareTeam" not in resources
