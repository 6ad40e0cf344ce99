"""Missed questionnaires: an occurrence past its deadline plus a grace period raises an alert
once; late answers, pauses (before or after the miss) and runs shorter than "in a row" do not;
the sweep claims each MissedOccurrence once; bad definitions are refused at save time."""

import types
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone, translation

from alerts import tasks
from alerts.definitions import rule_save
from alerts.evaluation import Source as EvaluationSource
from alerts.evaluation import enqueue
from alerts.evaluation.missed import missed_evaluate
from alerts.models import Alert, AlertFinding, Rule, RuleError
from alerts.rules import KINDS
from questionnaires.models import QuestionnaireResponse
from schedules.models import MissedOccurrence, Occurrence, OccurrenceStatus, Schedule
from schedules.services import occurrences_advance, pause_create

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


@pytest.fixture
def schedule(cast):
    return Schedule.objects.create(program=cast.program_a, name="daily", questionnaire_url=cast.questionnaire.url,
                                   kind="every", params={"every_days": 1, "from_day": 0, "to_day": 60},
                                   window=timedelta(hours=12))


@pytest.fixture
def rule(cast):
    return Rule.objects.create(program=cast.program_a, kind="missed", name="Not answered", severity="yellow",
                               params={"questionnaire": cast.questionnaire.url, "grace_hours": 6})


def _occurrence(cast, schedule, due, status=OccurrenceStatus.OPEN):
    return Occurrence.objects.create(
        patient=cast.patient_a, episode=cast.patient_a.episodes.get(), schedule=schedule,
        questionnaire_url=schedule.questionnaire_url, questionnaire=cast.questionnaire,
        opens_at=due, due_at=due, closes_at=due + schedule.window, status=status)


def _miss(cast, schedule, due):
    """An occurrence due at ``due`` whose deadline passes unanswered (schedules records the miss)."""
    occurrence = _occurrence(cast, schedule, due)
    occurrences_advance(now=occurrence.closes_at + timedelta(minutes=1))
    return MissedOccurrence.objects.get(occurrence=occurrence)


def _alerts(rule):
    return list(Alert.objects.filter(rule=rule))


def test_a_missed_questionnaire_raises_an_alert_once_its_grace_period_has_passed(cast, schedule, rule):
    due = timezone.now() - 2 * DAY
    missed = _miss(cast, schedule, due)
    deadline = missed.occurrence.closes_at
    assert missed_evaluate(now=deadline + timedelta(hours=5)) == 0  # within the 6 hours of grace
    assert _alerts(rule) == []
    missed.refresh_from_db()
    assert missed.processed_at is None
    with translation.override("en"):
        assert missed_evaluate(now=deadline + timedelta(hours=6)) == 1
    [alert] = _alerts(rule)
    assert alert.severity == "yellow" and alert.source_key == f"missed:{missed.pk}"
    assert alert.reason.startswith(f"“{cast.questionnaire.title}” due ") and alert.reason.endswith(" was not answered.")
    assert alert.evidence["occurrence_id"] == missed.occurrence_id and alert.evidence["consecutive"] == 1
    missed.refresh_from_db()
    assert missed.processed_at == deadline + timedelta(hours=6)


def test_evaluating_again_claims_nothing_and_raises_nothing_more(cast, schedule, rule):
    missed = _miss(cast, schedule, timezone.now() - 2 * DAY)
    later = missed.occurrence.closes_at + DAY
    assert missed_evaluate(now=later) == 1
    assert missed_evaluate(now=later) == 0
    # A claim lost after the commit: the miss unprocessed and back in the inbox.
    MissedOccurrence.objects.filter(pk=missed.pk).update(processed_at=None)
    enqueue(source=EvaluationSource.MISSED, ids=[missed.pk], not_before=missed.occurrence.closes_at, after_commit=False)
    assert missed_evaluate(now=later) == 1
    assert len(_alerts(rule)) == 1 and AlertFinding.objects.filter(rule=rule).count() == 1


