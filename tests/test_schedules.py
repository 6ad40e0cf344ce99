"""Schedules relative to the index date: generation, windows, missed, pauses, answering and
reminders. Every test passes ``now`` explicitly; nothing sleeps."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.mail.backends.base import BaseEmailBackend

from audit.models import AuditEvent
from questionnaires.library import load
from questionnaires.models import QuestionnaireResponse
from questionnaires.services import questionnaire_import
from schedules import tasks
from schedules.models import (
    MissedOccurrence,
    Occurrence,
    OccurrenceStatus,
    ReminderDelivery,
    ReminderStatus,
    Schedule,
)
from schedules.selectors import occurrences_for, open_occurrences_for
from schedules.services import (
    OccurrenceNotOpen,
    occurrence_complete,
    occurrence_for_submission,
    occurrences_advance,
    pause_create,
    pause_end,
    reminders_send_due,
    schedule_create,
    schedule_generate_occurrences,
    schedules_standard_follow_up,
)
from schedules.transports import transport_get, transports

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english():
    # The assertions below read the English messages; Danish is the default language.
    from django.utils import translation

    with translation.override("en"):
        yield

CPH = ZoneInfo("Europe/Copenhagen")
INDEX = date(2025, 3, 3)  # a Monday; summer time starts Sunday 30 March 2025
LONG_AGO = datetime(2024, 1, 1, tzinfo=UTC)


def local(y: int, m: int, d: int, h: int = 9, minute: int = 0) -> datetime:
    return datetime(y, m, d, h, minute, tzinfo=CPH)


@pytest.fixture
def episode(cast):
    episode = cast.patient_a.episodes.get()
    episode.treatment_start = INDEX
    episode.save()
    return episode


def _schedule(cast, kind="offsets", params=None, **timing):
    timing.setdefault("window", timedelta(days=2))
    timing.setdefault("open_before", timedelta(days=1))
    return schedule_create(
        program=cast.program_a, name=f"{kind} {Schedule.objects.count()}",
        questionnaire_url=cast.questionnaire.url, kind=kind,
        params=params if params is not None else {"days": [-7, 0, 7]}, **timing,
    )


def _local_due_dates(episode):
    return [o.due_at.astimezone(CPH).date() for o in Occurrence.objects.filter(episode=episode).order_by("due_at")]


def _response(patient, questionnaire):
    return QuestionnaireResponse.objects.create(patient=patient, questionnaire=questionnaire, items=[],
                                                author=patient.user)


# --- generation for each kind ----------------------------------------------------------------

def test_offsets_are_counted_from_the_index_date_including_a_baseline_a_week_before_start(cast, episode):
    _schedule(cast, "offsets", {"days": [14, -7, 7]})
    assert schedule_generate_occurrences(episode=episode, now=LONG_AGO) == 3
    assert _local_due_dates(episode) == [date(2025, 2, 24), date(2025, 3, 10), date(2025, 3, 17)]
    baseline = Occurrence.objects.order_by("due_at").first()
    assert baseline.due_at == local(2025, 2, 24, 9)
    assert baseline.opens_at == local(2025, 2, 23, 9)
    assert baseline.closes_at == local(2025, 2, 26, 9)
    assert (baseline.patient, baseline.status) == (cast.patient_a, OccurrenceStatus.SCHEDULED)
    assert baseline.questionnaire_url == cast.questionnaire.url and baseline.questionnaire is None


def test_every_n_days_runs_from_its_first_day_to_its_last_day_inclusive(cast, episode):
    _schedule(cast, "every", {"every_days": 7, "from_day": 7, "to_day": 28})
    schedule_generate_occurrences(episode=episode, now=LONG_AGO)
    assert _local_due_dates(episode) == [INDEX + timedelta(days=d) for d in (7, 14, 21, 28)]


def test_fixed_weekdays_fall_only_on_mondays_and_thursdays_within_the_relative_range(cast, episode):
    _schedule(cast, "weekdays", {"weekdays": ["mon", "thu"], "from_day": -2, "to_day": 10})
    schedule_generate_occurrences(episode=episode, now=LONG_AGO)
    # index 3 March (Mon): day -2 is Sat 1 March, day 10 is Thu 13 March
    assert _local_due_dates(episode) == [date(2025, 3, 3), date(2025, 3, 6), date(2025, 3, 10), date(2025, 3, 13)]


def test_a_one_off_schedule_creates_a_single_occurrence_at_its_relative_day(cast, episode):
    _schedule(cast, "once", {"day": 365}, due_time=time(14, 30))
    schedule_generate_occurrences(episode=episode, now=LONG_AGO)
    assert [o.due_at for o in Occurrence.objects.all()] == [local(2026, 3, 3, 14, 30)]


def test_standard_follow_up_is_a_baseline_then_weekly_for_twelve_weeks_then_monthly_to_a_year(cast, episode):
    schedules = schedules_standard_follow_up(program=cast.program_a, questionnaire_url=cast.questionnaire.url)
    assert [s.kind for s in schedules] == ["once", "every", "every"]
    schedule_generate_occurrences(episode=episode, now=LONG_AGO)
    days = [(d - INDEX).days for d in _local_due_dates(episode)]
    assert days == [-7, *range(7, 85, 7), 114, 144, 174, 204, 234, 264, 294, 324, 354]
    baseline = Occurrence.objects.get(schedule=schedules[0])
    assert baseline.closes_at.astimezone(CPH).date() < INDEX  # answered before treatment starts
    # asking again returns the same three schedules
    assert schedules_standard_follow_up(program=cast.program_a, questionnaire_url=cast.questionnaire.url) == schedules


def test_generating_twice_creates_nothing_the_second_time(cast, episode):
    _schedule(cast, "every", {"every_days": 7, "from_day": 0, "to_day": 70})
    assert schedule_generate_occurrences(episode=episode, now=LONG_AGO) == 11
    assert schedule_generate_occurrences(episode=episode, now=LONG_AGO) == 0
    assert Occurrence.objects.count() == 11


def test_the_daily_task_generates_for_every_running_episode_and_is_idempotent(cast, episode):
    _schedule(cast, "once", {"day": 3650})  # far in the future, whatever today is
    tasks.generate_occurrences.delay()
    tasks.generate_occurrences.delay()
    # patient B's programme has no schedule
    assert list(Occurrence.objects.values_list("patient", flat=True)) == [cast.patient_a.pk]


def test_occurrences_whose_deadline_passed_before_generation_are_not_created(cast, episode):
    _schedule(cast, "offsets", {"days": [0, 7, 14]})
    assert schedule_generate_occurrences(episode=episode, now=local(2025, 3, 12, 12)) == 1
    assert _local_due_dates(episode) == [date(2025, 3, 17)]


def test_nothing_is_generated_after_the_episode_ends(cast, episode):
    episode.end = date(2025, 3, 20)
    episode.save()
    _schedule(cast, "every", {"every_days": 7, "from_day": 0, "to_day": 70})
    schedule_generate_occurrences(episode=episode, now=LONG_AGO)
    assert _local_due_dates(episode)[-1] == date(2025, 3, 17)


def test_due_time_stays_nine_in_the_morning_danish_time_when_summer_time_begins(cast, episode):
    _schedule(cast, "every", {"every_days": 7, "from_day": 21, "to_day": 35})  # 24 Mar, 31 Mar, 7 Apr
    schedule_generate_occurrences(episode=episode, now=LONG_AGO)
    due = [o.due_at.astimezone(UTC) for o in Occurrence.objects.order_by("due_at")]
    assert due == [datetime(2025, 3, 24, 8, tzinfo=UTC), datetime(2025, 3, 31, 7, tzinfo=UTC),
                   datetime(2025, 4, 7, 7, tzinfo=UTC)]


def test_a_window_across_the_autumn_clock_change_opens_and_closes_at_wall_clock_times(cast, episode):
    # day 237 is Sunday 26 October 2025, when clocks go back at 03:00
    _schedule(cast, "once", {"day": 237}, open_before=timedelta(days=2), window=timedelta(days=2))
    schedule_generate_occurrences(episode=episode, now=LONG_AGO)
    occurrence = Occurrence.objects.get()
    assert occurrence.opens_at == local(2025, 10, 24, 9)  # 07:00 UTC, summer time
    assert occurrence.due_at == local(2025, 10, 26, 9)  # 08:00 UTC, winter time
    assert occurrence.closes_at == local(2025, 10, 28, 9)
    assert occurrence.closes_at - occurrence.opens_at == timedelta(days=4, hours=1)


# --- windows, missed -------------------------------------------------------------------------

def test_an_occurrence_opens_with_the_newest_questionnaire_version_when_its_window_starts(cast, episode):
    _schedule(cast, "once", {"day": 7})
    schedule_generate_occurrences(episode=episode, now=LONG_AGO)
    assert occurrences_advance(now=local(2025, 3, 9, 8, 59)).opened == 0
    newer = load("hf-daily")
    newer["version"] = "99"
    newer_version = questionnaire_import(resource=newer)
    assert occurrences_advance(now=local(2025, 3, 9, 9)).opened == 1
    occurrence = Occurrence.objects.get()
    assert (occurrence.status, occurrence.questionnaire) == (OccurrenceStatus.OPEN, newer_version)
    assert occurrences_advance(now=local(2025, 3, 9, 10)).opened == 0


def test_an_occurrence_unanswered_at_its_deadline_is_missed_and_recorded_once(cast, episode):
    _schedule(cast, "once", {"day": 7})
    schedule_generate_occurrences(episode=episode, now=LONG_AGO)
    occurrences_advance(now=local(2025, 3, 10, 12))
    assert occurrences_advance(now=local(2025, 3, 12, 8, 59)).missed == 0
    assert occurrences_advance(now=local(2025, 3, 12, 9)).missed == 1
    assert occurrences_advance(now=local(2025, 3, 12, 9, 3)).missed == 0
    missed = MissedOccurrence.objects.get()
    assert missed.occurrence.status == OccurrenceStatus.MISSED
    assert (missed.recorded_at, missed.processed_at) == (local(2025, 3, 12, 9), None)


def test_an_occurrence_never_opened_by_the_sweep_is_still_missed_after_its_deadline(cast, episode):
    _schedule(cast, "once", {"day": 7})
    schedule_generate_occurrences(episode=episode, now=LONG_AGO)
    assert occurrences_advance(now=local(2025, 4, 1)).missed == 1
    assert Occurrence.objects.get().status == OccurrenceStatus.MISSED


# --- pauses ----------------------------------------------------------------------------------

def test_an_occurrence_due_inside_a_pause_is_paused_not_missed(cast, episode):
    _schedule(cast, "offsets", {"days": [7, 14, 21]})
    schedule_generate_occurrences(episode=episode, now=LONG_AGO)
    pause_create(patient=cast.patient_a, starts_on=date(2025, 3, 15), ends_on=date(2025, 3, 20),
                 reason="Holiday in Spain", created_by=cast.clinician_a, now=local(2025, 3, 1))
    result = occurrences_advance(now=local(2025, 4, 30))
    assert result.missed == 2
    statuses = dict(Occurrence.objects.values_list("due_at", "status"))
    assert statuses[local(2025, 3, 17)] == OccurrenceStatus.PAUSED
    assert MissedOccurrence.objects.filter(occurrence__due_at=local(2025, 3, 17)).count() == 0
    assert AuditEvent.objects.filter(resource__startswith="Pause/", action="create").count() == 1


def test_occurrences_generated_after_a_pause_was_created_start_paused(cast, episode):
    pause_create(patient=cast.patient_a, starts_on=date(2025, 3, 9), ends_on=None,
                 reason="Admitted to hospital", created_by=cast.clinician_a)
    _schedule(cast, "offsets", {"days": [0, 7]})
    schedule_generate_occurrences(episode=episode, now=LONG_AGO)
    assert list(Occurrence.objects.order_by("due_at").values_list("status", flat=True)) == [
        OccurrenceStatus.SCHEDULED, OccurrenceStatus.PAUSED]


def test_ending_a_pause_early_reopens_the_occurrences_after_its_new_end_but_not_those_inside(cast, episode):
    _schedule(cast, "offsets", {"days": [7, 14, 21]}, open_before=timedelta(days=3))
    schedule_generate_occurrences(episode=episode, now=LONG_AGO)
    pause = pause_create(patient=cast.patient_a, starts_on=date(2025, 3, 8), ends_on=None,
                         reason="Admitted", created_by=cast.clinician_a, now=local(2025, 3, 1))
    assert set(Occurrence.objects.values_list("status", flat=True)) == {OccurrenceStatus.PAUSED}
    # discharged on Saturday 15 March; it is Sunday morning
    pause_end(pause=pause, on=date(2025, 3, 15), by=cast.clinician_a, now=local(2025, 3, 16, 8))
    statuses = dict(Occurrence.objects.values_list("due_at", "status"))
    assert statuses == {
        local(2025, 3, 10): OccurrenceStatus.PAUSED,  # due while admitted: stays paused
        local(2025, 3, 17): OccurrenceStatus.OPEN,  # its window started on the 14th
        local(2025, 3, 24): OccurrenceStatus.SCHEDULED,
    }
    pause.refresh_from_db()
    assert (pause.ends_on, pause.ended_by) == (date(2025, 3, 15), cast.clinician_a)


def test_withdrawing_a_pause_before_it_begins_restores_every_occurrence_it_held(cast, episode):
    _schedule(cast, "offsets", {"days": [7, 14]})
    schedule_generate_occurrences(episode=episode, now=LONG_AGO)
    pause = pause_create(patient=cast.patient_a, starts_on=date(2025, 3, 9), ends_on=date(2025, 3, 30),
                         reason="Holiday", created_by=cast.clinician_a, now=local(2025, 3, 1))
    pause_end(pause=pause, on=date(2025, 3, 2), by=cast.clinician_a, now=local(2025, 3, 2))
    pause.refresh_from_db()
    assert pause.withdrawn
    assert set(Occurrence.objects.values_list("status", flat=True)) == {OccurrenceStatus.SCHEDULED}


def test_a_pause_without_a_reason_or_ending_before_it_starts_is_refused(cast, episode):
    with pytest.raises(ValidationError) as exc:
        pause_create(patient=cast.patient_a, starts_on=date(2025, 3, 9), ends_on=date(2025, 3, 1),
                     reason="  ", created_by=cast.clinician_a)
    assert set(exc.value.message_dict) == {"reason", "ends_on"}


# --- answering -------------------------------------------------------------------------------

def test_occurrence_for_submission_is_the_open_one_and_none_outside_its_window(cast, episode):
    _schedule(cast, "offsets", {"days": [7, 14]})
    schedule_generate_occurrences(episode=episode, now=LONG_AGO)
    url = cast.questionnaire.url
    found = occurrence_for_submission(patient=cast.patient_a, questionnaire_url=url, now=local(2025, 3, 10, 12))
    assert found is not None and found.due_at == local(2025, 3, 10)
    assert occurrence_for_submission(patient=cast.patient_a, questionnaire_url=url, now=local(2025, 3, 8)) is None
    assert occurrence_for_submission(patient=cast.patient_b, questionnaire_url=url,
                                     now=local(2025, 3, 10, 12)) is None
    assert occurrence_for_submission(patient=cast.patient_a, questionnaire_url=url + "-other",
                                     now=local(2025, 3, 10, 12)) is None
    assert [o.due_at for o in open_occurrences_for(cast.patient_a, now=local(2025, 3, 10, 12))] == [
        local(2025, 3, 10)]


def test_completing_an_open_occurrence_links_the_response_and_takes_it_off_the_open_list(cast, episode):
    _schedule(cast, "once", {"day": 7})
    schedule_generate_occurrences(episode=episode, now=LONG_AGO)
    now = local(2025, 3, 10, 12)
    occurrence = occurrence_for_submission(patient=cast.patient_a, questionnaire_url=cast.questionnaire.url,
                                           now=now)
    response = _response(cast.patient_a, cast.questionnaire)
    occurrence_complete(occurrence=occurrence, response=response, now=now)
    assert (occurrence.status, occurrence.response, occurrence.completed_at) == (
        OccurrenceStatus.COMPLETED, response, now)
    assert not open_occurrences_for(cast.patient_a, now=now).exists()
    assert occurrences_advance(now=local(2025, 4, 1)).missed == 0
    assert list(occurrences_for(cast.patient_a)) == [occurrence]


def test_completing_a_closed_occurrence_is_refused_naming_when_it_closed(cast, episode):
    _schedule(cast, "once", {"day": 7})
    schedule_generate_occurrences(episode=episode, now=LONG_AGO)
    occurrences_advance(now=local(2025, 3, 13))
    occurrence = Occurrence.objects.get()
    with pytest.raises(OccurrenceNotOpen, match="closed") as exc:
        occurrence_complete(occurrence=occurrence, response=_response(cast.patient_a, cast.questionnaire),
                            now=local(2025, 3, 13))
    assert "12" in str(exc.value)  # the deadline, 12 March
    occurrence.refresh_from_db()
    assert (occurrence.status, occurrence.response) == (OccurrenceStatus.MISSED, None)


def test_answering_an_occurrence_twice_is_refused_as_already_answered(cast, episode):
    _schedule(cast, "once", {"day": 7})
    schedule_generate_occurrences(episode=episode, now=LONG_AGO)
    occurrence = Occurrence.objects.get()
    now = local(2025, 3, 10)
    occurrence_complete(occurrence=occurrence, response=_response(cast.patient_a, cast.questionnaire), now=now)
    second = _response(cast.patient_a, cast.questionnaire)
    with pytest.raises(OccurrenceNotOpen, match="already answered"):
        occurrence_complete(occurrence=occurrence, response=second, now=now + timedelta(minutes=1))
    assert Occurrence.objects.get().response_id != second.pk


def test_a_paused_or_not_yet_open_occurrence_cannot_be_completed(cast, episode):
    _schedule(cast, "offsets", {"days": [7, 14]})
    schedule_generate_occurrences(episode=episode, now=LONG_AGO)
    first, second = Occurrence.objects.order_by("due_at")
    with pytest.raises(OccurrenceNotOpen, match="opens"):
        occurrence_complete(occurrence=second, response=_response(cast.patient_a, cast.questionnaire),
                            now=local(2025, 3, 10))
    pause_create(patient=cast.patient_a, starts_on=date(2025, 3, 10), ends_on=date(2025, 3, 10),
                 reason="Admitted", created_by=cast.clinician_a)
    with pytest.raises(OccurrenceNotOpen, match="paused"):
        occurrence_complete(occurrence=first, response=_response(cast.patient_a, cast.questionnaire),
                            now=local(2025, 3, 10))


def test_another_patients_response_cannot_complete_an_occurrence(cast, episode):
    _schedule(cast, "once", {"day": 7})
    schedule_generate_occurrences(episode=episode, now=LONG_AGO)
    with pytest.raises(ValidationError, match="another patient"):
        occurrence_complete(occurrence=Occurrence.objects.get(),
                            response=_response(cast.patient_b, cast.questionnaire), now=local(2025, 3, 10))
    assert Occurrence.objects.get().status == OccurrenceStatus.SCHEDULED


# --- reminders -------------------------------------------------------------------------------

@pytest.fixture
def reminded(cast, episode):
    """One occurrence due Monday 10 March 09:00, closing Wednesday 09:00, reminder 24 h before."""
    cast.patient_a.user.email = "alma@example.org"
    cast.patient_a.user.save()
    _schedule(cast, "once", {"day": 7}, remind_before=timedelta(hours=24))
    schedule_generate_occurrences(episode=episode, now=LONG_AGO)
    return Occurrence.objects.get()


def test_a_reminder_is_sent_once_when_its_time_comes_even_if_the_run_repeats(reminded):
    assert reminders_send_due(now=local(2025, 3, 11, 8, 59)) == 0
    assert reminders_send_due(now=local(2025, 3, 11, 9)) == 1
    assert reminders_send_due(now=local(2025, 3, 11, 9, 15)) == 0
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["alma@example.org"]
    delivery = ReminderDelivery.objects.get()
    assert (delivery.channel, delivery.kind, delivery.status) == ("email", "before-deadline", ReminderStatus.SENT)
    assert delivery.attempted_at == local(2025, 3, 11, 9)


def test_the_reminder_task_run_twice_sends_one_mail(cast, episode):
    from django.utils import timezone

    cast.patient_a.user.email = "alma@example.org"
    cast.patient_a.user.save()
    now = timezone.now()
    # an index date that puts the occurrence's deadline 12 hours from the real clock
    episode.treatment_start = (now + timedelta(hours=12) - timedelta(days=2)).astimezone(CPH).date()
    episode.save()
    _schedule(cast, "once", {"day": 0}, due_time=(now + timedelta(hours=12)).astimezone(CPH).time(),
              open_before=timedelta(days=1), window=timedelta(days=2), remind_before=timedelta(days=2))
    schedule_generate_occurrences(episode=episode, now=now)
    tasks.send_reminders.delay()
    tasks.send_reminders.delay()
    assert len(mail.outbox) == 1
    assert ReminderDelivery.objects.count() == 1


def test_no_reminder_for_an_answered_occurrence(cast, reminded):
    occurrence_complete(occurrence=reminded, response=_response(cast.patient_a, cast.questionnaire),
                        now=local(2025, 3, 10))
    assert reminders_send_due(now=local(2025, 3, 11, 10)) == 0
    assert mail.outbox == []


def test_a_reminder_claimed_by_a_run_still_sending_is_not_sent_again(reminded):
    ReminderDelivery.objects.create(occurrence=reminded, channel="email", kind="before-deadline",
                                    attempted_at=local(2025, 3, 11, 9), status=ReminderStatus.SENDING)
    assert reminders_send_due(now=local(2025, 3, 11, 9, 1)) == 0
    assert mail.outbox == []


class BrokenBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise ConnectionRefusedError("SMTP server smtp.example.org:25 refused the connection")


def test_a_failed_delivery_is_recorded_with_its_error_and_retried_on_the_next_run(reminded, settings):
    settings.EMAIL_BACKEND = "tests.test_schedules.BrokenBackend"
    assert reminders_send_due(now=local(2025, 3, 11, 9)) == 0
    failed = ReminderDelivery.objects.get()
    assert failed.status == ReminderStatus.FAILED
    assert "ConnectionRefusedError" in failed.error and "refused the connection" in failed.error
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert reminders_send_due(now=local(2025, 3, 11, 9, 15)) == 1
    assert list(ReminderDelivery.objects.order_by("attempted_at").values_list("status", flat=True)) == [
        ReminderStatus.FAILED, ReminderStatus.SENT]
    assert len(mail.outbox) == 1


def test_a_patient_without_an_email_address_gets_three_recorded_attempts_then_none(cast, reminded):
    cast.patient_a.user.email = ""
    cast.patient_a.user.save()
    for minutes in (0, 15, 30, 45, 60):
        reminders_send_due(now=local(2025, 3, 11, 9) + timedelta(minutes=minutes))
    errors = list(ReminderDelivery.objects.values_list("error", flat=True))
    assert errors == ["TransportError: The patient has no e-mail address."] * 3


def test_a_channel_is_one_module_found_by_the_registry():
    assert transports()["email"].NAME == "email"
    with pytest.raises(LookupError, match="sms"):
        transport_get("sms")


# --- bad input -------------------------------------------------------------------------------

def test_a_negative_window_is_refused_naming_the_window(cast):
    with pytest.raises(ValidationError) as exc:
        _schedule(cast, window=timedelta(days=-1))
    assert "window" in exc.value.message_dict
    assert "longer than zero" in exc.value.message_dict["window"][0]
    assert not Schedule.objects.exists()


def test_an_unknown_kind_is_refused_naming_the_known_kinds(cast):
    with pytest.raises(ValidationError) as exc:
        _schedule(cast, kind="fortnightly", params={})
    assert exc.value.message_dict["kind"] == ["Unknown schedule kind 'fortnightly'; known kinds: "
                                              "offsets, every, weekdays, once."]


def test_a_range_that_ends_before_it_starts_is_refused_naming_to_day(cast):
    with pytest.raises(ValidationError) as exc:
        _schedule(cast, kind="every", params={"every_days": 7, "from_day": 20, "to_day": 12})
    assert exc.value.message_dict["params"] == ["to_day: the range ends (day 12) before it starts (day 20)"]


@pytest.mark.parametrize(("kind", "params", "expected"), [
    ("every", {"every_days": 0, "from_day": 0, "to_day": 7}, "every_days: Input should be greater than or equal to 1"),
    ("weekdays", {"weekdays": ["mon", "funday"], "from_day": 0, "to_day": 7}, "weekdays.1: Input should be"),
    ("offsets", {"days": []}, "days: List should have at least 1 item"),
    ("offsets", {"days": [7, 7]}, "days: each day may appear once"),
    ("once", {"day": 7, "hour": 9}, "hour: Extra inputs are not permitted"),
])
def test_malformed_parameters_are_refused_with_the_parameter_named(cast, kind, params, expected):
    with pytest.raises(ValidationError) as exc:
        _schedule(cast, kind=kind, params=params)
    assert exc.value.message_dict["params"][0].startswith(expected)


def test_a_schedule_for_an_unknown_questionnaire_is_refused(cast):
    with pytest.raises(ValidationError) as exc:
        schedule_create(program=cast.program_a, name="x", questionnaire_url="https://nowhere.example/Q/x",
                        kind="once", params={"day": 1}, window=timedelta(days=1))
    assert list(exc.value.message_dict) == ["questionnaire_url"]


def test_the_admin_path_validates_a_schedule_through_clean(cast):
    schedule = Schedule(program=cast.program_a, name="x", questionnaire_url=cast.questionnaire.url,
                        kind="every", params={"every_days": 7, "from_day": 9, "to_day": 1},
                        window=timedelta(0), remind_before=timedelta(hours=-1))
    with pytest.raises(ValidationError) as exc:
        schedule.full_clean()
    assert {"params", "window", "remind_before"} <= set(exc.value.message_dict)


def test_the_database_refuses_a_second_claim_on_a_reminder_already_in_flight(reminded):
    from django.db import IntegrityError, transaction

    claim = {"occurrence": reminded, "channel": "email", "kind": "before-deadline",
             "attempted_at": local(2025, 3, 11, 9)}
    ReminderDelivery.objects.create(**claim, status=ReminderStatus.SENDING)
    with pytest.raises(IntegrityError), transaction.atomic():
        ReminderDelivery.objects.create(**claim, status=ReminderStatus.SENDING)
    # a failed attempt beside it is allowed: failures are history, not claims
    ReminderDelivery.objects.create(**claim, status=ReminderStatus.FAILED, error="timeout")


def test_the_task_for_a_new_episode_generates_its_occurrences_once(cast, episode):
    _schedule(cast, "once", {"day": 3650})
    assert tasks.generate_occurrences_for_episode.delay(episode.pk).get() == 1
    assert tasks.generate_occurrences_for_episode.delay(episode.pk).get() == 0
    assert tasks.generate_occurrences_for_episode.delay(10**9).get() == 0  # episode deleted meanwhile
