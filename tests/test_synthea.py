"""Real Synthea vital signs (tests/fixtures/synthea/, copied verbatim from Synthea output) sent to
our FHIR endpoints: what the platform monitors is stored with its original coding, what it does
not monitor (height, BMI, pain) is refused per entry with a clear reason, and Synthea's own
``urn:uuid:`` patient references — which name no patient here — are refused with an
OperationOutcome and nothing stored."""

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.operationoutcome import OperationOutcome

from interop.observation_in import parse_observation
from monitoring.models import Reading

pytestmark = pytest.mark.django_db
FHIR = "application/fhir+json"
FIXTURE = Path(__file__).parent / "fixtures" / "synthea" / "observations.ndjson"
SYNTHEA_PATIENT = "913e9363-b137-25f7-9585-ce7970dce7b2"
MONITORED = {"29463-7", "85354-9", "8867-4", "9279-1"}  # weight, blood pressure, pulse, breathing
NOT_MONITORED = {"8302-2", "39156-5", "72514-3"}  # height, BMI, pain severity


def _synthea() -> list[dict[str, Any]]:
    return [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line.strip()]


def _code(resource: dict[str, Any]) -> str:
    return resource["code"]["coding"][0]["code"]


def _for(resource: dict[str, Any], patient) -> dict[str, Any]:
    """The Observation as Synthea wrote it, with the subject pointing at one of our patients."""
    resource = copy.deepcopy(resource)
    resource["subject"] = {"reference": f"Patient/{patient.pk}"}
    return resource


def _as_in_a_synthea_bundle(resource: dict[str, Any]) -> dict[str, Any]:
    """Synthea's transaction-Bundle shape: the subject is the urn:uuid of the Patient entry."""
    resource = copy.deepcopy(resource)
    resource["subject"] = {"reference": f"urn:uuid:{SYNTHEA_PATIENT}"}
    resource["encounter"] = {"reference": "urn:uuid:" + resource["encounter"]["reference"].split("/")[1]}
    return resource


def _bundle(kind: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": [
        {"fullUrl": f"urn:uuid:{r['id']}", "resource": r, "request": {"method": "POST", "url": "Observation"}}
        for r in resources]}


def _device(cast) -> Client:
    """Patient A sending Synthea's vital signs (a device's token sends only its own kind's)."""
    client = Client()
    client.force_login(cast.patient_a.user)
    return client


def _post(client: Client, path: str, body: dict[str, Any]):
    return client.post(path, json.dumps(body), content_type=FHIR)


# --- the fixture is what it claims to be --------------------------------------------------------

def test_the_fixture_is_synthea_vital_signs_that_validate_as_fhir_r4():
    resources = _synthea()
    assert {_code(r) for r in resources} == MONITORED | NOT_MONITORED
    for resource in resources:
        Observation.model_validate(resource)
        assert resource["subject"]["reference"] == f"Patient/{SYNTHEA_PATIENT}"
        assert resource["category"][0]["coding"][0]["code"] == "vital-signs"
        assert {"issued", "encounter"} <= resource.keys()


def test_the_parser_takes_every_monitored_synthea_vital_sign_with_all_its_extra_elements():
    for resource in _synthea():
        parsed = parse_observation(resource)
        if _code(resource) in MONITORED:
            assert parsed.ok, (_code(resource), parsed.problems)
            assert parsed.patient_id == SYNTHEA_PATIENT
            assert parsed.original_coding == resource["code"]["coding"][0]
        else:
            assert [p.expression for p in parsed.problems] == ["Observation.code"], parsed.problems
            assert "not a measurement this platform monitors" in parsed.problems[0].message


def test_a_synthea_vital_sign_with_an_extra_coding_before_the_loinc_one_is_still_understood():
    [weight] = [r for r in _synthea() if _code(r) == "29463-7"]
    weight = copy.deepcopy(weight)
    # A more specific LOINC code the platform has no measure for, listed first.
    weight["code"]["coding"][:0] = [{"system": "http://snomed.info/sct", "code": "27113001"},
                                    {"system": "http://loinc.org", "code": "8350-1",
                                     "display": "Body weight Measured --with clothes"}]
    parsed = parse_observation(weight)
    assert parsed.ok, parsed.problems
    assert parsed.measure == "29463-7"  # the LOINC coding the platform monitors, wherever it stands


# --- POST /fhir/Observation ---------------------------------------------------------------------

def test_each_monitored_synthea_vital_sign_is_stored_through_post_observation(cast):
    client = _device(cast)
    for resource in _synthea():
        if _code(resource) not in MONITORED:
            continue
        response = _post(client, "/fhir/Observation", _for(resource, cast.patient_a))
        assert response.status_code == 201, (_code(resource), response.json())
        Observation.model_validate(response.json())
    stored = {r.measure: r for r in Reading.objects.filter(patient=cast.patient_a)}
    assert set(stored) == {"body-weight", "blood-pressure", "heart-rate", "respiratory-rate"}
    assert stored["body-weight"].value == Decimal("77.1")
    # Synthea lists the diastolic component first; the systolic is still the first value.
    assert (stored["blood-pressure"].value, stored["blood-pressure"].value2) == (179, 101)
    assert stored["heart-rate"].value == 95 and stored["respiratory-rate"].value == 13
    assert stored["body-weight"].effective_at.isoformat() == "2012-05-30T08:42:24+00:00"


