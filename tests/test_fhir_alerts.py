"""Alerts read as FHIR R4: Flag (patient banner) and DetectedIssue (with evidence and what was
done), validated with the R4B models (ADR 0001), scoped and audited like every patient read."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.detectedissue import DetectedIssue
from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.operationoutcome import OperationOutcome

from alerts.evaluation.responses import response_evaluate
from alerts.lifecycle import alert_acknowledge
from alerts.models import Alert, AlertFinding, Outcome, Rule, Severity, Status
from audit.models import Action, AuditEvent
from audit.models import Outcome as AuditOutcome
from interop.mapping import reading_to_observation, response_to_fhir
from interop.mapping_alerts import alert_to_detected_issue, alert_to_flag, evidence_reference
from monitoring.measures import MEASURES
from monitoring.models import Reading, Source
from questionnaires.models import QuestionnaireResponse
from tests.factories import evaluate

pytestmark = pytest.mark.django_db

FHIR = "application/fhir+json"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _reading(patient, value: str) -> Reading:
    return Reading.objects.create(patient=patient, measure="spo2", value=Decimal(value), unit="%",
                                  effective_at=timezone.now() - timedelta(minutes=5), source=Source.DEVICE)


@pytest.fixture
def red(cast):
    """Patient A's red SpO2 alert with two findings (two low readings)."""
    first, second = _reading(cast.patient_a, "88"), _reading(cast.patient_a, "86")
    evaluate([first.pk])
    evaluate([second.pk])
    alert = Alert.objects.get(patient=cast.patient_a)
    alert.readings = (first, second)
    return alert


def _resolve(alert: Alert, user) -> None:
    now = timezone.now()
    Alert.objects.filter(pk=alert.pk).update(status=Status.RESOLVED, resolved_at=now, resolved_by=user,
                                             acknowledged_at=now, acknowledged_by=user,
                                             outcome=Outcome.CALLED_PATIENT, resolution_note="Called; feels fine.")


def _loaded(alert: Alert) -> Alert:
    return Alert.objects.select_related("rule", "acknowledged_by", "resolved_by").get(pk=alert.pk)


def _findings(alert: Alert) -> list[AlertFinding]:
    return list(AlertFinding.objects.filter(alert=alert).order_by("found_at", "id"))


# --- mappers ----------------------------------------------------------------------------------

