"""Every resource the server hands out — from every FHIR endpoint and from $export, identified and
pseudonymised — validates against HL7's official FHIR R4 (4.0.1) JSON schema with 0 errors, and
holds no empty array or object (issue 21; tests/fhir_schema.py)."""

import json
from collections import Counter
from datetime import date

import orjson
import pytest
from django.test import Client

from exports.models import ExportJob
from exports.services import job_dir
from monitoring.models import Reading
from outcomes.models import Cohort
from patients.models import Region, Sex
from questionnaires.library import load
from questionnaires.models import QuestionnaireResponse
from tests.export_data import add_outcome_data
from tests.factories import vital_signs_observation as _obs
from tests.fhir_schema import fhir_problems

pytestmark = pytest.mark.django_db
FHIR = "application/fhir+json"


def _login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _resources(body: dict) -> list[dict]:
    """The resource and, for a Bundle, every resource and outcome in it."""
    found = [body]
    for entry in body.get("entry", []):
        found += _resources(entry["resource"]) if "resource" in entry else []
        if "outcome" in entry.get("response", {}):
            found.append(entry["response"]["outcome"])
    return found


@pytest.fixture
def served(cast, django_capture_on_commit_callbacks, settings, tmp_path) -> list[dict]:
    """What the FHIR endpoints answer for a populated record: reads, searches, creates, Bundles,
    errors, and the Bulk export files."""
    settings.EXPORT_ROOT = tmp_path / "exports"
    settings.EXPORT_PSEUDONYM_KEY = "test-project-key"
    add_outcome_data(cast)
    answers: list[dict] = []
    device = Client(HTTP_AUTHORIZATION=f"Bearer {cast.device_token_a}")
    with django_capture_on_commit_callbacks(execute=True):
        # a low SpO2 raises the red threshold alert: Flag and DetectedIssue
        created = device.post("/fhir/Observation", json.dumps(_obs(cast.patient_a, code="59408-5", value=88,
                                                                     unit="%", identifier="low-1")),
                              content_type=FHIR)
        assert created.status_code == 201, created.content
        answers.append(created.json())
        bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
            {"resource": _obs(cast.patient_a, identifier="b-1"), "request": {"method": "POST", "url": "Observation"}},
            {"resource": _obs(cast.patient_a, identifier="b-2", flavour="x"),
             "request": {"method": "POST", "url": "Observation"}}]}
        answers.append(device.post("/fhir", json.dumps(bundle), content_type=FHIR).json())
        qr = {"resourceType": "QuestionnaireResponse", "status": "completed",
              "questionnaire": f"{cast.questionnaire.url}|{cast.questionnaire.version}",
              "subject": {"reference": f"Patient/{cast.patient_a.pk}"},
              "identifier": {"system": "urn:app", "value": "resp-1"},
              "item": [{"linkId": "breathless", "answer": [{"valueCoding": {
                  "system": "https://proplatform.example/fhir/CodeSystem/change", "code": "same"}}]},
                  {"linkId": "swelling", "answer": [{"valueBoolean": False}]},
                  {"linkId": "pillows", "answer": [{"valueInteger": 2}]},
                  {"linkId": "contact", "answer": [{"valueBoolean": True}]}]}
        created_qr = _login(cast.patient_a.user).post("/fhir/QuestionnaireResponse", json.dumps(qr),
                                                      content_type=FHIR)
        assert created_qr.status_code == 201, created_qr.content
        answers.append(created_qr.json())
    admin = _login(cast.admin)
    answers.append(admin.post("/fhir/Questionnaire", json.dumps(load("lung-followup")), content_type=FHIR).json())
    cohort = Cohort.objects.create(name="Lung", program=cast.program_a, condition_code="DC34",
                                   treatment_start_from=date(2025, 1, 1), department="Lunge",
                                   region=Region.MIDTJYLLAND, sex=Sex.FEMALE, age_min=60, age_max=69)
    clinician = _login(cast.clinician_a)
    reading = Reading.objects.filter(patient=cast.patient_a, device__isnull=False).first()
    assert reading is not None
    patient = cast.patient_a.pk
    paths = ["/fhir/metadata", f"/fhir/Patient/{patient}", f"/fhir/Observation?patient={patient}",
             f"/fhir/Observation/reading-{reading.pk}", f"/fhir/Device/{cast.device_a.pk}",
             f"/fhir/QuestionnaireResponse?patient={patient}", f"/fhir/QuestionnaireResponse/{created_qr.json()['id']}",
             "/fhir/Questionnaire", f"/fhir/Questionnaire/{cast.questionnaire.pk}",
             f"/fhir/Flag?patient={patient}", f"/fhir/DetectedIssue?patient={patient}",
             "/fhir/Patient/00000000-0000-0000-0000-000000000000", "/fhir/Encounter/1", "/fhir/Patient/1/_history"]
    for path in paths:
        answers.append(clinician.get(path).json())
    flag = next(r for r in answers if r.get("type") == "searchset" and r["entry"]
                and r["entry"][0]["resource"]["resourceType"] == "Flag")
    answers.append(clinician.get(f"/fhir/Flag/{flag['entry'][0]['resource']['id']}").json())
    scored = QuestionnaireResponse.objects.filter(patient=cast.patient_a).exclude(scores=[]).first()
    assert scored is not None
    answers.append(clinician.get(f"/fhir/Observation/qr{scored.pk}-score0").json())
    quality = _login(cast.quality)
    answers += [quality.get("/fhir/Group").json(), quality.get(f"/fhir/Group/{cohort.pk}").json()]
    # Bulk export, pseudonymised (quality) and identified (administrator)
    for user, params in ((cast.quality, {}), (cast.admin, {"identified": "true", "purpose": "Schema test"})):
        client = _login(user)
        with django_capture_on_commit_callbacks(execute=True):
            kickoff = client.get("/fhir/$export", params, HTTP_PREFER="respond-async")
        assert kickoff.status_code == 202, kickoff.content
        manifest = client.get(kickoff["Content-Location"]).json()
        job = ExportJob.objects.order_by("-created_at").first()
        assert job is not None
        for output in manifest["output"]:
            lines = (job_dir(job) / output["url"].rsplit("/", 1)[1]).read_bytes().splitlines()
            answers += [orjson.loads(line) for line in lines]
    return [r for body in answers for r in _resources(body)]


def test_every_resource_the_server_hands_out_validates_against_the_official_r4_schema(served):
    kinds = Counter(r["resourceType"] for r in served)
    # the test must see every type it claims to cover
    assert {"CapabilityStatement", "Patient", "Observation", "Device", "QuestionnaireResponse", "Questionnaire",
            "Flag", "DetectedIssue", "Group", "EpisodeOfCare", "Bundle", "OperationOutcome"} <= set(kinds), kinds
    problems = [p for r in served for p in fhir_problems(r)]
    assert problems == [], "\n".join(problems[:40])
