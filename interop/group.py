"""A cohort as a FHIR R4 ``Group`` — pure: the cohort and its current size in, a dict out.

The Group is *definitional* (``actual: false``): it carries the criteria as ``characteristic``
entries, never a member list, because membership is evaluated whenever the Group is used
(``Group/{id}/$export`` asks outcomes.selectors.cohort_patient_ids at that moment).

R4 Group.characteristic.value[x] is CodeableConcept, boolean, Quantity, Range or Reference —
there is no valuePeriod (that arrived in R5). A date range is therefore a ``valueBoolean: true``
characteristic whose ``period`` is the range, which is what R4 defines ``period`` for ("the
period over which the characteristic is tested").

``quantity`` is the current number of members, left out when it is 1–4 (small-cell rule: a
Group can be read by quality staff and sent to quality databases).
"""

from typing import Any

from outcomes.models import Cohort
from outcomes.suppression import is_small

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
GENDER_SYSTEM = "http://hl7.org/fhir/administrative-gender"
# The Danish health classification system (SKS) — diagnosis codes such as DC34.
SKS_SYSTEM = "urn:oid:1.2.208.176.2.4"
# Our own code systems, for criteria no standard terminology names.
CRITERION_SYSTEM = "https://proplatform.dk/fhir/CodeSystem/cohort-criterion"
PROGRAM_SYSTEM = "https://proplatform.dk/fhir/CodeSystem/program"
DEPARTMENT_SYSTEM = "https://proplatform.dk/fhir/CodeSystem/department"
REGION_SYSTEM = "https://proplatform.dk/fhir/CodeSystem/region"  # same as interop.mapping's
COHORT_ID_SYSTEM = "https://proplatform.dk/fhir/id/Group"


def _own(code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": CRITERION_SYSTEM, "code": code, "display": display}], "text": display}


def _loinc(code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display}


def group_characteristics(cohort: Cohort) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if cohort.program_id is not None:
        program = cohort.program
        assert program is not None  # program_id is set
        out.append({"code": _own("program", "Programme"), "exclude": False, "valueCodeableConcept": {
            "coding": [{"system": PROGRAM_SYSTEM, "code": program.slug, "display": program.name}],
            "text": program.name}})
    if cohort.condition_code:
        out.append({"code": _loinc("29308-4", "Diagnosis"), "exclude": False, "valueCodeableConcept": {
            "coding": [{"system": SKS_SYSTEM, "code": cohort.condition_code}],
            "text": f"{cohort.condition_code} and more specific codes"}})
    if cohort.treatment_start_from or cohort.treatment_start_to:
        period = {}
        if cohort.treatment_start_from:
            period["start"] = cohort.treatment_start_from.isoformat()
        if cohort.treatment_start_to:
            period["end"] = cohort.treatment_start_to.isoformat()
        out.append({"code": _own("treatment-start", "Treatment start (index date)"), "exclude": False,
                    "valueBoolean": True, "period": period})
    if cohort.department:
        out.append({"code": _own("department", "Department"), "exclude": False,
                    "valueCodeableConcept": {"text": cohort.department}})
    if cohort.region:
        out.append({"code": _own("region", "Region"), "exclude": False, "valueCodeableConcept": {
            "coding": [{"system": REGION_SYSTEM, "code": cohort.region, "display": cohort.get_region_display()}]}})
    if cohort.sex:
        out.append({"code": _loinc("46098-0", "Sex"), "exclude": False, "valueCodeableConcept": {
            "coding": [{"system": GENDER_SYSTEM, "code": cohort.sex}]}})
    if cohort.age_min is not None or cohort.age_max is not None:
        # Whole years at the index date; both ends inclusive.
        value_range: dict[str, Any] = {}
        if cohort.age_min is not None:
            value_range["low"] = {"value": cohort.age_min, "unit": "a", "system": UCUM, "code": "a"}
        if cohort.age_max is not None:
            value_range["high"] = {"value": cohort.age_max, "unit": "a", "system": UCUM, "code": "a"}
        out.append({"code": _own("age-at-index", "Age at treatment start"), "exclude": False,
                    "valueRange": value_range})
    # Always present: whoever withdrew from secondary use is left out (see ConsentCriterion).
    out.append({"code": _own("secondary-use-withdrawn", "Withdrew from secondary use"), "exclude": True,
                "valueBoolean": True})
    return out


def cohort_to_group(cohort: Cohort, *, member_count: int) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Group",
        "id": str(cohort.pk),
        "meta": {"lastUpdated": cohort.updated_at.isoformat()},
        "identifier": [{"system": COHORT_ID_SYSTEM, "value": str(cohort.pk)}],
        "active": True,
        "type": "person",
        "actual": False,
        "name": cohort.name,
        "characteristic": group_characteristics(cohort),
    }
    if not is_small(member_count):
        resource["quantity"] = member_count
    return resource
