"""The Observation search's round trips (docs/benchmarks.md, "FHIR search in keyset pages"): the
access check and its audit rows in one statement (patients.access_sql), sent with the reading
page and the survey side in one round trip (interop.search_sql) — and nothing of the check or
the audit lost on the way, nothing of a patient out of scope read. The query counts are pinned
so that a new round trip cannot creep in unseen.

Run on PostgreSQL too (DATABASE_URL=…): there the combined statements are used; on SQLite the
same answers come from one statement each."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.http import Http404
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerts.models import Alert, Rule, Status
from audit.models import Action, AuditEvent
from monitoring.models import Reading, Source
from patients.access import patient_or_404
from patients.access_sql import patients_or_404_audited
from patients.models import TreatmentEpisode
from questionnaires.models import QuestionnaireResponse
from tests.factories import Cast

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 3, 5, 9, 0, tzinfo=UTC)
POSTGRES = connection.vendor == "postgresql"


def _request(user):
    request = RequestFactory().get("/fhir/Observation", REMOTE_ADDR="192.0.2.7")
    request.user = user
    return request


def _audit_rows(since: int) -> list[tuple[object, ...]]:
    return list(AuditEvent.objects.filter(pk__gt=since).order_by("pk").values_list(
        "user_id", "username", "role", "patient_ref", "action", "resource", "outcome", "client_ip"))


def _last_audit_pk() -> int:
    return AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def _both_ways(user, ids: list[uuid.UUID]):
    """(patients or 404, audit rows) from patient_or_404 per id, and from the one statement."""
    answers = []
    for one_statement in (False, True):
        before = _last_audit_pk()
        found: list[uuid.UUID] | str
        try:
            if one_statement:
                found = [p.pk for p in patients_or_404_audited(_request(user), ids, action=Action.SEARCH,
                                                               resource=lambda pk: f"Observation?patient={pk}")]
            else:
                each: list[uuid.UUID | None] = []
                for pk in ids:  # as the search did before: every id checked; 404 after the rows
                    try:
                        each.append(patient_or_404(_request(user), pk, action=Action.SEARCH,
                                                   resource=f"Observation?patient={pk}").pk)
                    except Http404:
                        each.append(None)
                found = [pk for pk in each if pk is not None] if None not in each else "404"
        except Http404:
            found = "404"
        answers.append((found, _audit_rows(before)))
    return answers


@pytest.mark.parametrize("who", ["patient_a", "clinician_a", "clinician_b", "admin", "quality"])
def test_the_one_statement_check_answers_and_audits_as_patient_or_404_for_every_member_of_the_cast(cast, who):
    user = getattr(cast, who).user if who == "patient_a" else getattr(cast, who)
    for ids in ([cast.patient_a.pk], [cast.patient_b.pk], sorted([cast.patient_a.pk, cast.patient_b.pk]),
                [uuid.uuid4()]):
        per_id, one_statement = _both_ways(user, ids)
        assert one_statement == per_id, (who, ids)
        assert len(one_statement[1]) == len(ids)  # one row per patient named, allowed or denied


@pytest.mark.parametrize(("ended_days_ago", "open_alert", "visible"), [
    (10, False, True), (200, False, False), (200, True, True)])
def test_the_one_statement_check_keeps_the_grace_period_and_the_unfinished_work_rule(
        cast, ended_days_ago, open_alert, visible):
    TreatmentEpisode.objects.filter(patient=cast.patient_a).update(
        end=timezone.localdate() - timedelta(days=ended_days_ago))
    if open_alert:
        Alert.objects.create(patient=cast.patient_a, rule=Rule.objects.filter(program=cast.program_a).first(),
                             rule_version=1, status=Status.OPEN, severity="red", reason="SpO2 low", evidence={},
                             source_key="test")
    per_id, one_statement = _both_ways(cast.clinician_a, [cast.patient_a.pk])
    assert one_statement == per_id
    assert (one_statement[0] != "404") is visible
    assert [row[6] for row in one_statement[1]] == ["allowed" if visible else "denied"]


def test_the_grace_period_setting_is_honoured_by_the_one_statement_check(cast, settings):
    TreatmentEpisode.objects.filter(patient=cast.patient_a).update(end=timezone.localdate() - timedelta(days=20))
    for days, visible in ((30, True), (10, False)):
        settings.CARE_ACCESS_GRACE_DAYS = days
        per_id, one_statement = _both_ways(cast.clinician_a, [cast.patient_a.pk])
        assert one_statement == per_id and (one_statement[0] != "404") is visible


def test_an_inactive_clinician_sees_nobody_and_is_audited_as_denied(cast):
    cast.clinician_a.is_active = False
    cast.clinician_a.save()
    per_id, one_statement = _both_ways(cast.clinician_a, [cast.patient_a.pk])
    assert one_statement == per_id and one_statement[0] == "404"


# --- The whole request: queries pinned, audit row and scope kept --------------------------------

def _seed(cast: Cast) -> None:
    Reading.objects.bulk_create([
        Reading(patient=cast.patient_a, measure="spo2", value=Decimal("95"), unit="%", source=Source.DEVICE,
                effective_at=T0 + timedelta(minutes=i)) for i in range(150)])
    QuestionnaireResponse.objects.create(
        patient=cast.patient_a, questionnaire=cast.questionnaire, author=cast.patient_a.user, items=[],
        authored_at=T0, scores=[{"code": {"system": "http://loinc.org", "code": "44261-6", "display": "x"},
                                 "value": 4}])


# PostgreSQL: the session, the user, and one round trip for the access check with its audit row,
# the reading page (the total as its subquery) and the survey side. SQLite: the check, the audit
# row, the page and the survey side are a statement each.
EXPECTED_QUERIES = 3 if POSTGRES else 6


def test_a_clinicians_observation_search_makes_a_pinned_number_of_queries_on_every_page(cast):
    _seed(cast)
    client = Client()
    client.force_login(cast.clinician_a)
    params = {"patient": str(cast.patient_a.pk), "code": "http://loinc.org|59408-5", "_sort": "-date",
              "_count": "100"}
    # The session's first request also saves its "last seen" (accounts.middleware, once a minute).
    assert client.get("/fhir/Observation", params).status_code == 200
    before = _last_audit_pk()
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/fhir/Observation", params)
    assert response.status_code == 200
    assert len(queries.captured_queries) == EXPECTED_QUERIES, "\n".join(q["sql"][:99] for q in queries.captured_queries)
    body = response.json()
    assert body["total"] == 150 and len(body["entry"]) == 100
    next_url = next(link["url"] for link in body["link"] if link["relation"] == "next")
    cursor = next_url.split("_cursor=")[1].split("&")[0]
    from urllib.parse import unquote

    with CaptureQueriesContext(connection) as queries:
        response = client.get("/fhir/Observation", {**params, "_cursor": unquote(cursor)})
    assert response.status_code == 200 and len(response.json()["entry"]) == 50
    assert len(queries.captured_queries) == EXPECTED_QUERIES
    # Each page's read is in the trail, naming the patient.
    rows = _audit_rows(before)
    assert [(r[3], r[4], r[6]) for r in rows] == [(cast.patient_a.pk, "search", "allowed")] * 2
    assert rows[0][5] == f"Observation?patient={cast.patient_a.pk}"


def test_another_teams_clinician_gets_404_and_a_denied_row_and_sees_no_reading(cast):
    _seed(cast)
    client = Client()
    client.force_login(cast.clinician_b)
    before = _last_audit_pk()
    response = client.get("/fhir/Observation", {"patient": str(cast.patient_a.pk), "code": "59408-5"})
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"
    assert b"reading-" not in response.content
    assert [(r[3], r[6]) for r in _audit_rows(before)] == [(cast.patient_a.pk, "denied")]


@pytest.mark.skipif(not POSTGRES, reason="the one-statement check is PostgreSQL's (SQLite checks first, then reads)")
def test_the_gate_sent_with_the_check_reads_nothing_of_a_patient_out_of_scope(cast):
    from patients.access_sql import access_check

    _seed(cast)
    mine = access_check(_request(cast.clinician_a), [cast.patient_a.pk], action=Action.SEARCH, resource=str)
    foreign = access_check(_request(cast.clinician_b), [cast.patient_a.pk], action=Action.SEARCH, resource=str)
    both = access_check(_request(cast.clinician_a), sorted([cast.patient_a.pk, cast.patient_b.pk]),
                        action=Action.SEARCH, resource=str)
    assert mine is not None and foreign is not None and both is not None
    readings = Reading.objects.filter(patient=cast.patient_a)
    assert readings.filter(mine.gate).count() == 150
    assert readings.filter(foreign.gate).count() == 0
    assert readings.filter(both.gate).count() == 0  # one id out of scope closes the gate for all