def test_an_unresolved_alert_is_an_active_clinical_flag_with_high_priority(cast, red):
    flag = alert_to_flag(_loaded(red))
    Flag.model_validate(flag)
    assert flag["status"] == "active"
    assert flag["category"][0]["coding"][0]["code"] == "clinical"
    assert flag["code"]["text"] == red.reason
    assert flag["subject"] == {"reference": f"Patient/{cast.patient_a.pk}"}
    assert flag["period"] == {"start": red.raised_at.isoformat()}
    assert flag["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "PH"
    assert flag["meta"]["tag"][0]["code"] == "red"


def test_an_acknowledged_alert_is_still_an_active_flag_and_a_resolved_one_inactive_with_an_end(cast, red):
    alert_acknowledge(alert=red, user=cast.clinician_a)
    assert alert_to_flag(_loaded(red))["status"] == "active"
    _resolve(red, cast.clinician_a)
    flag = alert_to_flag(_loaded(red))
    Flag.model_validate(flag)
    assert flag["status"] == "inactive"
    assert flag["period"]["end"] == _loaded(red).resolved_at.isoformat()


def test_a_yellow_alert_is_a_medium_priority_flag_and_a_moderate_issue(cast):
    rule = Rule.objects.get(program=cast.program_a, severity=Severity.YELLOW)
    alert = Alert.objects.create(patient=cast.patient_a, rule=rule, rule_version=1, severity=Severity.YELLOW,
                                 reason="Asks to be contacted.", evidence={}, source_key="missed:7")
    flag = alert_to_flag(_loaded(alert))
    Flag.model_validate(flag)
    assert flag["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "PM"
    issue = alert_to_detected_issue(_loaded(alert), findings=[])
    DetectedIssue.model_validate(issue)
    assert issue["severity"] == "moderate"
    # a missed questionnaire has no resource of its own: the evidence is its words only
    assert issue["evidence"] == [{"code": [{"text": "Asks to be contacted."}]}]


def test_a_detected_issue_lists_every_finding_with_a_reference_that_matches_the_observation_id(cast, red):
    issue = alert_to_detected_issue(_loaded(red), findings=_findings(red))
    DetectedIssue.model_validate(issue)
    assert issue["status"] == "preliminary"
    assert issue["severity"] == "high"
    assert issue["code"]["text"] == red.rule.name
    assert issue["detail"] == red.reason
    assert issue["identifiedDateTime"] == red.raised_at.isoformat()
    assert issue["patient"] == {"reference": f"Patient/{cast.patient_a.pk}"}
    measure = MEASURES["spo2"]
    observation_ids = [reading_to_observation(r, loinc=measure.loinc, display=measure.display)["id"]
                       for r in red.readings]
    assert [e["detail"][0]["reference"] for e in issue["evidence"]] == [f"Observation/{i}" for i in observation_ids]
    assert [e["code"][0]["text"] for e in issue["evidence"]] == [f.reason for f in _findings(red)]
    assert "mitigation" not in issue


def test_a_response_finding_references_the_questionnaire_response_by_its_fhir_id(cast):
    stored = QuestionnaireResponse.objects.create(
        patient=cast.patient_a, questionnaire=cast.questionnaire, author=cast.patient_a.user,
        items=[{"linkId": "contact", "answer": [{"valueBoolean": True}]}])
    response_evaluate(response_id=stored.pk)
    alert = Alert.objects.get(patient=cast.patient_a)
    issue = alert_to_detected_issue(_loaded(alert), findings=_findings(alert))
    DetectedIssue.model_validate(issue)
    assert issue["evidence"][0]["detail"] == [{"reference": f"QuestionnaireResponse/{response_to_fhir(stored)['id']}"}]
    # kinds with other source keys still point at the data through their evidence ids
    assert evidence_reference("combo:5", {"reading_id": 12}) == {"reference": "Observation/reading-12"}
    assert evidence_reference("combo:5", {"response_id": 3}) == {"reference": "QuestionnaireResponse/3"}
    assert evidence_reference("missed:9", {}) is None


def test_acknowledging_and_resolving_are_mitigations_with_who_when_and_the_outcome(cast, red):
    alert_acknowledge(alert=red, user=cast.clinician_a)
    _resolve(red, cast.clinician_a)
    issue = alert_to_detected_issue(_loaded(red), findings=_findings(red))
    DetectedIssue.model_validate(issue)
    assert issue["status"] == "final"
    acknowledged, resolved = issue["mitigation"]
    assert acknowledged["action"]["coding"][0]["code"] == "acknowledged"
    assert resolved["action"]["coding"][0]["code"] == "called-patient"
    assert resolved["action"]["text"] == "Resolved: Called the patient. Called; feels fine."
    assert resolved["author"]["identifier"]["value"] == str(cast.clinician_a.pk)
    assert resolved["date"] == _loaded(red).resolved_at.isoformat()


# --- endpoints --------------------------------------------------------------------------------

def test_flag_search_by_patient_and_status_returns_a_valid_searchset(cast, red):
    client = _client(cast.clinician_a)
    response = client.get("/fhir/Flag", {"patient": str(cast.patient_a.pk), "status": "active"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith(FHIR)
    bundle = Bundle.model_validate(response.json())
    assert bundle.total == 1
    Flag.model_validate(response.json()["entry"][0]["resource"])
    assert client.get("/fhir/Flag", {"patient": str(cast.patient_a.pk), "status": "inactive"}).json()["total"] == 0
    _resolve(red, cast.clinician_a)
    assert client.get("/fhir/Flag", {"patient": str(cast.patient_a.pk), "status": "active"}).json()["total"] == 0
    assert client.get("/fhir/Flag", {"patient": f"Patient/{cast.patient_a.pk}", "status": "inactive"}
                      ).json()["total"] == 1
    assert client.get("/fhir/Flag", {"patient": str(cast.patient_a.pk)}).json()["total"] == 1


def test_flag_and_detected_issue_reads_return_valid_resources(cast, red):
    client = _client(cast.clinician_a)
    flag = client.get(f"/fhir/Flag/{red.pk}")
    assert flag.status_code == 200
    assert Flag.model_validate(flag.json()).id == str(red.pk)
    issue = client.get(f"/fhir/DetectedIssue/{red.pk}")
    assert issue.status_code == 200
    body = issue.json()
    DetectedIssue.model_validate(body)
    assert len(body["evidence"]) == 2


def test_detected_issue_search_returns_each_alert_with_its_evidence(cast, red):
    response = _client(cast.clinician_a).get("/fhir/DetectedIssue", {"patient": str(cast.patient_a.pk)})
    assert response.status_code == 200
    bundle = response.json()
    Bundle.model_validate(bundle)
    assert bundle["total"] == 1
    resource = bundle["entry"][0]["resource"]
    DetectedIssue.model_validate(resource)
    assert resource["evidence"][0]["detail"][0]["reference"] == f"Observation/reading-{red.readings[0].pk}"


def test_searches_and_reads_are_audited(cast, red):
    client = _client(cast.clinician_a)
    client.get("/fhir/Flag", {"patient": str(cast.patient_a.pk), "status": "active"})
    client.get(f"/fhir/DetectedIssue/{red.pk}")
    search = AuditEvent.objects.get(resource=f"Flag?patient={cast.patient_a.pk}")
    assert (search.action, search.outcome, search.patient_ref) == (Action.SEARCH, AuditOutcome.ALLOWED,
                                                                  cast.patient_a.pk)
    read = AuditEvent.objects.get(resource=f"DetectedIssue/{red.pk} (FHIR)")
    assert (read.action, read.outcome, read.user) == (Action.READ, AuditOutcome.ALLOWED, cast.clinician_a)


# --- access -----------------------------------------------------------------------------------

def test_a_clinician_outside_the_patients_teams_gets_404_for_searches_and_reads(cast, red):
    user = cast.clinician_b
    client = _client(user)
    for url, params in ((f"/fhir/Flag/{red.pk}", {}), (f"/fhir/DetectedIssue/{red.pk}", {}),
                        ("/fhir/Flag", {"patient": str(cast.patient_a.pk)}),
                        ("/fhir/DetectedIssue", {"patient": str(cast.patient_a.pk)})):
        response = client.get(url, params)
        assert response.status_code == 404, url
        outcome = OperationOutcome.model_validate(response.json())
        assert outcome.issue[0].code == "not-found"
    denied = AuditEvent.objects.filter(user=user, outcome=AuditOutcome.DENIED, patient_ref=cast.patient_a.pk)
    assert denied.count() == 4


@pytest.mark.parametrize("who", ["quality", "patient_b"])
def test_people_who_do_not_triage_are_refused_before_any_lookup(cast, red, who):
    user = cast.patient_b.user if who == "patient_b" else getattr(cast, who)
    for url, params in ((f"/fhir/Flag/{red.pk}", {}), ("/fhir/DetectedIssue", {"patient": str(cast.patient_a.pk)})):
        response = _client(user).get(url, params)
        assert response.status_code == 403, url
        assert "Alma" not in response.content.decode()


def test_a_foreign_alert_and_a_missing_alert_answer_alike(cast, red):
    client = _client(cast.clinician_b)
    foreign, missing = client.get(f"/fhir/Flag/{red.pk}"), client.get(f"/fhir/Flag/{red.pk + 1000}")
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()
    assert foreign.json()["issue"][0]["diagnostics"] == "No such Flag."


def test_the_patients_own_team_and_an_administrator_may_read(cast, red):
    for user in (cast.clinician_a, cast.admin):
        assert _client(user).get(f"/fhir/DetectedIssue/{red.pk}").status_code == 200


def test_the_patient_may_not_read_the_care_teams_alert_resources(cast, red):
    # Mitigations carry clinicians' names and notes; patients see "seen by your care team".
    for url in (f"/fhir/DetectedIssue/{red.pk}", f"/fhir/Flag/{red.pk}",
                f"/fhir/DetectedIssue?patient={cast.patient_a.pk}", f"/fhir/Flag?patient={cast.patient_a.pk}"):
        response = _client(cast.patient_a.user).get(url)
        assert response.status_code == 403, url
        OperationOutcome.model_validate(response.json())


def test_anonymous_requests_are_refused_with_an_operation_outcome(cast, red):
    response = Client().get("/fhir/Flag", {"patient": str(cast.patient_a.pk)})
    assert response.status_code in (401, 403)
    OperationOutcome.model_validate(response.json())


# --- bad input --------------------------------------------------------------------------------

def test_a_search_without_a_patient_is_400(cast):
    for url in ("/fhir/Flag", "/fhir/DetectedIssue"):
        response = _client(cast.clinician_a).get(url)
        assert response.status_code == 400
        assert OperationOutcome.model_validate(response.json()).issue[0].code == "invalid"


def test_a_malformed_patient_id_is_400_and_a_cpr_number_is_never_written_to_the_audit_trail(cast):
    client = _client(cast.clinician_a)
    for value in ("not-a-uuid", "010150-1111", "0101501111"):
        for url in ("/fhir/Flag", "/fhir/DetectedIssue"):
            response = client.get(url, {"patient": value})
            assert response.status_code == 400
            outcome = OperationOutcome.model_validate(response.json())
            assert "UUID" in outcome.issue[0].diagnostics and value not in outcome.issue[0].diagnostics
    assert not AuditEvent.objects.filter(resource__contains="0101501111").exists()
    assert not AuditEvent.objects.filter(resource__contains="010150-1111").exists()


def test_an_unknown_flag_status_is_400(cast, red):
    response = _client(cast.clinician_a).get("/fhir/Flag", {"patient": str(cast.patient_a.pk), "status": "open"})
    assert response.status_code == 400
    outcome = OperationOutcome.model_validate(response.json())
    assert "active or inactive" in outcome.issue[0].diagnostics


@pytest.mark.parametrize("bad", ["abc", "-1", "1.5", "99999999999999999999999", "٣"])
def test_a_malformed_or_unknown_id_is_a_404_operation_outcome(cast, red, bad):
    for kind in ("Flag", "DetectedIssue"):
        response = _client(cast.clinician_a).get(f"/fhir/{kind}/{bad}")
        assert response.status_code == 404
        assert OperationOutcome.model_validate(response.json()).issue[0].code == "not-found"


def test_writes_are_refused_with_an_operation_outcome(cast, red):
    response = _client(cast.clinician_a).post(f"/fhir/Flag/{red.pk}", {}, content_type=FHIR)
    assert response.status_code == 405
    OperationOutcome.model_validate(response.json())


# --- capability statement ---------------------------------------------------------------------

def test_the_capability_statement_offers_flag_and_detected_issue(db, client):
    body = client.get("/fhir/metadata").json()
    CapabilityStatement.model_validate(body)
    resources = {r["type"]: r for r in body["rest"][0]["resource"]}
    assert {i["code"] for i in resources["Flag"]["interaction"]} == {"read", "search-type"}
    assert {p["name"] for p in resources["Flag"]["searchParam"]} == {"patient", "status", "date", "_id",
                                                                     "_lastUpdated"}
    assert {i["code"] for i in resources["DetectedIssue"]["interaction"]} == {"read", "search-type"}
