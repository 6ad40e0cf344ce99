"""An answer's own time (issue 19, item 8): FHIR ``authored`` is stored as the answer's time and
the receipt apart; the rules and the schedule judge the answer at its own time, so a late
upload pairs with the readings of when it was given and completes the occurrence it answered;
an impossible ``authored`` is refused naming the element, with nothing stored."""

import json
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from alerts.evaluation.missed import missed_evaluate
from alerts.evaluation.responses import response_evaluate
from alerts.models import Alert, AlertFinding, Rule, Status
from alerts.rules.context import Context
from interop.mapping import response_to_fhir
from monitoring.models import Reading, Source
from questionnaires.models import QuestionnaireResponse
from schedules.models import MissedOccurrence, Occurrence, OccurrenceStatus, Schedule
from schedules.services import occurrences_advance
from tests.factories import evaluate

pytestmark = pytest.mark.django_db

FHIR = "application/fhir+json"
HOUR = timedelta(hours=1)


def _qr(cast, authored, *, code="much-worse", identifier="app-1"):
    body = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{cast.questionnaire.url}|{cast.questionnaire.version}",
        "status": "completed",
        "subject": {"reference": f"Patient/{cast.patient_a.pk}"},
        "identifier": {"system": "urn:app", "value": identifier},
        "item": [
            {"linkId": "breathless", "answer": [{"valueCoding": {
                "system": "https://proplatform.example/fhir/CodeSystem/change", "code": code}}]},
            {"linkId": "swelling", "answer": [{"valueBoolean": False}]},
            {"linkId": "contact", "answer": [{"valueBoolean": False}]},
        ],
    }
    if authored is not None:
        body["authored"] = authored.isoformat() if isinstance(authored, datetime) else authored
    return body


def _post(cast, body):
    client = Client()
    client.force_login(cast.patient_a.user)
    return client.post("/fhir/QuestionnaireResponse", json.dumps(body), content_type=FHIR)


def _upload(cast, authored, **kwargs):
    """POST the response and evaluate it as the worker would after commit."""
    answer = _post(cast, _qr(cast, authored, **kwargs))
    assert answer.status_code == 201, answer.json()
    response_evaluate(response_id=int(answer.json()["id"]))
    return QuestionnaireResponse.objects.get(pk=answer.json()["id"])


def _refused(answer):
    assert answer.status_code == 400, answer.status_code
    [issue] = answer.json()["issue"]
    assert issue["expression"] == ["QuestionnaireResponse.authored"]
    assert not QuestionnaireResponse.objects.exists()
    return issue["diagnostics"]


# --- stored as sent ----------------------------------------------------------------------------

def test_a_fhir_authored_time_is_stored_as_the_answers_time_and_the_receipt_apart(cast):
    authored = (timezone.now() - 30 * HOUR).replace(microsecond=0)
    before = timezone.now()
    response = _upload(cast, authored)
    assert response.authored_at == authored
    assert response.received_at >= before
    out = response_to_fhir(response)
    assert out["authored"] == authored.isoformat()
    assert out["meta"]["lastUpdated"] == response.received_at.isoformat()


def test_without_authored_the_answers_time_is_its_receipt(cast):
    response = _upload(cast, None)
    assert response.authored_at == response.received_at


# --- the combination rule pairs by the answer's own time ------------------------------------------

@pytest.fixture
def pair_rule(cast):
    # As tests/test_rules_combination.py: breathless at least "a bit more" and SpO2 < 92 % within 24 h.
    Rule.objects.filter(kind="threshold").update(active=False)
    return Rule.objects.create(
        program=cast.program_a, kind="combination", name="Breathless and low SpO2", severity="red",
        params={"answer": {"questionnaire": cast.questionnaire.url, "link_id": "breathless", "min_grade": 1},
                "reading": {"measure": "spo2", "comparison": "<", "value": 92}, "window_hours": 24})


def _low_spo2(cast, measured):
    reading = Reading.objects.create(patient=cast.patient_a, measure="spo2", value=Decimal("88"), unit="%",
                                     effective_at=measured, source=Source.DEVICE)
    evaluate([reading.pk])
    return reading


def test_a_breathless_answer_authored_48_hours_before_a_low_spo2_but_uploaded_after_it_does_not_combine(
        cast, pair_rule):
    measured = timezone.now() - HOUR
    _low_spo2(cast, measured)
    _upload(cast, measured - 48 * HOUR)  # the phone was offline for two days
    assert not Alert.objects.filter(rule=pair_rule).exists()


def test_a_breathless_answer_authored_6_hours_before_a_low_spo2_but_uploaded_after_it_combines(cast, pair_rule):
    measured = timezone.now() - HOUR
    reading = _low_spo2(cast, measured)
    response = _upload(cast, measured - 6 * HOUR)
    [alert] = Alert.objects.filter(rule=pair_rule)
    assert (alert.evidence["response_id"], alert.evidence["reading_id"]) == (response.pk, reading.pk)
    assert alert.evidence["authored_at"] == (measured - 6 * HOUR).isoformat()


# --- refused, nothing stored -------------------------------------------------------------------------

def test_an_authored_time_in_the_future_beyond_the_clock_skew_is_refused_and_nothing_stored(cast, settings):
    settings.RESPONSE_CLOCK_SKEW_SECONDS = 300
    message = _refused(_post(cast, _qr(cast, timezone.now() + timedelta(minutes=10))))
    assert "fremtiden" in message  # Danish by default


def test_an_authored_time_a_few_minutes_ahead_is_clock_skew_and_accepted(cast, settings):
    settings.RESPONSE_CLOCK_SKEW_SECONDS = 300
    assert _post(cast, _qr(cast, timezone.now() + timedelta(minutes=4))).status_code == 201


