import copy
from decimal import Decimal

import pytest

from interop.observation_in import parse_observation
from monitoring.measures import coding_lookup

WEIGHT = {
    "resourceType": "Observation", "status": "final",
    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                              "code": "vital-signs"}]}],
    "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}]},
    "subject": {"reference": "Patient/7c9e6679-7425-40de-944b-e07fc1f90ae7"},
    "effectiveDateTime": "2026-11-20T07:45:00+01:00",
    "identifier": [{"system": "urn:scale", "value": "m-17"}],
    "valueQuantity": {"value": 81.4, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
}

# As Synthea writes it (systolic/diastolic components of the 85354-9 panel).
SYNTHEA_BP = {
    "resourceType": "Observation", "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9",
                         "display": "Blood pressure panel with all children optional"}]},
    "subject": {"reference": "Patient/7c9e6679-7425-40de-944b-e07fc1f90ae7"},
    "effectiveDateTime": "2026-11-20T07:45:00+01:00",
    "component": [
        {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
         "valueQuantity": {"value": 82, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org",
                           "code": "mm[Hg]"}},
        {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
         "valueQuantity": {"value": 131, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org",
                           "code": "mm[Hg]"}},
    ],
}


def test_a_vital_signs_weight_observation_becomes_a_reading_input():
    parsed = parse_observation(WEIGHT)
    assert parsed.ok, parsed.problems
    assert (parsed.measure, parsed.value, parsed.unit) == ("29463-7", Decimal("81.4"), "kg")
    assert parsed.patient_id == "7c9e6679-7425-40de-944b-e07fc1f90ae7"
    assert parsed.effective_at.isoformat() == "2026-11-20T07:45:00+01:00"
    assert parsed.client_id == "urn:scale|m-17"


def test_a_blood_pressure_panel_gives_systolic_and_diastolic_whatever_the_component_order():
    parsed = parse_observation(SYNTHEA_BP)
    assert parsed.ok, parsed.problems
    assert (parsed.measure, parsed.value, parsed.value2, parsed.unit) == ("85354-9", 131, 82, "mm[Hg]")


def test_synthea_pulse_oximetry_code_is_kept_as_sent_and_names_spo2():
    resource = copy.deepcopy(WEIGHT)
    resource["code"] = {"coding": [{"system": "http://loinc.org", "code": "2708-6"}]}
    resource["valueQuantity"] = {"value": 96, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}
    parsed = parse_observation(resource)
    assert parsed.ok and parsed.measure == "2708-6"  # kept as the reading's original code
    assert coding_lookup(parsed.measure).measure.code == "spo2"


def test_an_npu_coding_is_kept_as_the_original_when_no_loinc_is_given():
    resource = copy.deepcopy(WEIGHT)
    resource["code"] = {"coding": [{"system": "urn:oid:1.2.208.176.2.1", "code": "NPU03804"}]}
    parsed = parse_observation(resource)
    assert parsed.measure == "NPU03804"
    assert parsed.original_coding == {"system": "urn:oid:1.2.208.176.2.1", "code": "NPU03804"}


def _broken(**changes):
    resource = copy.deepcopy(WEIGHT)
    for key, value in changes.items():
        if value is None:
            resource.pop(key)
        else:
            resource[key] = value
    return resource


@pytest.mark.parametrize(
    ("resource", "expression"),
    [
        ({"resourceType": "Patient"}, "Observation"),
        (_broken(status=None), "Observation.status"),
        (_broken(status="entered-in-error"), "Observation.status"),
        (_broken(code=None), "Observation.code"),
        (_broken(code={"coding": [{"system": "http://snomed.info/sct", "code": "27113001"}]}), "Observation.code"),
        (_broken(subject=None), "Observation.subject"),
        (_broken(subject={"reference": "Group/1"}), "Observation.subject"),
        (_broken(effectiveDateTime=None), "Observation.effective"),
        (_broken(effectiveDateTime="2026-11-20T07:45:00"), "Observation.effective"),
        (_broken(valueQuantity=None), "Observation.valueQuantity"),
        (_broken(valueQuantity={"value": 81.4}), "Observation.valueQuantity.code"),
        (_broken(valueQuantity={"value": "heavy", "code": "kg"}), "Observation.valueQuantity.value"),
        (_broken(valueQuantity={"value": "NaN", "code": "kg"}), "Observation.valueQuantity.value"),
    ],
    ids=["wrong-resource-type", "missing-status", "entered-in-error", "missing-code", "no-loinc-or-npu",
         "missing-subject", "subject-not-a-patient", "missing-time", "naive-time", "missing-value",
         "value-without-unit", "non-numeric-value", "not-a-number"],
)
def test_invalid_observations_name_the_element_at_fault(resource, expression):
    parsed = parse_observation(resource)
    assert not parsed.ok
    assert expression in [p.expression for p in parsed.problems], parsed.problems


def test_blood_pressure_without_both_components_is_refused():
    resource = copy.deepcopy(SYNTHEA_BP)
    resource["component"] = resource["component"][:1]
    assert "Observation.component" in [p.expression for p in parse_observation(resource).problems]


@pytest.mark.django_db
def test_a_stored_reading_maps_to_a_valid_r4_vital_signs_observation_and_back(cast):
    from datetime import timedelta

    from django.utils import timezone
    from fhir.resources.R4B.observation import Observation

    from interop.mapping import reading_to_observation
    from monitoring.models import Reading, Source

    reading = Reading.objects.create(patient=cast.patient_a, measure="body-weight", value=Decimal("81.4"),
                                     unit="kg", effective_at=timezone.now() - timedelta(hours=1),
                                     source=Source.DEVICE, client_id="m-17", device=cast.device_a)
    resource = reading_to_observation(reading, loinc="29463-7", display="Body weight")
    Observation.model_validate(resource)
    back = parse_observation(resource)
    assert back.ok and (back.measure, back.value, back.unit) == ("29463-7", Decimal("81.4"), "kg")

    bp = Reading.objects.create(patient=cast.patient_a, measure="body-weight", value=131, value2=82,
                                unit="mm[Hg]", effective_at=timezone.now(), source=Source.DEVICE)
    resource = reading_to_observation(bp, loinc="85354-9", display="Blood pressure panel")
    Observation.model_validate(resource)
    back = parse_observation(resource)
    assert back.ok and (back.value, back.value2) == (131, 82)

    Reading.objects.filter(pk=reading.pk).update(erroneous_at=timezone.now())
    reading.refresh_from_db()
    assert reading_to_observation(reading, loinc="29463-7", display="Body weight")["status"] == "entered-in-error"