def test_a_synthea_body_height_posted_alone_is_a_clear_operation_outcome_and_stores_nothing(cast):
    [height] = [r for r in _synthea() if _code(r) == "8302-2"]
    response = _post(_device(cast), "/fhir/Observation", _for(height, cast.patient_a))
    assert response.status_code == 400
    outcome = OperationOutcome.model_validate(response.json())
    assert "8302-2 (Body Height) is not a measurement this platform monitors" in outcome.issue[0].diagnostics
    assert outcome.issue[0].expression == ["Observation.code"]
    assert not Reading.objects.exists()


def test_a_synthea_observation_with_its_urn_uuid_subject_is_refused_and_nothing_is_stored(cast):
    [weight] = [r for r in _synthea() if _code(r) == "29463-7"]
    response = _post(_device(cast), "/fhir/Observation", _as_in_a_synthea_bundle(weight))
    assert response.status_code == 400
    outcome = OperationOutcome.model_validate(response.json())
    [issue] = outcome.issue
    assert issue.expression == ["Observation.subject"]
    assert f"urn:uuid:{SYNTHEA_PATIENT} cannot be resolved" in issue.diagnostics
    assert not Reading.objects.exists()


# --- POST /fhir with Bundles ----------------------------------------------------------------------

def test_a_batch_of_synthea_vital_signs_stores_the_monitored_ones_and_refuses_the_rest_per_entry(cast):
    resources = [_for(r, cast.patient_a) for r in _synthea()]
    response = _post(_device(cast), "/fhir", _bundle("batch", resources))
    assert response.status_code == 200, response.json()
    bundle = Bundle.model_validate(response.json())
    assert bundle.type == "batch-response" and len(bundle.entry) == len(resources)
    for resource, entry in zip(resources, bundle.entry, strict=True):
        if _code(resource) in MONITORED:
            assert entry.response.status == "201 Created", (_code(resource), entry.response)
        else:
            assert entry.response.status == "400 Bad Request"
            [issue] = entry.response.outcome.issue
            assert f"{_code(resource)} (" in issue.diagnostics and "not a measurement" in issue.diagnostics
    assert Reading.objects.filter(patient=cast.patient_a).count() == len(MONITORED)

    # Sent again (a gateway retrying), nothing is stored twice.
    again = _post(_device(cast), "/fhir", _bundle("batch", resources)).json()
    assert [e["response"]["status"] for e in again["entry"]].count("200 OK") == len(MONITORED)
    assert Reading.objects.filter(patient=cast.patient_a).count() == len(MONITORED)


def test_a_transaction_of_the_monitored_synthea_vital_signs_is_stored_whole(cast):
    resources = [_for(r, cast.patient_a) for r in _synthea() if _code(r) in MONITORED]
    response = _post(_device(cast), "/fhir", _bundle("transaction", resources))
    assert response.status_code == 200, response.json()
    assert Bundle.model_validate(response.json()).type == "transaction-response"
    assert Reading.objects.filter(patient=cast.patient_a).count() == len(MONITORED)


def test_a_transaction_with_a_synthea_body_height_stores_nothing_and_names_the_entry(cast):
    resources = [_for(r, cast.patient_a) for r in _synthea()]
    response = _post(_device(cast), "/fhir", _bundle("transaction", resources))
    assert response.status_code == 400
    outcome = OperationOutcome.model_validate(response.json())
    assert "entry[0]" in outcome.issue[0].diagnostics and "8302-2" in outcome.issue[0].diagnostics
    assert not Reading.objects.exists()


@pytest.mark.parametrize("kind", ["batch", "transaction"])
def test_a_synthea_bundle_with_urn_uuid_subjects_is_refused_with_an_operation_outcome_and_stores_nothing(
        cast, kind):
    resources = [_as_in_a_synthea_bundle(r) for r in _synthea() if _code(r) in MONITORED]
    response = _post(_device(cast), "/fhir", _bundle(kind, resources))
    body = response.json()
    if kind == "transaction":
        assert response.status_code == 400
        diagnostics = OperationOutcome.model_validate(body).issue[0].diagnostics
        assert "entry[0]" in diagnostics and "urn:uuid" in diagnostics
    else:
        assert response.status_code == 200
        bundle = Bundle.model_validate(body)
        assert {e.response.status for e in bundle.entry} == {"400 Bad Request"}
        for entry in bundle.entry:
            assert entry.response.outcome.issue[0].expression == ["Observation.subject"]
            assert "cannot be resolved" in entry.response.outcome.issue[0].diagnostics
    assert not Reading.objects.exists()