def test_an_authored_time_before_the_patient_was_enrolled_is_refused_and_nothing_stored(cast):
    # Patient A's record is new; the earliest episode started 30 days ago (tests.factories).
    first_day = cast.patient_a.episodes.order_by("treatment_start").first().treatment_start
    assert first_day == timezone.localdate() - timedelta(days=30)
    message = _refused(_post(cast, _qr(cast, timezone.now() - timedelta(days=31))))
    assert "tilmeldt" in message
    # From the episode's first day on, answers brought over from before registration are taken.
    assert _post(cast, _qr(cast, timezone.now() - timedelta(days=29))).status_code == 201


@pytest.mark.parametrize("authored", [
    "2026-03-01T09:30:00",        # no time zone: which instant?
    "2026-03-01",                 # a date names no instant
    "2026-02-30T09:30:00+01:00",  # no such day
    "yesterday",
    1772350200,                   # not a FHIR dateTime string
])
def test_a_malformed_or_zoneless_authored_is_refused_naming_the_element(cast, authored):
    _refused(_post(cast, _qr(cast, authored)))


# --- a late upload completes the occurrence it answered -------------------------------------------

@pytest.fixture
def missed(cast):
    """An occurrence due two days ago, open 12 hours, recorded as missed when its deadline passed."""
    schedule = Schedule.objects.create(program=cast.program_a, name="daily", questionnaire_url=cast.questionnaire.url,
                                       kind="every", params={"every_days": 1, "from_day": 0, "to_day": 60},
                                       window=timedelta(hours=12))
    due = timezone.now() - timedelta(days=2)
    occurrence = Occurrence.objects.create(
        patient=cast.patient_a, episode=cast.patient_a.episodes.get(), schedule=schedule,
        questionnaire_url=cast.questionnaire.url, questionnaire=cast.questionnaire,
        opens_at=due, due_at=due, closes_at=due + schedule.window, status=OccurrenceStatus.OPEN)
    occurrences_advance(now=occurrence.closes_at + timedelta(minutes=1))
    return MissedOccurrence.objects.get(occurrence=occurrence)


@pytest.fixture
def missed_rule(cast):
    return Rule.objects.create(program=cast.program_a, kind="missed", name="Not answered", severity="yellow",
                               params={"questionnaire": cast.questionnaire.url, "grace_hours": 0})


def test_a_late_upload_completes_the_earlier_occurrence_whose_window_held_its_time_and_no_miss_alert_fires(
        cast, missed, missed_rule):
    authored = missed.occurrence.due_at + 2 * HOUR
    response = _upload(cast, authored, code="same")
    occurrence = Occurrence.objects.get(pk=missed.occurrence_id)
    assert (occurrence.status, occurrence.response_id, occurrence.completed_at) == (
        OccurrenceStatus.COMPLETED, response.pk, authored)
    missed.refresh_from_db()
    assert missed.answered_late_by_id == response.pk and missed.processed_at is not None
    assert missed_evaluate(now=timezone.now()) == 0
    assert not Alert.objects.filter(rule=missed_rule).exists()


def test_an_answer_given_after_the_deadline_does_not_complete_the_missed_occurrence(cast, missed, missed_rule):
    _upload(cast, missed.occurrence.closes_at + HOUR, code="same")
    assert Occurrence.objects.get(pk=missed.occurrence_id).status == OccurrenceStatus.MISSED
    missed.refresh_from_db()
    assert missed.answered_late_by is None and missed.processed_at is None


def test_a_late_upload_after_the_miss_alert_was_raised_is_shown_on_the_open_alert(cast, missed, missed_rule):
    assert missed_evaluate(now=timezone.now()) == 1
    [alert] = Alert.objects.filter(rule=missed_rule)
    response = _upload(cast, missed.occurrence.due_at + 2 * HOUR, code="same")
    alert.refresh_from_db()
    # Left open for the nurse (she may have acted already), with the answer and why in its reason.
    assert alert.status == Status.OPEN
    assert alert.evidence["response_id"] == response.pk and alert.evidence["answered_late"] is True
    late = AlertFinding.objects.get(alert=alert, source_key=f"late:{response.pk}")
    assert late.reason == alert.reason
    assert alert.events.filter(kind="evidence-added", data__answered_late=True).count() == 1
    missed.refresh_from_db()
    assert missed.answered_late_by_id == response.pk


def test_back_testing_sees_a_late_upload_complete_its_occurrence_only_from_its_receipt(cast, missed):
    response = _upload(cast, missed.occurrence.due_at + 2 * HOUR, code="same")

    def status(ctx):
        [past] = ctx.occurrences_before(cast.patient_a.pk, cast.questionnaire.url, before=timezone.now(), limit=1)
        return past.status

    assert status(Context(now=timezone.now())) == "completed"
    before_receipt = response.received_at - HOUR  # after the deadline, before the upload
    assert status(Context(now=before_receipt, as_of=before_receipt)) == "missed"


# --- existing rows ---------------------------------------------------------------------------------

def test_the_migration_gives_existing_answers_their_authored_time_as_receipt(cast):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("questionnaires.migrations.0004_response_received_at")
    old = QuestionnaireResponse.objects.create(patient=cast.patient_a, questionnaire=cast.questionnaire, items=[],
                                               authored_at=timezone.now() - timedelta(days=3))
    assert old.received_at != old.authored_at
    migration.received_is_authored(apps, None)
    old.refresh_from_db()
    assert old.received_at == old.authored_at
