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
                "resource": [
                    {"type": "Patient", "interaction": [{"code": "read"}]},
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
