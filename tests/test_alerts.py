"""Rules raise alerts once per finding; clinicians acknowledge them exactly once."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone, translation

from accounts.models import ApiToken
from alerts.evaluation import PendingEvaluation, enqueue
from alerts.evaluation import Source as EvaluationSource
from alerts.evaluation.readings import readings_evaluate
from alerts.evaluation.responses import response_evaluate
from alerts.models import Alert, AlertEvent, AlertFinding, EventKind, Rule, Status
from alerts.selectors_readings import readings_unevaluated_ids
from audit.models import Action, AuditEvent, Outcome
from monitoring.models import Reading, Source
from questionnaires.models import QuestionnaireResponse
from tests.factories import evaluate

pytestmark = pytest.mark.django_db


def _reading(patient, value, measure="spo2", unit="%"):
    return Reading.objects.create(patient=patient, measure=measure, value=Decimal(value), unit=unit,
                                  effective_at=timezone.now() - timedelta(minutes=5),
                                  source=Source.DEVICE)


@pytest.fixture
def alert_a(cast):
    evaluate([_reading(cast.patient_a, "88").pk])
    return Alert.objects.get()


# --- evaluation ------------------------------------------------------------------------------

def test_evaluating_the_same_batch_twice_raises_one_alert_and_one_raised_event(cast):
    batch = enqueue(source=EvaluationSource.READING, after_commit=False, ids=[_reading(cast.patient_a, "88").pk])
    assert readings_evaluate(batch_ids=[batch]) == 1
    assert readings_evaluate(batch_ids=[batch]) == 0  # a task delivered twice finds nothing left
    assert not PendingEvaluation.objects.exists()
    assert Alert.objects.count() == 1
    assert list(AlertEvent.objects.values_list("kind", flat=True)) == [EventKind.RAISED]


def test_re_evaluating_a_reading_whose_claim_was_lost_still_raises_one_alert(cast):
    # e.g. the sweep re-delivers after a crash that happened after the alert was committed
    reading = _reading(cast.patient_a, "88")
    evaluate([reading.pk])
    assert evaluate([reading.pk]) == 1  # pending again, as if its claim had been lost
    assert Alert.objects.count() == 1
    assert AlertEvent.objects.count() == 1


def test_reason_follows_the_active_language(cast):
    reading = _reading(cast.patient_a, "91")
    with translation.override("en"):
        evaluate([reading.pk])
    assert Alert.objects.get().reason == "Oxygen saturation (SpO2) 91 % is below the limit of 92 %."


def test_value_exactly_at_the_limit_raises_nothing(cast):
    reading = _reading(cast.patient_a, "92")
    assert evaluate([reading.pk]) == 1
    assert not Alert.objects.exists()
    assert reading.pk not in readings_unevaluated_ids()


def test_value_just_below_the_limit_raises_a_red_alert_with_a_plain_reason(cast):
    reading = _reading(cast.patient_a, "91")
    evaluate([reading.pk])
    alert = Alert.objects.get()
    assert alert.severity == "red"
    assert alert.rule.program == cast.program_a
    assert alert.rule_version == alert.rule.version
    # Reasons are written in the clinic's language (LANGUAGE_CODE, Danish by default).
    assert alert.reason == "Iltmætning (SpO2) 91 % er under grænsen på 92 %."
    assert alert.evidence == {
        "reading_id": reading.pk, "measure": "spo2", "component": "value", "value": "91", "unit": "%",
        "effective_at": reading.effective_at.isoformat(), "limit": "92",
    }


def test_reading_of_another_measure_raises_nothing(cast):
    evaluate([_reading(cast.patient_a, "30", measure="heart-rate", unit="/min").pk])
    assert not Alert.objects.exists()


def test_inactive_rule_raises_nothing(cast):
    Rule.objects.filter(kind="threshold").update(active=False)
    evaluate([_reading(cast.patient_a, "80").pk])
    assert not Alert.objects.exists()


def test_rules_of_an_ended_episode_raise_nothing(cast):
    cast.patient_a.episodes.update(end=timezone.localdate() - timedelta(days=1))
    evaluate([_reading(cast.patient_a, "80").pk])
    assert not Alert.objects.exists()


def test_several_readings_in_one_evaluation_each_raise_their_own_alert(cast):
    ids = [_reading(cast.patient_a, "85").pk, _reading(cast.patient_b, "86").pk,
           _reading(cast.patient_a, "95").pk]
    assert evaluate(ids) == 3
    assert set(Alert.objects.values_list("patient_id", flat=True)) == {cast.patient_a.pk, cast.patient_b.pk}
    assert Alert.objects.count() == 2


# --- acknowledging ---------------------------------------------------------------------------

def _ack(client, alert_id):
    return client.post(f"/api/v1/alerts/{alert_id}/acknowledge")


def test_clinician_acknowledges_an_alert_of_their_team(cast, client, alert_a):
    client.force_login(cast.clinician_a)
    response = _ack(client, alert_a.pk)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "acknowledged"
    assert body["acknowledged_by"] == "clinician-a"
    assert body["acknowledged_at"]
    alert_a.refresh_from_db()
    assert alert_a.status == Status.ACKNOWLEDGED
    assert alert_a.acknowledged_by == cast.clinician_a
    event = AlertEvent.objects.get(kind=EventKind.ACKNOWLEDGED)
    assert (event.alert, event.by) == (alert_a, cast.clinician_a)
    row = AuditEvent.objects.get(action=Action.UPDATE)
    assert row.user == cast.clinician_a
    assert row.patient_ref == cast.patient_a.pk
    assert row.outcome == Outcome.ALLOWED
    assert row.request_id == response["X-Request-ID"]
    assert str(alert_a.pk) in row.resource


def test_acknowledging_twice_gives_409_naming_who_was_first(cast, client, alert_a):
    client.force_login(cast.clinician_a)
    assert _ack(client, alert_a.pk).status_code == 200
    client.force_login(cast.admin)
    response = _ack(client, alert_a.pk)
    assert response.status_code == 409
    assert response.json()["acknowledged_by"] == "clinician-a"
    assert response.json()["status"] == "acknowledged"
    assert AlertEvent.objects.filter(kind=EventKind.ACKNOWLEDGED).count() == 1
    alert_a.refresh_from_db()
    assert alert_a.acknowledged_by == cast.clinician_a


def test_same_clinician_acknowledging_again_gets_409(cast, client, alert_a):
    client.force_login(cast.clinician_a)
    assert _ack(client, alert_a.pk).status_code == 200
    assert _ack(client, alert_a.pk).status_code == 409


def test_clinician_on_other_team_gets_404_acknowledging_and_the_alert_stays_open(cast, client, alert_a):
    client.force_login(cast.clinician_b)
    response = _ack(client, alert_a.pk)
    assert response.status_code == 404
    assert "Alma" not in response.content.decode()
    alert_a.refresh_from_db()
    assert alert_a.status == Status.OPEN
    assert not AlertEvent.objects.filter(kind=EventKind.ACKNOWLEDGED).exists()
    row = AuditEvent.objects.get(action=Action.UPDATE)
    assert row.outcome == Outcome.DENIED
    assert row.user == cast.clinician_b


def test_acknowledging_an_unknown_alert_gives_404(cast, client):
    client.force_login(cast.clinician_a)
    assert _ack(client, 987654).status_code == 404


@pytest.mark.parametrize("who", ["patient", "quality"])
def test_non_clinicians_get_403_acknowledging(cast, client, alert_a, who):
    client.force_login(cast.patient_a.user if who == "patient" else cast.quality)
    assert _ack(client, alert_a.pk).status_code == 403
    alert_a.refresh_from_db()
    assert alert_a.status == Status.OPEN


def test_anonymous_acknowledging_gets_401(cast, client, alert_a):
    assert _ack(client, alert_a.pk).status_code == 401
    alert_a.refresh_from_db()
    assert alert_a.status == Status.OPEN


def test_clinician_with_bearer_token_acknowledges(cast, client, alert_a):
    _, raw = ApiToken.issue(cast.clinician_a)
    response = client.post(f"/api/v1/alerts/{alert_a.pk}/acknowledge",
                           headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 200
    assert response.json()["acknowledged_by"] == "clinician-a"


def test_acknowledging_is_refused_over_get(cast, client, alert_a):
    client.force_login(cast.clinician_a)
    assert client.get(f"/api/v1/alerts/{alert_a.pk}/acknowledge").status_code == 405
    alert_a.refresh_from_db()
    assert alert_a.status == Status.OPEN


# --- the answer rule -------------------------------------------------------------------------

def _answer(client, cast, contact):
    # The questions share page 1; Next leads to the review page, where "Send" submits.
    page = client.post(f"/me/questionnaires/{cast.questionnaire.pk}/page/1/", {
        "q-breathless": "same", "q-swelling": "false", "q-contact": contact, "action": "next",
    })
    assert page.status_code == 302, page.content
    return client.post(page["Location"], {"identifier": ""})


def test_answering_contact_yes_raises_a_yellow_alert_with_a_plain_words_reason(
        cast, client, django_capture_on_commit_callbacks):
    client.force_login(cast.patient_a.user)
    with django_capture_on_commit_callbacks(execute=True):
        response = _answer(client, cast, "true")
    assert response.status_code == 302
    alert = Alert.objects.get()
    assert alert.patient == cast.patient_a
    assert alert.severity == "yellow"
    assert alert.rule.kind == "answer"
    # The question as the patient saw it and the answer in words, not a code or a boolean.
    assert "Vil du gerne kontaktes af os?" in alert.reason
    assert "true" not in alert.reason.lower()
    assert "True" not in alert.reason
    response_row = QuestionnaireResponse.objects.get()
    assert alert.evidence["response_id"] == response_row.pk
    assert alert.evidence["code"] == "true"
    assert response_row.evaluated_at is not None


def test_answering_contact_no_raises_nothing(cast, client, django_capture_on_commit_callbacks):
    client.force_login(cast.patient_a.user)
    with django_capture_on_commit_callbacks(execute=True):
        assert _answer(client, cast, "false").status_code == 302
    assert QuestionnaireResponse.objects.get().evaluated_at is not None
    assert not Alert.objects.exists()


def test_evaluating_the_same_response_twice_raises_one_alert(
        cast, client, django_capture_on_commit_callbacks):
    client.force_login(cast.patient_a.user)
    with django_capture_on_commit_callbacks(execute=True):
        _answer(client, cast, "true")
    response_row = QuestionnaireResponse.objects.get()
    assert response_evaluate(response_id=response_row.pk) == 0
    QuestionnaireResponse.objects.filter(pk=response_row.pk).update(evaluated_at=None)
    assert response_evaluate(response_id=response_row.pk) == 1
    assert Alert.objects.count() == 1
    assert AlertEvent.objects.count() == 1


def test_a_new_alert_shows_up_in_the_teams_worklist(cast, client, django_capture_on_commit_callbacks):
    client.force_login(cast.patient_a.user)
    with django_capture_on_commit_callbacks(execute=True):
        _answer(client, cast, "true")
    client.force_login(cast.clinician_a)
    worklist = client.get("/api/v1/alerts").json()
    assert [a["severity"] for a in worklist] == ["yellow"]
    assert worklist[0]["patient"]["name"] == str(cast.patient_a)


def test_blood_pressure_rules_watch_systolic_or_diastolic_as_configured(cast):
    Rule.objects.create(program=cast.program_a, kind="threshold", name="Systolic above 160", severity="yellow",
                        params={"measure": "blood-pressure", "high": 160})
    Rule.objects.create(program=cast.program_a, kind="threshold", name="Diastolic above 100", severity="red",
                        params={"measure": "blood-pressure", "high": 100, "component": "value2"})
    reading = Reading.objects.create(patient=cast.patient_a, measure="blood-pressure", value=150, value2=105,
                                     unit="mm[Hg]", effective_at=timezone.now(), source=Source.DEVICE)
    with translation.override("en"):
        evaluate([reading.pk])
    alert = Alert.objects.get()
    assert alert.rule.name == "Diastolic above 100" and alert.severity == "red"
    assert alert.reason == "Blood pressure (diastolic) 105 mmHg is above the limit of 100 mmHg."


def test_a_diastolic_rule_on_a_one_part_measure_is_refused():
    from django.core.exceptions import ValidationError

    from alerts.rules import parse_params

    with pytest.raises(ValidationError, match="second component"):
        parse_params("threshold", {"measure": "spo2", "low": 90, "component": "value2"})


def test_a_round_reading_is_stored_in_the_evidence_as_written(cast):
    # Decimal("90").normalize() prints as "9E+1"; a nurse must read 90.
    rule = Rule.objects.create(program=cast.program_a, kind="threshold", name="Pulse", severity="red",
                               params={"measure": "heart-rate", "high": 80})
    reading = Reading.objects.create(patient=cast.patient_a, measure="heart-rate", value=90, unit="/min",
                                     effective_at=timezone.now(), source="api")
    evaluate([reading.pk])
    alert = Alert.objects.get(rule=rule)
    assert (alert.evidence["value"], alert.evidence["limit"]) == ("90", "80")
    assert "9E+1" not in alert.reason


def test_a_reading_half_past_midnight_in_copenhagen_on_the_treatment_start_day_is_judged_by_that_day(cast):
    # 00:30 on 15 January in Copenhagen is 23:30 on the 14th in UTC: the UTC date lies before
    # the episode, the Danish date does not.
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from patients.models import TreatmentEpisode

    copenhagen = ZoneInfo("Europe/Copenhagen")
    start = datetime(2026, 1, 15, 0, 30, tzinfo=copenhagen)
    TreatmentEpisode.objects.filter(patient=cast.patient_a).update(treatment_start=start.date())
    reading = Reading.objects.create(patient=cast.patient_a, measure="spo2", value=85, unit="%",
                                     effective_at=start, source="api")
    evaluate([reading.pk])
    assert Alert.objects.filter(patient=cast.patient_a, evidence__reading_id=reading.pk).exists()


def test_an_evaluation_task_also_takes_recent_batches_still_waiting_for_their_own_task(cast, settings):
    from alerts.evaluation import dispatch

    settings.ALERTS_COALESCE_SECONDS = 60
    now = timezone.now()
    waiting, asked, old, big = (
        Reading.objects.create(patient=cast.patient_a, measure="spo2", value=v, unit="%",
                               effective_at=now - timedelta(minutes=i), source="api")
        for i, v in enumerate((85, 86, 84, 83))
    )
    b_waiting, b_asked, b_old = (enqueue(source=EvaluationSource.READING, after_commit=False, ids=[r.pk])
                                 for r in (waiting, asked, old))
    PendingEvaluation.objects.filter(pk=b_old).update(created_at=now - timedelta(minutes=5))
    filler = Reading.objects.bulk_create([
        Reading(patient=cast.patient_a, measure="spo2", value=97, unit="%", source="api",
                effective_at=now - timedelta(hours=1, minutes=i)) for i in range(20)])
    b_big = enqueue(source=EvaluationSource.READING, after_commit=False, ids=[big.pk, *(r.pk for r in filler)])

    # the asked one, and the waiting ones (of any size) created within the window
    assert readings_evaluate(batch_ids=[b_asked]) == 1 + 1 + 21
    assert readings_evaluate(batch_ids=[b_waiting]) == 0  # its own task finds it done
    assert readings_evaluate(batch_ids=[b_big]) == 0
    assert readings_unevaluated_ids() == {old.pk}  # beyond the window: left to its own task or the sweep
    sources = set(AlertFinding.objects.values_list("source_key", flat=True))
    assert sources == {f"reading:{asked.pk}", f"reading:{waiting.pk}", f"reading:{big.pk}"}

    settings.ALERTS_COALESCE_SECONDS = 0
    assert readings_evaluate(batch_ids=[b_asked]) == 0
    assert readings_evaluate(batch_ids=[b_old]) == 1

    # at most _COALESCE_MAX other batches ride along
    count = dispatch.COALESCE_MAX + 5
    single = Reading.objects.bulk_create([
        Reading(patient=cast.patient_a, measure="spo2", value=97, unit="%", source="api",
                effective_at=now - timedelta(minutes=30 + i)) for i in range(count)])
    batches = [enqueue(source=EvaluationSource.READING, after_commit=False, ids=[r.pk]) for r in single]
    settings.ALERTS_COALESCE_SECONDS = 60
    assert readings_evaluate(batch_ids=[batches[0]]) == 1 + dispatch.COALESCE_MAX
    assert len(readings_unevaluated_ids()) == count - 1 - dispatch.COALESCE_MAX


def test_a_batch_id_that_does_not_exist_evaluates_nothing(cast):
    assert readings_evaluate(batch_ids=[987654]) == 0


def test_a_rule_whose_stored_params_no_longer_parse_is_recorded_per_reading_and_the_others_still_run(cast):
    from alerts.models import RuleError

    broken = Rule.objects.create(program=cast.program_a, kind="threshold", name="Broken", severity="red",
                                 params={"measure": "spo2", "low": 90})
    Rule.objects.filter(pk=broken.pk).update(params={"measure": "spo2", "low": 95, "high": 90})  # low >= high
    now = timezone.now()
    readings = [Reading.objects.create(patient=cast.patient_a, measure="spo2", value=v, unit="%", source="api",
                                       effective_at=now - timedelta(minutes=i)) for i, v in enumerate((88, 97))]
    with translation.override("da"):  # as a worker runs: in the default language
        evaluate([r.pk for r in readings])
    assert sorted(RuleError.objects.filter(rule=broken).values_list("source_key", flat=True)) == sorted(
        f"reading:{r.pk}" for r in readings)
    assert "Den nedre grænse skal være under den øvre grænse." in RuleError.objects.filter(rule=broken).first().error
    alert = Alert.objects.get(patient=cast.patient_a)  # the SpO2 < 92 rule still raised on 88
    assert alert.rule.name == "SpO2 below 92 %"
    assert [f.evidence["value"] for f in alert.findings.all()] == ["88"]


def test_an_ended_episode_stops_its_rules_even_while_another_patient_is_in_the_programme(cast):
    """Every episode condition applies to the same episode: patient B joining programme A must not
    keep programme A's rules on for patient A after A's episode ended."""
    from datetime import timedelta as _td

    from alerts.selectors_readings import reading_measures_for
    from alerts.services import rules_for as _rules_for
    from patients.models import TreatmentEpisode

    yesterday = timezone.localdate() - _td(days=1)
    TreatmentEpisode.objects.filter(patient=cast.patient_a).update(end=yesterday)
    TreatmentEpisode.objects.create(patient=cast.patient_b, program=cast.program_a, care_team=cast.team_b,
                                    condition_code="DC34", treatment_start=yesterday)
    Rule.objects.create(program=cast.program_a, kind="threshold", name="glucose", severity="red",
                        params={"measure": "glucose", "high": 20})
    assert _rules_for(cast.patient_a.pk, timezone.localdate(), ["threshold"]) == []
    assert "glucose" not in reading_measures_for(cast.patient_a)
    assert "glucose" in reading_measures_for(cast.patient_b)


def test_a_rule_stored_before_the_range_check_still_runs_and_its_pages_open(cast, client):
    """The limit range check is made when a definition is saved; a rule stored earlier with a
    limit beyond the measure's range keeps raising alerts and its patient's pages still open."""
    from decimal import Decimal as _D

    from django.core.exceptions import ValidationError

    from alerts.definitions import rule_save
    from monitoring.models import Reading, Source
    from tests.factories import evaluate

    Rule.objects.filter(program=cast.program_a, kind="threshold").update(params={"measure": "spo2", "low": 92,
                                                                                 "high": 101})
    reading = Reading.objects.create(patient=cast.patient_a, measure="spo2", value=_D("85"), unit="%",
                                     effective_at=timezone.now(), source=Source.DEVICE)
    evaluate([reading.pk])
    assert Alert.objects.filter(patient=cast.patient_a).exists()
    client.force_login(cast.clinician_a)
    assert client.get(f"/patients/{cast.patient_a.pk}/").status_code == 200
    assert client.get(f"/patients/{cast.patient_a.pk}/readings/spo2/").status_code == 200
    rule = Rule.objects.get(program=cast.program_a, kind="threshold")
    rule.params = {"measure": "spo2", "low": 92, "high": 102}
    with pytest.raises(ValidationError, match="102 %"):
        rule_save(rule=rule, by=cast.admin, reason="typo")
