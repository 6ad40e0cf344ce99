"""The FHIR mappers of interop.mapping, validated against fhir.resources' R4B models and the
official R4 JSON schema (tests.export_data.r4_schema_validator)."""

from datetime import date

import pytest

from exports import bulk
from exports.privacy import Pseudonymiser
from interop.mapping import (
    capability_statement,
    device_to_fhir,
    episode_to_fhir,
    patient_pseudonymised_to_fhir,
    patient_to_fhir,
    reading_to_observation,
    response_to_fhir,
    score_to_observation,
)
from monitoring.measures import MEASURES
from monitoring.models import Reading
from questionnaires.models import QuestionnaireResponse
from tests.export_data import add_outcome_data, both_validate, r4_schema_validator

pytestmark = pytest.mark.django_db

KEY = b"test-key-one"


def test_the_schema_check_rejects_a_resource_that_breaks_r4():
    errors = r4_schema_validator()({"resourceType": "Patient", "gender": "woman", "birthDate": "17-05-1950",
                                    "nickname": "x"})
    assert len(errors) == 3


def test_episode_of_care_carries_condition_team_department_region_and_the_index_date_as_period_start():
    resource = episode_to_fhir(id_="7", patient_ref="p1", condition_code="DC34", condition_display="Lung cancer",
                               care_team_id=3, care_team_name="Team A", department="Lunge", region_code="1082",
                               region_display="Region Midtjylland", start="2026-01-15", end=None)
    both_validate(resource)
    assert resource["period"] == {"start": "2026-01-15"}
    assert resource["status"] == "active"
    assert resource["contained"][0]["code"]["coding"][0]["code"] == "DC34"
    assert resource["managingOrganization"]["display"] == "Lunge"
    assert resource["extension"][0]["valueCoding"]["code"] == "1082"
    ended = episode_to_fhir(id_="7", patient_ref="p1", condition_code="DC34", condition_display="Lung cancer",
                            care_team_id=3, care_team_name="Team A", department="Lunge", region_code="1082",
                            region_display="Region Midtjylland", start="2026-01-15", end="2026-06-01")
    both_validate(ended)
    assert ended["status"] == "finished" and ended["period"]["end"] == "2026-06-01"


def test_pseudonymised_patient_has_pseudonym_sex_and_birth_year_only():
    resource = patient_pseudonymised_to_fhir(pseudonym="a" * 64, sex="female", birth_year=1950)
    both_validate(resource)
    assert set(resource) == {"resourceType", "id", "identifier", "gender", "birthDate"}
    assert resource["birthDate"] == "1950"


def test_identified_patient_and_device_mappers_are_valid_r4(cast):
    both_validate(patient_to_fhir(cast.patient_a, identified=True))
    both_validate(patient_to_fhir(cast.patient_a, identified=False))
    device = device_to_fhir(id_="1", patient_ref=str(cast.patient_a.pk), kind="pulse-oximeter",
                            kind_display="Pulse oximeter", model="Nonin 3230", serial="OX-A")
    both_validate(device)
    assert device["serialNumber"] == "OX-A"
    assert "serialNumber" not in device_to_fhir(id_="1", patient_ref="p", kind="scale", kind_display="Scale",
                                                model="", serial=None)


def test_existing_reading_score_and_response_mappers_are_valid_r4(cast):
    add_outcome_data(cast)
    for reading in Reading.objects.all():
        measure = MEASURES[reading.measure]
        both_validate(reading_to_observation(reading, loinc=measure.loinc, display=measure.display))
    response = QuestionnaireResponse.objects.filter(patient=cast.patient_a).first()
    both_validate(response_to_fhir(response))
    both_validate(score_to_observation(response, response.scores[0], 0))


@pytest.mark.parametrize("pseudonymised", [True, False])
def test_every_exported_resource_of_every_type_is_valid_r4(cast, pseudonymised):
    add_outcome_data(cast)
    refs = bulk.Refs(Pseudonymiser(KEY, shift_dates=True) if pseudonymised else None)
    from patients.models import Patient

    seen = set()
    for resource_type in bulk.TYPES:
        for resource in bulk.GENERATORS[resource_type](Patient.objects.all(), refs, None):
            assert resource["resourceType"] == resource_type
            both_validate(resource)
            seen.add(resource_type)
    assert seen == set(bulk.TYPES)


def test_capability_statement_announces_export_at_system_patient_and_group_level():
    statement = capability_statement("https://example.org/fhir")
    both_validate(statement)
    rest = statement["rest"][0]
    assert [o["definition"].rsplit("/", 1)[1] for o in rest["operation"]] == ["export"]
    by_type = {r["type"]: r for r in rest["resource"]}
    assert by_type["Patient"]["operation"][0]["definition"].endswith("/patient-export")
    assert by_type["Group"]["operation"][0]["definition"].endswith("/group-export")


def test_a_shifted_episode_keeps_its_length(cast):
    add_outcome_data(cast)
    refs = bulk.Refs(Pseudonymiser(KEY, shift_dates=True))
    from patients.models import Patient, TreatmentEpisode

    TreatmentEpisode.objects.filter(patient=cast.patient_a).update(end=date(2026, 12, 31),
                                                                   treatment_start=date(2026, 1, 1))
    episodes = {e["patient"]["reference"]: e for e in bulk.episodes(Patient.objects.all(), refs, None)}
    shifted = episodes[f"Patient/{refs.patient(cast.patient_a.pk)}"]["period"]
    assert shifted["start"] != "2026-01-01"
    length = date.fromisoformat(shifted["end"]) - date.fromisoformat(shifted["start"])
    assert length.days == 364
