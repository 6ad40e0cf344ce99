"""What the sender said is kept and given back (issue 21): every coding of the code (Synthea's
oral temperature 8331-1 beside 8310-5), code.text and issued, on the create's answer, on a read
and in $export; the server's receipt is meta.lastUpdated."""

import copy
import json
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest
from django.test import Client

from exports.models import ExportJob
from exports.services import job_dir
from monitoring.models import Reading
from tests.factories import device_token_of
from tests.fhir_schema import fhir_problems

pytestmark = pytest.mark.django_db
FHIR = "application/fhir+json"
FIXTURE = Path(__file__).parent / "fixtures" / "synthea" / "observations.ndjson"
# Synthea's body temperature concept, as its vital-signs module writes it: the vital-signs
# profile's 8310-5 and the specific 8331-1 "Oral temperature". The fixture has no temperature
# (see its README), so its body-weight Observation carries this code here.
SYNTHEA_TEMPERATURE = {"coding": [{"system": "http://loinc.org", "code": "8310-5", "display": "Body temperature"},
                                  {"system": "http://loinc.org", "code": "8331-1", "display": "Oral temperature"}],
                       "text": "Body temperature (oral)"}
ISSUED = "2026-03-01T08:31:00.841+01:00"


def _oral_temperature(patient) -> dict:
    weight = next(json.loads(line) for line in FIXTURE.read_text().splitlines() if '"29463-7"' in line)
    resource = copy.deepcopy(weight)
    resource.pop("id")
    resource["subject"] = {"reference": f"Patient/{patient.pk}"}
    resource["code"] = SYNTHEA_TEMPERATURE
    resource["effectiveDateTime"] = "2026-03-01T08:30:00+01:00"
    resource["issued"] = ISSUED
    resource["valueQuantity"] = {"value": 37.2, "unit": "Cel", "system": "http://unitsofmeasure.org", "code": "Cel"}
    return resource


def _kept(observation: dict, *, text: bool = True) -> None:
    codes = [(c["system"], c["code"]) for c in observation["code"]["coding"]]
    assert ("http://loinc.org", "8310-5") == codes[0]  # the vital-signs profile's code first
    assert ("http://loinc.org", "8331-1") in codes
    if text:
        assert observation["code"]["text"] == "Body temperature (oral)"
    assert observation["issued"] == ISSUED
    assert fhir_problems(observation) == []


def test_the_senders_codes_text_and_issued_come_back_on_create_and_read(cast):
    device = Client(HTTP_AUTHORIZATION=f"Bearer {device_token_of(cast.patient_a, 'thermometer')[1]}")
    created = device.post("/fhir/Observation", json.dumps(_oral_temperature(cast.patient_a)), content_type=FHIR)
    assert created.status_code == 201, created.json()
    _kept(created.json())
    reading = Reading.objects.get()
    assert created.json()["meta"]["lastUpdated"] == reading.received_at.isoformat()
    clinician = Client()
    clinician.force_login(cast.clinician_a)
    read = clinician.get(f"/fhir/Observation/reading-{reading.pk}").json()
    _kept(read)
    assert read["meta"]["lastUpdated"] == reading.received_at.isoformat()


def test_the_senders_codes_and_issued_are_exported_and_text_only_when_identified(
        cast, settings, tmp_path, django_capture_on_commit_callbacks):
    settings.EXPORT_ROOT = tmp_path / "exports"
    settings.EXPORT_PSEUDONYM_KEY = "test-project-key"
    device = Client(HTTP_AUTHORIZATION=f"Bearer {device_token_of(cast.patient_a, 'thermometer')[1]}")
    assert device.post("/fhir/Observation", json.dumps(_oral_temperature(cast.patient_a)),
                       content_type=FHIR).status_code == 201
    for user, params, identified in ((cast.admin, {"identified": "true", "purpose": "Provenance test"}, True),
                                     (cast.quality, {}, False)):
        client = Client()
        client.force_login(user)
        with django_capture_on_commit_callbacks(execute=True):
            kickoff = client.get("/fhir/$export", {"_type": "Observation", **params}, HTTP_PREFER="respond-async")
        assert kickoff.status_code == 202, kickoff.content
        job = ExportJob.objects.order_by("-created_at").first()
        [line] = (job_dir(job) / client.get(kickoff["Content-Location"]).json()["output"][0]["url"]
                  .rsplit("/", 1)[1]).read_bytes().splitlines()
        exported = orjson.loads(line)
        codes = [(c["system"], c["code"]) for c in exported["code"]["coding"]]
        assert ("http://loinc.org", "8331-1") in codes
        if identified:
            _kept(exported)
        else:  # pseudonymised: codes, no displays or text; issued moved by the patient's date shift
            assert all("display" not in c for c in exported["code"]["coding"][1:])
            assert exported["code"]["text"] == "Body temperature"
            issued = datetime.fromisoformat(exported["issued"])
            assert issued - datetime.fromisoformat(exported["effectiveDateTime"]) == timedelta(seconds=60.841)
        assert fhir_problems(exported) == []
