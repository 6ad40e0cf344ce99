"""The FHIR R4 endpoint: a public CapabilityStatement, Patient read, errors as OperationOutcome,
all validated with the fhir.resources models."""

import json
import re
import uuid

import pytest
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient as FhirPatient

from accounts.models import ApiToken
from interop.mapping import CPR_SYSTEM, patient_to_fhir

pytestmark = pytest.mark.django_db

FHIR_JSON = "application/fhir+json"


def _outcome(response, status: int, code: str) -> OperationOutcome:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith(FHIR_JSON)
    outcome = OperationOutcome.model_validate(response.json())
    assert outcome.issue[0].severity == "error"
    assert outcome.issue[0].code == code
    assert outcome.issue[0].diagnostics
    return outcome


# --- metadata --------------------------------------------------------------------------------

def test_metadata_is_a_valid_r4_capability_statement_served_without_login(db, client):
    response = client.get("/fhir/metadata")
    assert response.status_code == 200
    assert response["Content-Type"].startswith(FHIR_JSON)
    statement = CapabilityStatement.model_validate(response.json())
    assert statement.fhirVersion == "4.0.1"
    assert statement.kind == "instance"
    assert statement.rest[0].mode == "server"
    assert [r.type for r in statement.rest[0].resource] == [
        "Patient", "Questionnaire", "Observation", "QuestionnaireResponse", "Device", "Group", "Flag",
        "DetectedIssue", "Measure", "MeasureReport"]
    operations = {r.type: [o.definition for o in r.operation or []] for r in statement.rest[0].resource}
    assert operations["Group"] == ["http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"]
    assert [i.code for i in statement.rest[0].resource[0].interaction] == ["read", "search-type"]
    assert statement.implementation.url == "http://testserver/fhir"


def test_metadata_answers_plain_json_when_asked(db, client):
    response = client.get("/fhir/metadata", headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    CapabilityStatement.model_validate(response.json())


# --- Patient read ----------------------------------------------------------------------------

def test_patient_read_is_a_valid_identified_r4_patient(cast, client):
    client.force_login(cast.clinician_a)
    response = client.get(f"/fhir/Patient/{cast.patient_a.pk}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith(FHIR_JSON)
    patient = FhirPatient.model_validate(response.json())
    assert patient.id == str(cast.patient_a.pk)
    assert patient.gender == "female"
    assert str(patient.birthDate) == "1950-05-17"
    assert patient.name[0].family == "Testsen"
    assert patient.name[0].given == ["Alma"]
    assert [(i.system, i.value) for i in patient.identifier] == [(CPR_SYSTEM, "0101501111")]
    assert patient.telecom[0].value == "+45 11 22 33 44"


def test_patient_read_works_with_a_bearer_token(cast, client):
    _, raw = ApiToken.issue(cast.clinician_a)
    response = client.get(f"/fhir/Patient/{cast.patient_a.pk}", headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 200
    FhirPatient.model_validate(response.json())


def test_pseudonymised_patient_output_is_valid_and_carries_no_cpr_name_or_phone(cast):
    resource = patient_to_fhir(cast.patient_a, identified=False)
    FhirPatient.model_validate(resource)
    text = json.dumps(resource)
    for secret in (cast.patient_a.cpr, cast.patient_a.cpr.replace("-", ""), "Alma", "Testsen", "+45"):
        assert secret not in text
    assert resource["birthDate"] == "1950"
    assert "identifier" not in resource


def test_cpr_appears_in_identified_patient_output_only_and_never_in_a_url(cast, client):
    cpr_digits = cast.patient_a.cpr.replace("-", "")
    client.force_login(cast.clinician_a)
    patient_json = client.get(f"/fhir/Patient/{cast.patient_a.pk}").json()
    assert [i["value"] for i in patient_json["identifier"]] == [cpr_digits]
    # nowhere but the identifier
    without_identifier = {k: v for k, v in patient_json.items() if k != "identifier"}
    assert cpr_digits not in json.dumps(without_identifier)

    # no URL anywhere in the FHIR output, the alert list or the patient page holds it
    texts = [json.dumps(patient_json), client.get("/api/v1/alerts").content.decode(),
             client.get(f"/patients/{cast.patient_a.pk}/").content.decode(),
             client.get("/fhir/metadata").content.decode()]
    for text in texts:
        for url in re.findall(r"""(?:https?://|/)[^\s"'<>]*""", text):
            assert cpr_digits not in url and cast.patient_a.cpr not in url, url
    # and the resource id, which goes into URLs, is the random UUID
    assert patient_json["id"] == str(cast.patient_a.pk)
    assert uuid.UUID(patient_json["id"])


def test_cpr_number_cannot_be_used_as_a_patient_id(cast, client):
    client.force_login(cast.admin)
    for cpr in (cast.patient_a.cpr, cast.patient_a.cpr.replace("-", "")):
        outcome = _outcome(client.get(f"/fhir/Patient/{cpr}"), 404, "not-found")
        assert cpr not in outcome.issue[0].diagnostics


# --- errors ----------------------------------------------------------------------------------

def test_unknown_patient_gives_404_operation_outcome(cast, client):
    client.force_login(cast.clinician_a)
    _outcome(client.get(f"/fhir/Patient/{uuid.uuid4()}"), 404, "not-found")


def test_other_teams_patient_gives_the_same_404_as_an_unknown_one(cast, client):
    client.force_login(cast.clinician_a)
    foreign = client.get(f"/fhir/Patient/{cast.patient_b.pk}")
    unknown = client.get(f"/fhir/Patient/{uuid.uuid4()}")
    _outcome(foreign, 404, "not-found")
    assert foreign.json() == unknown.json()
    assert "Bodil" not in foreign.content.decode()


@pytest.mark.parametrize("garbage", ["not-a-uuid", "123", "%27%20OR%201%3D1--", "a" * 200])
def test_garbage_patient_id_gives_404_operation_outcome(cast, client, garbage):
    client.force_login(cast.clinician_a)
    _outcome(client.get(f"/fhir/Patient/{garbage}"), 404, "not-found")


def test_unauthenticated_patient_read_gives_401_operation_outcome(cast, client):
    response = client.get(f"/fhir/Patient/{cast.patient_a.pk}")
    _outcome(response, 401, "login")
    assert "Bearer" in response["WWW-Authenticate"]
    assert "Alma" not in response.content.decode()


def test_wrong_bearer_token_gives_401_operation_outcome(cast, client):
    response = client.get(f"/fhir/Patient/{cast.patient_a.pk}", headers={"Authorization": "Bearer pp_nope"})
    _outcome(response, 401, "login")


def test_quality_staff_get_403_operation_outcome_on_patient_read(cast, client):
    client.force_login(cast.quality)
    response = client.get(f"/fhir/Patient/{cast.patient_a.pk}")
    _outcome(response, 403, "forbidden")
    assert cast.patient_a.cpr.replace("-", "") not in response.content.decode()


@pytest.mark.parametrize("method", ["post", "put", "delete", "patch"])
def test_writes_to_patient_give_405_operation_outcome(cast, client, method):
    client.force_login(cast.admin)
    response = getattr(client, method)(f"/fhir/Patient/{cast.patient_a.pk}", {},
                                       content_type=FHIR_JSON)
    _outcome(response, 405, "not-supported")
