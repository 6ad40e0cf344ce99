"""FHIR R4 Observation (vital-signs profile) → the platform's reading input. Pure: no database.

Accepts LOINC codings (and Danish NPU codes, mapped by monitoring.measures when it knows them),
blood pressure as the 85354-9 panel with systolic 8480-6 and diastolic 8462-4 components, UCUM
units in valueQuantity.code (or .unit), and vital signs as real systems write them (Synthea:
``meta.profile``, ``category``, ``encounter``, ``issued``, ``code.text``, several codings; see
tests/test_synthea.py and tests/fixtures/synthea/). Valid FHIR elements the platform does not
store are ignored, not refused; elements FHIR does not define, and empty arrays or objects, are
refused (interop.validate, ADR 0001). Every problem is returned with a FHIRPath expression, so the caller can
answer with an OperationOutcome naming it.
"""

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.dateparse import parse_datetime

from interop.validate import structure_issues
from monitoring.measures import DIASTOLIC_CODES, MEASURES, SYSTOLIC_CODES, coding_lookup

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
NPU_SYSTEMS = {"urn:oid:1.2.208.176.2.1", "http://npu-terminology.org"}
BP_PANEL, SYSTOLIC, DIASTOLIC = "85354-9", "8480-6", "8462-4"
ACCEPTED_STATUS = {"final", "amended", "corrected", "preliminary"}
CLIENT_ID_LENGTH = 100  # monitoring.Reading.client_id


@dataclass
class Problem:
    expression: str
    message: str


@dataclass
class ParsedObservation:
    patient_id: str | None = None
    measure: str | None = None  # LOINC (or NPU) code, as monitoring.measures.measure_lookup takes
    value: Decimal | None = None
    value2: Decimal | None = None
    unit: str | None = None
    effective_at: datetime | None = None
    client_id: str | None = None
    device_id: int | None = None  # Observation.device, when it names a Device of this server
    original_coding: dict[str, Any] | None = None
    # The sender's own words, given back on reads and exports (interop.mapping): the code as sent
    # (all its codings and its text) and when the sender issued the result.
    sent_code: dict[str, Any] | None = None
    issued: str | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def provenance(self) -> dict[str, Any] | None:
        """What Reading.original["fhir"] keeps (monitoring.ingest.readings_ingest ``provenance``)."""
        kept = {k: v for k, v in (("code", self.sent_code), ("issued", self.issued)) if v}
        return kept or None

    @property
    def is_panel(self) -> bool:
        """Blood pressure: values in components (85354-9, or a code the platform maps to it)."""
        coding = coding_lookup(self.measure) if self.measure else None
        return coding is not None and coding.measure.loinc == BP_PANEL


def _quantity(q: Any, where: str, out: ParsedObservation) -> tuple[Decimal | None, str | None]:
    if not isinstance(q, dict):
        out.problems.append(Problem(where, "valueQuantity is required"))
        return None, None
    raw = q.get("value")
    value = None
    if isinstance(raw, bool) or not isinstance(raw, int | float | Decimal):
        # FHIR JSON writes decimals as numbers: "72" (a string) is not one.
        out.problems.append(Problem(f"{where}.value", "a numeric value (a JSON number) is required"))
    else:
        try:
            value = Decimal(str(raw))
            if not value.is_finite():
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            out.problems.append(Problem(f"{where}.value", "a numeric value is required"))
            value = None
    if q.get("comparator") is not None:
        # "<", ">"...: the value is a bound, not a measurement; stored as one it would be wrong.
        out.problems.append(Problem(f"{where}.comparator", "a value with a comparator (e.g. \">72\") is not a "
                                                             "measurement; send the measured value"))
    unit = q.get("code") if q.get("system", UCUM) == UCUM and q.get("code") else q.get("unit")
    if not unit:
        out.problems.append(Problem(f"{where}.code", "the unit is required (UCUM code)"))
    return value, unit


def _code(codeable: Any) -> tuple[str | None, dict[str, Any] | None]:
    """The LOINC code if there is one, else an NPU code; with the coding as sent.

    Real senders put several codings in one concept (a vital-signs code beside a more specific
    one, a local code beside LOINC): a coding that names a measure the platform monitors wins
    over the first one of its system, so the order of the codings does not decide."""
    codings = codeable.get("coding") if isinstance(codeable, dict) else None
    if not isinstance(codings, list):
        return None, None
    for wanted in ({LOINC}, NPU_SYSTEMS):
        # Codes as sent: monitoring.measures maps other systems' codes for the same thing (Synthea's
        # 2708-6 for pulse oximetry, NPU codes) and the reading keeps the one sent as its original.
        found = [(str(c["code"]), c) for c in codings
                 if isinstance(c, dict) and c.get("system") in wanted and c.get("code")]
        for code, coding in found:
            if coding_lookup(code) is not None:
                return code, coding
        if found:
            return found[0]
    return None, None


def _display(codeable: Any, coding: dict[str, Any] | None) -> str:
    text = codeable.get("text") if isinstance(codeable, dict) else None
    return str((coding or {}).get("display") or text or "")


def _monitored() -> str:
    return ", ".join(f"{m.display} {m.loinc}" for m in MEASURES.values())