def test_an_answer_given_late_within_the_grace_period_is_not_a_miss(cast, schedule, rule):
    missed = _miss(cast, schedule, timezone.now() - 2 * DAY)
    QuestionnaireResponse.objects.create(patient=cast.patient_a, questionnaire=cast.questionnaire, items=[],
                                         authored_at=missed.occurrence.closes_at + timedelta(hours=2))
    assert missed_evaluate(now=missed.occurrence.closes_at + DAY) == 1
    assert _alerts(rule) == []


def test_an_answer_after_the_grace_period_does_not_undo_the_miss(cast, schedule, rule):
    missed = _miss(cast, schedule, timezone.now() - 2 * DAY)
    QuestionnaireResponse.objects.create(patient=cast.patient_a, questionnaire=cast.questionnaire, items=[],
                                         authored_at=missed.occurrence.closes_at + timedelta(hours=7))
    missed_evaluate(now=missed.occurrence.closes_at + DAY)
    assert len(_alerts(rule)) == 1


def test_two_in_a_row_fires_on_the_second_miss_only(cast, schedule, rule):
    rule.params = {**rule.params, "consecutive": 2}
    rule.save()
    first = _miss(cast, schedule, timezone.now() - 3 * DAY)
    missed_evaluate(now=first.occurrence.closes_at + DAY)
    assert _alerts(rule) == []
    second = _miss(cast, schedule, timezone.now() - 2 * DAY)
    with translation.override("en"):
        missed_evaluate(now=second.occurrence.closes_at + DAY)
    [alert] = _alerts(rule)
    assert alert.reason.startswith("2 questionnaires in a row not answered")
    assert [o["occurrence_id"] for o in alert.evidence["occurrences"]] == [second.occurrence_id, first.occurrence_id]


def test_an_answered_occurrence_between_two_misses_breaks_the_run(cast, schedule, rule):
    rule.params = {**rule.params, "consecutive": 2}
    rule.save()
    _miss(cast, schedule, timezone.now() - 4 * DAY)
    answered = _occurrence(cast, schedule, timezone.now() - 3 * DAY)
    Occurrence.objects.filter(pk=answered.pk).update(status=OccurrenceStatus.COMPLETED,
                                                     completed_at=answered.due_at + timedelta(hours=1))
    second = _miss(cast, schedule, timezone.now() - 2 * DAY)
    missed_evaluate(now=second.occurrence.closes_at + DAY)
    assert _alerts(rule) == []


def test_a_pause_recorded_before_makes_the_occurrence_paused_and_nothing_is_raised(cast, schedule, rule):
    due = timezone.now() - 2 * DAY
    occurrence = _occurrence(cast, schedule, due, status=OccurrenceStatus.SCHEDULED)
    pause_create(patient=cast.patient_a, starts_on=timezone.localdate(due), ends_on=timezone.localdate(due),
                 reason="indlagt", created_by=cast.clinician_a)
    occurrences_advance(now=occurrence.closes_at + timedelta(minutes=1))
    occurrence.refresh_from_db()
    assert occurrence.status == OccurrenceStatus.PAUSED  # schedules itself skips paused days
    assert not MissedOccurrence.objects.exists()
    assert missed_evaluate(now=occurrence.closes_at + DAY) == 0
    assert _alerts(rule) == []


def test_a_pause_recorded_after_the_miss_still_suppresses_the_alert(cast, schedule, rule):
    # The admission is registered the day after: schedules has already recorded the miss.
    missed = _miss(cast, schedule, timezone.now() - 2 * DAY)
    pause_create(patient=cast.patient_a, starts_on=timezone.localdate(missed.occurrence.due_at), ends_on=None,
                 reason="indlagt", created_by=cast.clinician_a)
    assert missed_evaluate(now=missed.occurrence.closes_at + DAY) == 1  # claimed, and silent
    assert _alerts(rule) == []


