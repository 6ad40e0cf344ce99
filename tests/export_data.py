"""Helpers for the export tests: a small data set around the fixed cast, and validators. Here, not
in the exports app: test helpers are no app code."""

import gzip
import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from django.utils import timezone

from monitoring.models import Reading, Source
from patients.models import Patient, Sex, TreatmentEpisode
from questionnaires.models import QuestionnaireResponse

FREE_TEXT = "Jeg har ondt; ring til min datter Gurli Hansen på 99887766"
# HL7's FHIR 4.0.1 schema (tests/fixtures/fhir-schema/README.md gives its source and licence).
SCHEMA_PATH = Path(__file__).parent / "fixtures" / "fhir-schema" / "fhir.schema.json.gz"


def add_outcome_data(cast: Any) -> Patient:
    """Readings, a blood pressure, a response with free text and scores for patients A and B,
    and a patient C on team A who withdrew from secondary use. Returns patient C."""
    now = timezone.now().replace(microsecond=0)
    patient_c = Patient.objects.create(cpr="030350-3333", given_name="Carla", family_name="Udtrådt",
                                       birth_date=date(1953, 3, 3), sex=Sex.FEMALE, phone="+45 55 66 77 88",
                                       secondary_use_withdrawn_at=now - timedelta(days=1))
    TreatmentEpisode.objects.create(patient=patient_c, program=cast.program_a, care_team=cast.team_a,
                                    condition_code="DC34", treatment_start=timezone.localdate() - timedelta(days=20))
    for patient, device in ((cast.patient_a, cast.device_a), (cast.patient_b, cast.device_b), (patient_c, None)):
        for day in range(3):
            Reading.objects.create(patient=patient, device=device, measure="spo2", value=Decimal(95 - day),
                                   unit="%", effective_at=now - timedelta(days=day), source=Source.DEVICE,
                                   client_id=f"{patient.pk}-{day}", unusual=day == 2)
        Reading.objects.create(patient=patient, measure="blood-pressure", value=Decimal(130), value2=Decimal(85),
                               unit="mm[Hg]", effective_at=now - timedelta(hours=5), source=Source.WEB)
        QuestionnaireResponse.objects.create(
            patient=patient, questionnaire=cast.questionnaire, author=patient.user,
            authored_at=now - timedelta(days=1),
            items=[{"linkId": "breath", "text": "Åndenød", "answer": [{"valueCoding": {
                        "system": "urn:test", "code": "2", "display": "Some"}}]},
                   {"linkId": "contact", "text": "Kontakt", "answer": [{"valueBoolean": False}]},
                   {"linkId": "since", "answer": [{"valueDate": "2026-10-01"}]},
                   {"linkId": "comment", "text": "Andet?", "answer": [{"valueString": FREE_TEXT}]}],
            scores=[{"code": {"system": "urn:test", "code": "hf-sum", "display": "HF sum"}, "value": 7}])
    return patient_c


@cache
def r4_schema_validator() -> Any:
    """The official FHIR R4 (4.0.1) JSON schema, gzipped. One validator per resource type."""
    import jsonschema

    schema = json.loads(gzip.decompress(SCHEMA_PATH.read_bytes()))
    definitions = schema["definitions"]
    return lambda resource: sorted(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in jsonschema.Draft6Validator({"$ref": f"#/definitions/{resource['resourceType']}",
                                             "definitions": definitions}).iter_errors(resource))


def r4b_validate(resource: dict[str, Any]) -> Any:
    import importlib

    module = importlib.import_module(f"fhir.resources.R4B.{resource['resourceType'].lower()}")
    return getattr(module, resource["resourceType"]).model_validate(resource)


def both_validate(resource: dict[str, Any]) -> None:
    r4b_validate(resource)
    errors = r4_schema_validator()(resource)
    assert not errors, errors


def aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.get_current_timezone())
