"""Alerts as FHIR R4: ``Flag`` (the patient banner) and ``DetectedIssue`` (the alert with its
evidence and what clinicians did about it). Pure functions, no database access: callers pass the
alert with its rule, users and findings loaded (interop/views_alerts.py).

Ids: both resources carry the Alert's id, the same id as /api/v1/alerts/<id>. Evidence points at
the resources interop.mapping gives the data it fired on — a reading is ``Observation/reading-<id>``
(``reading_to_observation``), a questionnaire response ``QuestionnaireResponse/<id>``
(``response_to_fhir``) — so the references resolve against what /fhir/Observation and
/fhir/QuestionnaireResponse return."""

from typing import Any

from django.utils import translation

from accounts.models import User
from alerts.models import Alert, AlertFinding
from interop.mapping import reference

ALERT_ID_SYSTEM = "https://proplatform.dk/fhir/id/alert"
RULE_KIND_SYSTEM = "https://proplatform.dk/fhir/CodeSystem/alert-rule-kind"
ALERT_ACTION_SYSTEM = "https://proplatform.dk/fhir/CodeSystem/alert-action"
ALERT_OUTCOME_SYSTEM = "https://proplatform.dk/fhir/CodeSystem/alert-outcome"
SEVERITY_SYSTEM = "https://proplatform.dk/fhir/CodeSystem/alert-severity"
FLAG_CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/flag-category"
# R4 core extension on Flag; codes from http://hl7.org/fhir/flag-priority-code (IHE alert priority).
FLAG_PRIORITY_EXTENSION = "http://hl7.org/fhir/StructureDefinition/flag-priority"
FLAG_PRIORITY_SYSTEM = "http://hl7.org/fhir/flag-priority-code"
USER_SYSTEM = "urn:proplatform:user"

_PRIORITY = {"red": ("PH", "High priority"), "yellow": ("PM", "Medium priority")}
# DetectedIssue.severity (required binding: high | moderate | low)
_ISSUE_SEVERITY = {"red": "high", "yellow": "moderate"}
_SEVERITY_DISPLAY = {"red": "Red", "yellow": "Yellow"}


def _severity_coding(severity: str) -> dict[str, str]:
    return {"system": SEVERITY_SYSTEM, "code": severity, "display": _SEVERITY_DISPLAY.get(severity, severity)}


def _identifier(alert: Alert) -> list[dict[str, str]]:
    return [{"system": ALERT_ID_SYSTEM, "value": str(alert.pk)}]


def alert_to_flag(alert: Alert) -> dict[str, Any]:
    """A Flag for the patient banner: active while the alert is unresolved (open or
    acknowledged), inactive once resolved. The colour is the flag-priority extension (red = PH,
    yellow = PM) and, in our own words, a meta tag."""
    code, display = _PRIORITY.get(alert.severity, ("PL", "Low priority"))
    period: dict[str, str] = {"start": alert.raised_at.isoformat()}
    if alert.resolved_at is not None:
        period["end"] = alert.resolved_at.isoformat()
    return {
        "resourceType": "Flag",
        "id": str(alert.pk),
        "meta": {"tag": [_severity_coding(alert.severity)]},
        "extension": [{"url": FLAG_PRIORITY_EXTENSION, "valueCodeableConcept": {
            "coding": [{"system": FLAG_PRIORITY_SYSTEM, "code": code, "display": display}]}}],
        "identifier": _identifier(alert),
        "status": "inactive" if alert.status == "resolved" else "active",
        "category": [{"coding": [{"system": FLAG_CATEGORY_SYSTEM, "code": "clinical", "display": "Clinical"}],
                      "text": "Clinical"}],
        "code": {"text": alert.reason},
        "subject": reference("Patient", alert.patient_id),
        "period": period,
    }


