"""Pure functions from our models to FHIR R4 (4.0.1) JSON. No database access here: callers
pass what is needed, so the same functions serve single reads and bulk export."""

import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, Protocol

from django.conf import settings

from interop.search import SEARCH_DOCUMENTATION, capability_search_params
from patients.models import Patient
from questionnaires.models import Questionnaire, QuestionnaireResponse
from smart.discovery import capability_security

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
        "format": ["json", "application/fhir+json", "application/json"],
        "rest": [
            {
                "mode": "server",
                # SMART Backend Services for system clients, bearer tokens for people (smart app)
                "security": capability_security(base_url.removesuffix("/fhir")),
                "interaction": [{"code": "batch"}, {"code": "transaction"}],
                # FHIR Bulk Data Access v2 (exports app): /$export here, Patient/$export and
                # Group/{id}/$export on their resources.
                "operation": [
                    {"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"}],
                "documentation": SEARCH_DOCUMENTATION,
                "resource": [
                    {"type": "Patient", "interaction": [{"code": "read"}, {"code": "search-type"}],
                     **capability_search_params("Patient"),
                     "operation": [{"name": "export", "definition":
                                    "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"}]},
                    # Creates are conditional (If-None-Exist, Bundle ifNoneExist) on the parameters
                    # listed; Prefer: return=minimal|representation|OperationOutcome is honoured.
                    {"type": "Questionnaire",
                     "interaction": [{"code": "read"}, {"code": "search-type"}, {"code": "create"}],
                     "conditionalCreate": True,
                     **capability_search_params("Questionnaire")},
                    {"type": "Observation",
                     "interaction": [{"code": "read"}, {"code": "search-type"}, {"code": "create"}],
                     "conditionalCreate": True,
                     "supportedProfile": ["http://hl7.org/fhir/StructureDefinition/vitalsigns"],
                     **capability_search_params("Observation")},
                    {"type": "QuestionnaireResponse",
                     "interaction": [{"code": "read"}, {"code": "search-type"}, {"code": "create"}],
                     "conditionalCreate": True,
                     **capability_search_params("QuestionnaireResponse")},
                    # What an Observation's ``device`` refers to (interop/views_reads.py)
                    {"type": "Device", "interaction": [{"code": "read"}]},
                    # Cohorts (interop/views_group.py): criteria, members evaluated when exported
                    {"type": "Group", "interaction": [{"code": "read"}, {"code": "search-type"}],
                     **capability_search_params("Group"),
                     "operation": [{"name": "export", "definition":
                                    "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"}]},
                    # Alerts (interop/views_alerts.py)
                    {"type": "Flag", "interaction": [{"code": "read"}, {"code": "search-type"}],
                     **capability_search_params("Flag")},
                    {"type": "DetectedIssue", "interaction": [{"code": "read"}, {"code": "search-type"}],
                     **capability_search_params("DetectedIssue")},
                    # Outcome indicators (outcomes/fhir_measure_views.py): aggregates only, for quality
                    # staff, analysts and administrators; suppressed as the indicator pages are.
                    {"type": "Measure", "interaction": [{"code": "read"}, {"code": "search-type"}],
                     "documentation": "GET /fhir/Measure lists every indicator (no search parameters).",
                     "operation": [{"name": "evaluate-measure", "definition":
                                    "http://hl7.org/fhir/OperationDefinition/Measure-evaluate-measure",
                                    "documentation": "GET Measure/{id}/$evaluate-measure?periodStart=&periodEnd= "
                                                     "(YYYY, YYYY-MM or YYYY-MM-DD: the period of treatment "
                                                     "start); reportType summary only; a bad period is 400 "
                                                     "with an OperationOutcome."}]},
                    {"type": "MeasureReport", "interaction": [{"code": "search-type"}],
                     "documentation": "Summary reports computed on request, never stored: search with measure "
                                      "(required) and period.",
                     "searchParam": [
                         {"name": "measure", "type": "reference",
                          "definition": "http://hl7.org/fhir/SearchParameter/MeasureReport-measure",
                          "documentation": "The Measure's canonical url or id (required)."},
                         {"name": "period", "type": "date",
                          "definition": "http://hl7.org/fhir/SearchParameter/MeasureReport-period",
                          "documentation": "The period of treatment start: 2026, 2026-03, or ge/le bounds."}]},
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


def reference(resource_type: str, id_: int | str | uuid.UUID) -> dict[str, str]:
    return {"reference": f"{resource_type}/{id_}"}


def questionnaire_to_fhir(questionnaire: Questionnaire) -> dict[str, Any]:
    """The stored definition as imported, with our id and version on it."""
    resource = dict(questionnaire.resource)
    resource["id"] = str(questionnaire.pk)
    resource["url"] = questionnaire.url
    resource["version"] = questionnaire.version
    resource["meta"] = {**resource.get("meta", {}), "versionId": questionnaire.version}
    return resource


def response_to_fhir(response: QuestionnaireResponse) -> dict[str, Any]:
    """QuestionnaireResponse R4. ``author`` is the patient, or the person who answered for them.
    ``authored`` is the answer's own time (as the client sent it); ``meta.lastUpdated`` is when
    the platform received it (a completed response is not changed afterwards)."""
    questionnaire = response.questionnaire
    resource: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": str(response.pk),
        "meta": {"lastUpdated": response.received_at.isoformat()},
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


def score_to_observation(response: QuestionnaireResponse, score: dict[str, Any], index: int) -> dict[str, Any]:
    """One computed score of a response as a survey Observation derived from it."""
    return _score_observation(
        id_=f"qr{response.pk}-score{index}", subject=reference("Patient", response.patient_id),
        effective=response.authored_at.isoformat(),
        derived_from=reference("QuestionnaireResponse", response.pk), score=score)


def _score_observation(*, id_: str, subject: dict[str, Any], effective: str, derived_from: dict[str, Any],
                       score: dict[str, Any]) -> dict[str, Any]:
    code = score["code"]
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "id": id_,
        "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "survey", "display": "Survey"}]}],
        "code": {"coding": [{k: v for k, v in code.items() if k in {"system", "code", "display"}}],
                 "text": code.get("display", code.get("code"))},
        "subject": subject,
        "effectiveDateTime": effective,
        "derivedFrom": [derived_from],
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


def _ucum(value: Decimal | float, unit: str) -> dict[str, Any]:
    return {"value": float(value), "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}


class StoredReading(Protocol):
    """What an Observation shows of a stored reading: a monitoring.models.Reading, or the row a
    FHIR search selects (interop.search_resources.ReadingRow)."""

    @property
    def pk(self) -> int: ...
    @property
    def patient_id(self) -> uuid.UUID: ...
    @property
    def device_id(self) -> int | None: ...
    @property
    def value(self) -> Decimal: ...
    @property
    def value2(self) -> Decimal | None: ...
    @property
    def unit(self) -> str: ...
    @property
    def original(self) -> Any: ...  # the sender's JSON, as stored
    @property
    def unusual(self) -> bool: ...
    @property
    def erroneous_at(self) -> datetime | None: ...
    @property
    def effective_at(self) -> datetime: ...
    @property
    def received_at(self) -> datetime: ...
    @property
    def client_id(self) -> str | None: ...


# Reading.original["system"] (monitoring.measures.Coding.system) -> the FHIR system URI.
ORIGINAL_SYSTEMS = {"LOINC": "http://loinc.org", "NPU": "urn:oid:1.2.208.176.2.1"}


def reading_to_observation(reading: StoredReading, *, loinc: str, display: str) -> dict[str, Any]:
    """A stored reading as an R4 vital-signs Observation (blood pressure as the 85354-9 panel).
    What the sender said is given back (``with_sender``); ``meta.lastUpdated`` is the server's
    receipt (or the later moment a clinician marked it erroneous)."""
    resource = _reading_observation(
        id_=f"reading-{reading.pk}", subject=reference("Patient", reading.patient_id), loinc=loinc,
        display=display, erroneous=reading.erroneous_at is not None, value=reading.value,
        value2=reading.value2, unit=reading.unit, effective=reading.effective_at.isoformat(),
        issued=reading.received_at.isoformat())
    changed = max(reading.received_at, reading.erroneous_at or reading.received_at)
    resource["meta"] = {**resource["meta"], "lastUpdated": changed.isoformat()}
    original = reading.original if isinstance(reading.original, dict) else {}
    with_sender(resource, original, free_text=True)
    if reading.client_id:
        resource["identifier"] = [{"system": "urn:proplatform:client-identifier", "value": reading.client_id}]
    if reading.device_id:
        resource["device"] = reference("Device", reading.device_id)
    if reading.unusual:
        resource["note"] = [{"text": "Unusual value: stored and flagged for a second look."}]
    return resource


def with_sender(resource: dict[str, Any], original: dict[str, Any], *, free_text: bool,
                shift: Callable[[str], str] | None = None) -> None:
    """Put back what the sender said (``Reading.original``, monitoring.ingest): every coding of
    its code — Synthea's 8331-1 "Oral temperature" beside the 8310-5 the vital-signs profile and
    our rules use — its ``code.text`` and its ``issued``. ``free_text=False`` (pseudonymised
    exports) keeps codes only: no display, no text. ``shift`` moves ``issued`` by the export's
    date shift."""
    # Stored as the sender said it (interop.observation_in.ParsedObservation.provenance); a row
    # written before that shape, or by hand, may hold anything — read what is there and skip the rest.
    sent = fhir if isinstance(fhir := original.get("fhir"), dict) else {}
    sent_code = code if isinstance(code := sent.get("code"), dict) else {}
    coding = sent_code.get("coding")
    codings = [{k: c[k] for k in ("system", "version", "code", "display") if k in c and (free_text or k != "display")}
               for c in (coding if isinstance(coding, list) else []) if isinstance(c, dict) and c.get("code")]
    if not codings and original.get("system") in ORIGINAL_SYSTEMS and original.get("code"):
        # REST and older FHIR readings: the code the sender used (an NPU code, another LOINC code).
        codings = [{"system": ORIGINAL_SYSTEMS[original["system"]], "code": original["code"]}]
    ours = resource["code"]["coding"][0]
    extra = [c for c in codings if (c.get("system"), c.get("code")) != (ours["system"], ours["code"])]
    sent_text = sent_code.get("text") if free_text else None
    if extra or sent_text:
        resource["code"] = {"coding": [ours, *extra], "text": sent_text or resource["code"]["text"]}
    if isinstance(issued := sent.get("issued"), str):
        resource["issued"] = shift(issued) if shift else issued


@lru_cache(maxsize=64)
def _loinc_code(loinc: str, display: str) -> dict[str, Any]:
    # One dict per measure, shared by every resource of a bulk export (serialised, never mutated).
    return {"coding": [{"system": "http://loinc.org", "code": loinc, "display": display}], "text": display}


def _reading_observation(*, id_: str, subject: dict[str, Any], loinc: str, display: str, erroneous: bool,
                         value: Decimal, value2: Decimal | None, unit: str, effective: str,
                         issued: str) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": id_,
        "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/vitalsigns"]},
        # A reading a clinician marked as wrong stays visible, flagged the FHIR way.
        "status": "entered-in-error" if erroneous else "final",
        "category": VITAL_SIGNS_CATEGORY,
        "code": _loinc_code(loinc, display),
        "subject": subject,
        "effectiveDateTime": effective,
        "issued": issued,
    }
    if value2 is not None:
        resource["component"] = [
            {"code": {"coding": [{"system": "http://loinc.org", "code": code, "display": text}]},
             "valueQuantity": _ucum(v, unit)}
            for (code, text), v in zip(_BP_COMPONENTS, (value, value2), strict=True)
        ]
    else:
        resource["valueQuantity"] = _ucum(value, unit)
    return resource


# --- Export mappers ---------------------------------------------------------------------------
# Used by Bulk $export (exports app) and the push to quality databases, identified and
# pseudonymised alike: the caller decides ids, the patient reference and (shifted) dates, so the
# functions stay pure and know nothing about keys. Plain dicts for the hot path (ADR 0001).

ID_SYSTEM = "https://proplatform.dk/fhir/id/"  # + resource type: every exported resource's identifier
ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10"
# The five regions' official codes (Danmarks Administrative Geografiske Inddeling, 1081-1085).
REGION_SYSTEM = "https://proplatform.dk/fhir/CodeSystem/region"
REGION_EXTENSION = "https://proplatform.dk/fhir/StructureDefinition/region"
DEVICE_KIND_SYSTEM = "https://proplatform.dk/fhir/CodeSystem/device-kind"


def export_identifier(resource_type: str, value: str) -> dict[str, str]:
    """The stable identifier a receiver matches on (``ifNoneExist``), so a re-send is no duplicate."""
    return {"system": ID_SYSTEM + resource_type, "value": value}


def subject_reference(patient_ref: str) -> dict[str, Any]:
    """A literal reference: it resolves inside the export, whose Patient ids are the same
    (pseudonymous) values as their identifiers. A push to a server that assigns its own ids turns
    it into a logical reference (exports.quality_push)."""
    return {"reference": f"Patient/{patient_ref}"}


def patient_pseudonymised_to_fhir(*, pseudonym: str, sex: str, birth_year: int) -> dict[str, Any]:
    """A pseudonymised patient: the keyed pseudonym as id and identifier, sex, birth year. No CPR,
    name, address or phone."""
    return {
        "resourceType": "Patient",
        "id": pseudonym,
        "identifier": [export_identifier("Patient", pseudonym)],
        "gender": sex,
        "birthDate": f"{birth_year:04d}",
    }


def patient_identified_for_export(patient: Patient) -> dict[str, Any]:
    """The identified patient (patient_to_fhir) with the export identifier beside the CPR."""
    resource = patient_to_fhir(patient, identified=True)
    resource.pop("meta", None)
    resource["identifier"] = [*resource.get("identifier", []), export_identifier("Patient", str(patient.pk))]
    return resource


def episode_to_fhir(*, id_: str, patient_ref: str, condition_code: str, condition_display: str,
                    care_team_id: str, care_team_name: str, department: str, region_code: str,
                    region_display: str, start: str, end: str | None) -> dict[str, Any]:
    """A treatment episode as EpisodeOfCare. ``period.start`` is the treatment start, the index
    date outcome timepoints count from. The condition (ICD-10/SKS) is a contained Condition,
    because EpisodeOfCare.diagnosis must reference one."""
    resource: dict[str, Any] = {
        "resourceType": "EpisodeOfCare",
        "id": id_,
        "identifier": [export_identifier("EpisodeOfCare", id_)],
        "contained": [{
            "resourceType": "Condition",
            "id": "condition",
            "code": {"coding": [{"system": ICD10_SYSTEM, "code": condition_code,
                                 "display": condition_display}], "text": condition_display},
            "subject": {"reference": f"Patient/{patient_ref}"},
        }],
        "extension": [{"url": REGION_EXTENSION, "valueCoding": {
            "system": REGION_SYSTEM, "code": region_code, "display": region_display}}],
        "status": "finished" if end else "active",
        "diagnosis": [{"condition": {"reference": "#condition"}, "rank": 1}],
        "patient": subject_reference(patient_ref),
        "managingOrganization": {"display": department},
        # A logical reference (identifier and name): this server serves no CareTeam resource and
        # exports none, so a literal CareTeam/<id> would point at nothing (issue 21).
        "team": [{"identifier": export_identifier("CareTeam", str(care_team_id)), "display": care_team_name}],
        "period": {"start": start},
    }
    if end:
        resource["period"]["end"] = end
    return resource


def observation_from_reading(*, id_: str, patient_ref: str, loinc: str, display: str, erroneous: bool,
                             value: Decimal, value2: Decimal | None, unit: str, effective: str, issued: str,
                             device_ref: str | None = None, original: dict[str, Any] | None = None,
                             free_text: bool = True, shift: Callable[[str], str] | None = None) -> dict[str, Any]:
    """A reading for export: no client identifier and no note (free text); a stable identifier;
    the sender's codes and issued time (``with_sender``); ``meta.lastUpdated`` is the receipt."""
    resource = _reading_observation(id_=id_, subject=subject_reference(patient_ref), loinc=loinc,
                                    display=display, erroneous=erroneous, value=value, value2=value2,
                                    unit=unit, effective=effective, issued=issued)
    resource["meta"] = {**resource["meta"], "lastUpdated": issued}
    with_sender(resource, original if isinstance(original, dict) else {}, free_text=free_text, shift=shift)
    resource["identifier"] = [export_identifier("Observation", id_)]
    if device_ref:
        resource["device"] = {"reference": f"Device/{device_ref}"}
    return resource


def observation_from_score(*, id_: str, patient_ref: str, effective: str, response_ref: str,
                           score: dict[str, Any]) -> dict[str, Any]:
    resource = _score_observation(id_=id_, subject=subject_reference(patient_ref), effective=effective,
                                  derived_from=reference("QuestionnaireResponse", response_ref), score=score)
    resource["identifier"] = [export_identifier("Observation", id_)]
    return resource


def questionnaire_response_for_export(*, id_: str, patient_ref: str, questionnaire: str, status: str,
                                      authored: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """A response for export; the caller passes items already cleaned (privacy.items_without_free_text
    for pseudonymised exports). The author is the subject, as who answered is not outcome data."""
    return {
        "resourceType": "QuestionnaireResponse",
        "id": id_,
        "identifier": export_identifier("QuestionnaireResponse", id_),
        "questionnaire": questionnaire,
        "status": status,
        "subject": subject_reference(patient_ref),
        "authored": authored,
        "item": items,
    }


def device_to_fhir(*, id_: str, patient_ref: str, kind: str, kind_display: str, model: str,
                   serial: str | None) -> dict[str, Any]:
    """A home device. ``serial`` is None in pseudonymised exports: a serial number can be traced
    back to the patient it was lent to."""
    resource: dict[str, Any] = {
        "resourceType": "Device",
        "id": id_,
        "identifier": [export_identifier("Device", id_)],
        "status": "active",
        "type": {"coding": [{"system": DEVICE_KIND_SYSTEM, "code": kind, "display": kind_display}],
                 "text": kind_display},
        "patient": subject_reference(patient_ref),
    }
    if model:
        resource["deviceName"] = [{"name": model, "type": "model-name"}]
    if serial:
        resource["serialNumber"] = serial
    return resource