def test_paused_occurrences_are_skipped_when_counting_a_run(cast, schedule, rule):
    rule.params = {**rule.params, "consecutive": 2}
    rule.save()
    first = _miss(cast, schedule, timezone.now() - 4 * DAY)
    _occurrence(cast, schedule, timezone.now() - 3 * DAY, status=OccurrenceStatus.PAUSED)
    second = _miss(cast, schedule, timezone.now() - 2 * DAY)
    missed_evaluate(now=second.occurrence.closes_at + DAY)
    [alert] = _alerts(rule)
    assert alert.evidence["consecutive"] == 2
    assert {o["occurrence_id"] for o in alert.evidence["occurrences"]} == {first.occurrence_id, second.occurrence_id}


def test_a_rule_for_another_questionnaire_ignores_the_miss(cast, schedule, rule):
    rule.params = {**rule.params, "questionnaire": "https://example.org/other"}
    rule.save()
    missed = _miss(cast, schedule, timezone.now() - 2 * DAY)
    missed_evaluate(now=missed.occurrence.closes_at + DAY)
    assert _alerts(rule) == []


def test_each_rule_waits_for_its_own_grace_and_the_row_is_claimed_after_the_longest(cast, schedule, rule):
    long_rule = Rule.objects.create(program=cast.program_a, kind="missed", name="Not answered (2 days)",
                                    severity="red", params={"grace_hours": 48})
    missed = _miss(cast, schedule, timezone.now() - 3 * DAY)
    deadline = missed.occurrence.closes_at
    assert missed_evaluate(now=deadline + timedelta(hours=7)) == 0
    assert len(_alerts(rule)) == 1 and _alerts(long_rule) == []
    assert missed_evaluate(now=deadline + timedelta(hours=8)) == 0  # the short rule again: nothing new
    assert missed_evaluate(now=deadline + timedelta(hours=48)) == 1
    assert len(_alerts(rule)) == 1 and len(_alerts(long_rule)) == 1
    assert AlertFinding.objects.filter(rule=rule).count() == 1


def test_a_failing_rule_is_recorded_once_and_the_other_missed_rules_still_raise(cast, schedule, rule, monkeypatch):
    def evaluate_missed(params, missed, ctx):
        raise ZeroDivisionError("deliberately broken")

    broken = types.SimpleNamespace(Params=KINDS["missed"].Params, evaluate_missed=evaluate_missed)
    monkeypatch.setitem(KINDS, "broken", broken)
    bad = Rule.objects.create(program=cast.program_a, kind="broken", name="Broken", severity="red",
                              params={"grace_hours": 0})
    Rule.objects.filter(pk=rule.pk).update(params={"grace_hours": 48})
    missed = _miss(cast, schedule, timezone.now() - 3 * DAY)
    missed_evaluate(now=missed.occurrence.closes_at + timedelta(hours=1))
    missed_evaluate(now=missed.occurrence.closes_at + timedelta(hours=2))  # re-run while waiting
    missed_evaluate(now=missed.occurrence.closes_at + timedelta(hours=48))
    [error] = RuleError.objects.filter(rule=bad)
    assert error.source_key == f"missed:{missed.pk}" and "deliberately broken" in error.error
    assert len(_alerts(rule)) == 1 and _alerts(bad) == []


def test_the_beat_task_runs_the_sweep(cast, schedule, rule):
    entry = settings.CELERY_BEAT_SCHEDULE["alerts-evaluation-sweep"]
    assert entry["task"] == tasks.sweep.name == "alerts.evaluation.sweep"
    _miss(cast, schedule, timezone.now() - 3 * DAY)
    assert tasks.sweep.delay().get() == 1
    assert len(_alerts(rule)) == 1


@pytest.mark.parametrize(("params", "message"), [
    ({"grace_hours": -1}, "Antallet af timers henstand kan ikke være negativt."),
    ({"consecutive": 0}, "consecutive"),
    ({"grace": 6}, "grace"),
])
def test_invalid_missed_definitions_are_refused_at_save_with_a_clear_message(cast, params, message):
    rule = Rule(program=cast.program_a, kind="missed", name="Bad", severity="yellow", params=params)
    with translation.override("da"), pytest.raises(ValidationError) as exc:  # the message in the users' language
        rule_save(rule=rule, by=cast.admin)
    assert message in " ".join(exc.value.message_dict["params"])
    assert not Rule.objects.filter(kind="missed").exists()