def _subject(resource: dict[str, Any], out: ParsedObservation) -> None:
    subject = resource.get("subject")
    reference = subject.get("reference") if isinstance(subject, dict) else None
    reference = reference if isinstance(reference, str) else ""
    if reference.startswith("Patient/") and len(reference) > len("Patient/"):
        out.patient_id = reference.removeprefix("Patient/")
    elif reference.startswith("urn:uuid:"):
        # Synthea's transaction Bundles point at the Patient entry of the same Bundle. This server
        # creates Observations only, so no entry can resolve it; guessing a patient would be worse.
        out.problems.append(Problem("Observation.subject", (
            f"subject {reference} cannot be resolved: this server does not create patients, so a "
            "urn:uuid reference to a Patient in the Bundle does not identify anyone here. Reference "
            "the patient by their id on this server (Patient/<id>).")))
    else:
        out.problems.append(Problem("Observation.subject", "subject must reference the Patient (Patient/<id>)"))


def parse_observation(resource: Any) -> ParsedObservation:
    out = ParsedObservation()
    if not isinstance(resource, dict) or resource.get("resourceType") != "Observation":
        out.problems.append(Problem("Observation", "the resource must be an Observation"))
        return out
    # Valid FHIR first: an unknown element may be a sender's typo of one we read.
    out.problems += [Problem(i["expression"][0], i["diagnostics"]) for i in structure_issues(resource)]
    if resource.get("status") not in ACCEPTED_STATUS:
        out.problems.append(Problem("Observation.status", f"status must be one of {sorted(ACCEPTED_STATUS)}"))
    _subject(resource, out)
    code = _measure(resource, out)
    if isinstance(resource.get("issued"), str):
        out.issued = resource["issued"]
    _effective(resource, out)
    _identifier(resource, out)
    _device(resource, out)
    _values(resource, code, out)
    return out


def _measure(resource: dict[str, Any], out: ParsedObservation) -> str | None:
    """The measure the Observation's code names, if this platform monitors it."""
    code, coding = _code(resource.get("code"))
    if code is None:
        out.problems.append(Problem("Observation.code", "a LOINC (or NPU) code is required"))
    elif coding_lookup(code) is None:
        # Body height, BMI, pain scores...: valid vital signs, but nothing is monitored for them
        # here. Said per Observation, so a batch with them stores the rest.
        what = _display(resource.get("code"), coding)
        out.problems.append(Problem("Observation.code", (
            f"{code}{f' ({what})' if what else ''} is not a measurement this platform monitors; "
            f"it takes {_monitored()}")))
        code = None
    out.measure, out.original_coding = code, coding
    if code is not None:
        out.sent_code = resource.get("code")
    return code


def _effective(resource: dict[str, Any], out: ParsedObservation) -> None:
    period = resource.get("effectivePeriod")
    when = resource.get("effectiveDateTime") or resource.get("effectiveInstant") or \
        (period.get("start") if isinstance(period, dict) else None)
    parsed = None
    if isinstance(when, str):
        try:
            parsed = parse_datetime(when)
        except ValueError:  # well-formed but no instant: 2026-02-30, 24:00, a leap second, +24:00
            out.problems.append(Problem("Observation.effective", f"{when[:40]} is not a valid date and time"))
            return
    if parsed is None:
        out.problems.append(Problem("Observation.effective", "effectiveDateTime (with time zone) is required"))
    elif parsed.tzinfo is None:
        out.problems.append(Problem("Observation.effective", "the time must include a time zone"))
    else:
        out.effective_at = parsed


def _identifier(resource: dict[str, Any], out: ParsedObservation) -> None:
    identifiers = resource.get("identifier")
    if isinstance(identifiers, list) and identifiers and isinstance(identifiers[0], dict):
        first = identifiers[0]
        if first.get("value"):
            client_id = f"{first.get('system', '')}|{first['value']}"
            if len(client_id) > CLIENT_ID_LENGTH:
                # Cut short, two readings could share one id: the second would be refused (409),
                # or taken for a repeat of the first.
                out.problems.append(Problem("Observation.identifier", (
                    f"identifier system|value is {len(client_id)} characters; at most {CLIENT_ID_LENGTH} "
                    "are kept")))
            else:
                out.client_id = client_id


def _device(resource: dict[str, Any], out: ParsedObservation) -> None:
    # A device of this server (Device/<id>) is checked as REST's "device" is: the patient's, and
    # lent to them when measured. Any other form (a display, an identifier, another server's id
    # that is not a number) says nothing this server can check, and is ignored like the rest.
    device = resource.get("device")
    reference = device.get("reference") if isinstance(device, dict) else None
    if isinstance(reference, str) and re.fullmatch(r"Device/\d{1,18}", reference):
        out.device_id = int(reference.removeprefix("Device/"))


def _values(resource: dict[str, Any], code: str | None, out: ParsedObservation) -> None:
    if out.is_panel:
        parts = {}
        for i, component in enumerate(resource.get("component") or []):
            part, _ = _code(component.get("code") if isinstance(component, dict) else None)
            part = SYSTOLIC if part in SYSTOLIC_CODES else DIASTOLIC if part in DIASTOLIC_CODES else None
            if part is not None:
                parts[part] = _quantity(component.get("valueQuantity"), f"Observation.component[{i}].valueQuantity",
                                        out)
        if SYSTOLIC not in parts or DIASTOLIC not in parts:
            out.problems.append(Problem("Observation.component",
                                        "blood pressure needs systolic (8480-6) and diastolic (8462-4) components"))
        else:
            (out.value, out.unit), (out.value2, unit2) = parts[SYSTOLIC], parts[DIASTOLIC]
            if unit2 != out.unit:
                out.problems.append(Problem("Observation.component", "systolic and diastolic need the same unit"))
    elif code is not None:
        out.value, out.unit = _quantity(resource.get("valueQuantity"), "Observation.valueQuantity", out)
