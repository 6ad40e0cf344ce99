"""Pure functions from our models to FHIR R4 (4.0.1) JSON. No database access here: callers
pass what is needed, so the same functions serve single reads and bulk export."""

from typing import Any

from django.conf import settings

from patients.models import Patient

CPR_SYSTEM = "urn:oid:1.2.208.176.1.2"  # Danish CPR number (the CPR office's OID)
FHIR_VERSION = "4.0.1"


def patient_to_fhir(patient: Patient, *, identified: bool) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(patient.pk),
        "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/Patient"]},
        "gender": patient.sex,
    }
    if identified:
        resource["identifier"] = [{"system": CPR_SYSTEM, "value": patient.cpr.replace("-", "")}]
        resource["name"] = [{"use": "official", "family": patient.family_name,
                             "given": patient.given_name.split()}]
        resource["birthDate"] = patient.birth_date.isoformat()
        if patient.phone:
            resource["telecom"] = [{"system": "phone", "value": patient.phone, "use": "mobile"}]
    else:
        resource["birthDate"] = str(patient.birth_date.year)
    return resource


def capability_statement(base_url: str) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-22",
        "publisher": "proplatform",
        "kind": "instance",
        "software": {"name": "proplatform", "version": settings.SPECTACULAR_SETTINGS["VERSION"]},
        "implementation": {"description": "proplatform FHIR R4 endpoint", "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["json", "application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "cors": False,
                    "service": [{"coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "OAuth", "display": "OAuth"}],
                        "text": "Bearer token from POST /api/v1/auth/token, or a browser session."}],
                },
                "interaction": [{"code": "batch"}, {"code": "transaction"}],
                "resource": [
                    {"type": "Patient", "interaction": [{"code": "read"}]},
                    {"type": "Questionnaire",
                     "interaction": [{"code": "read"}, {"code": "search-type"}, {"code": "create"}],
                     "searchParam": [{"name": "url", "type": "uri"}, {"name": "version", "type": "token"}]},
                    {"type": "Observation", "interaction": [{"code": "search-type"}, {"code": "create"}],
                     "supportedProfile": ["http://hl7.org/fhir/StructureDefinition/vitalsigns"],
                     "searchParam": [{"name": "patient", "type": "reference"},
                                     {"name": "category", "type": "token"}]},
                    {"type": "QuestionnaireResponse",
                     "interaction": [{"code": "search-type"}, {"code": "create"}],
                     "searchParam": [{"name": "patient", "type": "reference"}]},
                ],
            }
        ],
    }


def operation_outcome(severity: str, code: str, diagnostics: str,
                      expression: list[str] | None = None) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = expression
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def reference(resource_type: str, id_: Any) -> dict[str, str]:
    return {"reference": f"{resource_type}/{id_}"}


def questionnaire_to_fhir(questionnaire: Any) -> dict[str, Any]:
    """The stored definition as imported, with our id and version on it."""
    resource = dict(questionnaire.resource)
    resource["id"] = str(questionnaire.pk)
    resource["url"] = questionnaire.url
    resource["version"] = questionnaire.version
    resource["meta"] = {**resource.get("meta", {}), "versionId": questionnaire.version}
    return resource


def response_to_fhir(response: Any) -> dict[str, Any]:
    """QuestionnaireResponse R4. ``author`` is the patient, or the person who answered for them."""
    questionnaire = response.questionnaire
    resource: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": str(response.pk),
        "questionnaire": f"{questionnaire.url}|{questionnaire.version}",
        "status": response.status,
        "subject": reference("Patient", response.patient_id),
        "authored": response.authored_at.isoformat(),
        "item": response.items,
    }
    if response.identifier:
        resource["identifier"] = {"system": "urn:proplatform:client-identifier", "value": response.identifier}
    author_patient = getattr(response.patient, "user_id", None)
    if response.author_id is not None and response.author_id != author_patient:
        resource["author"] = {"display": "answered on the patient's behalf", "identifier": {
            "system": "urn:proplatform:user", "value": str(response.author_id)}}
    else:
        resource["author"] = reference("Patient", response.patient_id)
    return resource


def score_to_observation(response: Any, score: dict[str, Any], index: int) -> dict[str, Any]:
    """One computed score of a response as a survey Observation derived from it."""
    code = score["code"]
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"qr{response.pk}-score{index}",
        "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "survey", "display": "Survey"}]}],
        "code": {"coding": [{k: v for k, v in code.items() if k in {"system", "code", "display"}}],
                 "text": code.get("display", code.get("code"))},
        "subject": reference("Patient", response.patient_id),
        "effectiveDateTime": response.authored_at.isoformat(),
        "derivedFrom": [reference("QuestionnaireResponse", response.pk)],
    }
    if score.get("value") is None:
        observation["dataAbsentReason"] = {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "not-performed",
            "display": "Not Performed"}], "text": score.get("reason_no_score") or "too many items missing"}
    else:
        observation["valueQuantity"] = {"value": score["value"], "system": "http://unitsofmeasure.org",
                                        "code": "{score}", "unit": "{score}"}
    band = score.get("band")
    if band:
        observation["interpretation"] = [{"text": band.get("display_en") or band.get("code")}]
    return observation


def searchset(base_url: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"fullUrl": f"{base_url}/{r['resourceType']}/{r['id']}", "resource": r,
                   "search": {"mode": "match"}} for r in resources],
    }


VITAL_SIGNS_CATEGORY = [{"coding": [{
    "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs",
    "display": "Vital Signs"}]}]
_BP_COMPONENTS = (("8480-6", "Systolic blood pressure"), ("8462-4", "Diastolic blood pressure"))


def _ucum(value: Any, unit: str) -> dict[str, Any]:
    return {"value": float(value), "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}


def reading_to_observation(reading: Any, *, loinc: str, display: str) -> dict[str, Any]:
    """A stored reading as an R4 vital-signs Observation (blood pressure as the 85354-9 panel)."""
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"reading-{reading.pk}",
        "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/vitalsigns"]},
        # A reading a clinician marked as wrong stays visible, flagged the FHIR way.
        "status": "entered-in-error" if reading.erroneous_at else "final",
        "category": VITAL_SIGNS_CATEGORY,
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc, "display": display}], "text": display},
        "subject": reference("Patient", reading.patient_id),
        "effectiveDateTime": reading.effective_at.isoformat(),
        "issued": reading.received_at.isoformat(),
    }
    if reading.value2 is not None:
        resource["component"] = [
            {"code": {"coding": [{"system": "http://loinc.org", "code": code, "display": text}]},
             "valueQuantity": _ucum(value, reading.unit)}
            for (code, text), value in zip(_BP_COMPONENTS, (reading.value, reading.value2), strict=True)
        ]
    else:
        resource["valueQuantity"] = _ucum(reading.value, reading.unit)
    if reading.client_id:
        resource["identifier"] = [{"system": "urn:proplatform:client-identifier", "value": reading.client_id}]
    if reading.device_id:
        resource["device"] = reference("Device", reading.device_id)
    if reading.unusual:
        resource["note"] = [{"text": "Unusual value: stored and flagged for a second look."}]
    return resource