def evidence_reference(source_key: str, evidence: dict[str, Any] | None = None) -> dict[str, str] | None:
    """The FHIR resource a finding fired on, from its source key ("reading:<id>",
    "response:<id>") or, for kinds with other keys, the ids in its evidence. None for sources
    with no FHIR resource of their own (e.g. a missed questionnaire)."""
    kind, _, id_ = source_key.partition(":")
    if kind == "reading" and id_.isdigit():
        return reference("Observation", f"reading-{id_}")
    if kind == "response" and id_.isdigit():
        return reference("QuestionnaireResponse", id_)
    evidence = evidence or {}
    if isinstance(evidence.get("reading_id"), int):
        return reference("Observation", f"reading-{evidence['reading_id']}")
    if isinstance(evidence.get("response_id"), int):
        return reference("QuestionnaireResponse", evidence["response_id"])
    return None


def _user_reference(user: User) -> dict[str, Any]:
    # Clinicians are users, not (yet) Practitioner resources: a logical reference by identifier.
    name = user.get_full_name() or user.get_username()
    return {"identifier": {"system": USER_SYSTEM, "value": str(user.pk)}, "display": name}


def _mitigations(alert: Alert) -> list[dict[str, Any]]:
    """What clinicians did: acknowledged, and resolved with its outcome and note."""
    out: list[dict[str, Any]] = []
    if alert.acknowledged_at is not None:
        item: dict[str, Any] = {
            "action": {"coding": [{"system": ALERT_ACTION_SYSTEM, "code": "acknowledged",
                                   "display": "Acknowledged"}], "text": "Acknowledged"},
            "date": alert.acknowledged_at.isoformat(),
        }
        if alert.acknowledged_by is not None:
            item["author"] = _user_reference(alert.acknowledged_by)
        out.append(item)
    if alert.resolved_at is not None:
        outcome = alert.outcome or ""
        with translation.override("en"):  # codes' displays are English, like the rest of our FHIR
            label = str(alert.get_outcome_display()) if outcome else ""
        text = f"Resolved: {label}" if label else "Resolved"
        if alert.resolution_note:
            text = f"{text}. {alert.resolution_note}"
        coding = [{"system": ALERT_ACTION_SYSTEM, "code": "resolved", "display": "Resolved"}]
        if outcome:
            coding = [{"system": ALERT_OUTCOME_SYSTEM, "code": outcome, "display": label}]
        item = {"action": {"coding": coding, "text": text}, "date": alert.resolved_at.isoformat()}
        if alert.resolved_by is not None:
            item["author"] = _user_reference(alert.resolved_by)
        out.append(item)
    return out


def alert_to_detected_issue(alert: Alert, *, findings: list[AlertFinding]) -> dict[str, Any]:
    """The alert as a DetectedIssue: preliminary while unresolved, final when resolved; severity
    high (red) or moderate (yellow); code = the rule; detail = the reason in words; one evidence
    entry per finding (its reason, and a reference to the reading or response it fired on).

    ``findings`` are the alert's AlertFinding rows in the order they happened; an alert without
    any (not expected) shows its own latest finding."""
    rule = alert.rule
    evidence: list[dict[str, Any]] = []
    sources: list[AlertFinding | Alert] = [*findings] if findings else [alert]
    for finding in sources:
        entry: dict[str, Any] = {"code": [{"text": finding.reason}]}
        ref = evidence_reference(finding.source_key, finding.evidence)
        if ref is not None:
            entry["detail"] = [ref]
        evidence.append(entry)
    resource: dict[str, Any] = {
        "resourceType": "DetectedIssue",
        "id": str(alert.pk),
        "meta": {"tag": [_severity_coding(alert.severity)]},
        "identifier": _identifier(alert),
        "status": "final" if alert.status == "resolved" else "preliminary",
        "code": {"coding": [{"system": RULE_KIND_SYSTEM, "code": rule.kind}], "text": rule.name},
        "severity": _ISSUE_SEVERITY.get(alert.severity, "low"),
        "patient": reference("Patient", alert.patient_id),
        "identifiedDateTime": alert.raised_at.isoformat(),
        "detail": alert.reason,
        "evidence": evidence,
    }
    mitigations = _mitigations(alert)
    if mitigations:
        resource["mitigation"] = mitigations
    return resource
