"""Writes of schedules, occurrences, pauses and reminders. Every status change of an occurrence
goes through here. Every function takes ``now`` so that callers (and tests) control the clock;
tasks pass ``timezone.now()``.

Times: a schedule's days and due time are Danish wall-clock time (Europe/Copenhagen, whatever
settings.TIME_ZONE says); the database stores UTC."""

import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import DateTimeField, Exists, ExpressionWrapper, F, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from accounts.models import User
from alerts.evaluation import Source as EvaluationSource
from alerts.evaluation import enqueue_each
from audit.models import Action
from audit.services import audit_record
from patients.models import Patient, Program, TreatmentEpisode
from questionnaires.models import Questionnaire, QuestionnaireResponse, ResponseStatus
from questionnaires.services import ResponseConflict
from schedules.models import (
    MissedOccurrence,
    Occurrence,
    OccurrenceStatus,
    Pause,
    ReminderDelivery,
    ReminderStatus,
    Schedule,
    timing_errors,
)
from schedules.spec import Every, Once, Spec, spec_params, spec_parse
from schedules.transports import channels_enabled, transport_get

log = logging.getLogger(__name__)

# Clinical time is Danish time, independent of the server's or a deployment's TIME_ZONE.
TZ = ZoneInfo("Europe/Copenhagen")
LIVE = (OccurrenceStatus.SCHEDULED, OccurrenceStatus.OPEN)
REMINDER_BEFORE_DEADLINE = "before-deadline"
# Attempts per reminder and channel before giving up (a wrong address fails every time).
REMINDER_MAX_ATTEMPTS = 3
# A "sending" claim older than this belongs to a worker that died mid-send. It is marked failed,
# so the reminder is retried: the patient may then get it twice, which is better than never.
REMINDER_STALE_AFTER = timedelta(hours=1)


class OccurrenceNotOpen(Exception):
    """The occurrence cannot take an answer now; the message says why, for the patient."""

    def __init__(self, occurrence: Occurrence, message: str) -> None:
        super().__init__(message)
        self.occurrence = occurrence


# --- schedules ----------------------------------------------------------------------------------

def schedule_create(
    *,
    program: Program,
    name: str,
    questionnaire_url: str,
    kind: str,
    params: dict[str, Any],
    window: timedelta,
    open_before: timedelta = timedelta(0),
    due_time: time = time(9, 0),
    remind_before: timedelta | None = None,
) -> Schedule:
    """Validate and store a schedule. Raises ValidationError keyed by field (kind, params,
    window, open_before, remind_before, questionnaire_url); nothing is stored then."""
    errors: dict[str, Any] = {}
    spec: Spec | None = None
    try:
        spec = spec_parse(kind, params)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    errors.update(timing_errors(open_before=open_before, window=window, remind_before=remind_before))
    if not Questionnaire.objects.filter(url=questionnaire_url).exists():
        errors["questionnaire_url"] = _("No questionnaire has the url %(url)s.") % {"url": questionnaire_url}
    elif not program.questionnaires.filter(url=questionnaire_url).exists():
        # A schedule for a questionnaire outside the programme would ask patients something the
        # programme's rules and safety nets never look at (issue 24).
        errors["questionnaire_url"] = _("The questionnaire is not one of the programme's questionnaires.")
    if errors:
        raise ValidationError(errors)
    assert spec is not None
    schedule = Schedule(
        program=program, name=name, questionnaire_url=questionnaire_url, kind=kind,
        params=spec_params(spec), window=window, open_before=open_before, due_time=due_time,
        remind_before=remind_before,
    )
    schedule.full_clean()
    schedule.save()
    return schedule


@dataclass(frozen=True)
class _Part:
    name: str
    spec: Spec
    open_before: timedelta
    window: timedelta
    remind_before: timedelta


def schedules_standard_follow_up(
    *,
    program: Program,
    questionnaire_url: str,
    baseline_day: int = -7,
    weekly_weeks: int = 12,
    monthly_until_day: int = 365,
) -> list[Schedule]:
    """"Baseline before start, weekly for 12 weeks, then monthly to 12 months" as three
    schedules (not one composite): the baseline needs a longer window that still closes before
    treatment starts, and the monthly questionnaire more time than the weekly one.

    "Monthly" is every 30 days counted on from the last weekly one (days 114, 144, … ≤ 365):
    relative days, so that every patient's series has the same spacing. Idempotent: schedules
    that exist (by programme and name) are returned as they are."""
    last_weekly = 7 * weekly_weeks
    parts = [
        _Part("Baseline", Once(day=baseline_day), timedelta(days=3), timedelta(days=6), timedelta(days=2)),
        _Part("Weekly", Every(every_days=7, from_day=7, to_day=last_weekly),
              timedelta(days=1), timedelta(days=2), timedelta(days=1)),
        _Part("Monthly", Every(every_days=30, from_day=last_weekly + 30, to_day=monthly_until_day),
              timedelta(days=3), timedelta(days=7), timedelta(days=2)),
    ]
    out = []
    for part in parts:
        name = f"{part.name}: {questionnaire_url.rsplit('/', 1)[-1]}"
        existing = Schedule.objects.filter(program=program, name=name).first()
        out.append(existing or schedule_create(
            program=program, name=name, questionnaire_url=questionnaire_url, kind=part.spec.kind,
            params=spec_params(part.spec), open_before=part.open_before, window=part.window,
            remind_before=part.remind_before,
        ))
    return out


# --- generation ---------------------------------------------------------------------------------

def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=TZ)


def _times(schedule: Schedule, day: date) -> tuple[datetime, datetime, datetime]:
    # Arithmetic on datetimes carrying a ZoneInfo is wall-clock arithmetic: "opens 2 days before
    # 09:00" is 09:00 two days earlier even when daylight saving changed in between. Converted to
    # UTC only at the end.
    due = datetime.combine(day, schedule.due_time, tzinfo=TZ)
    utc = ZoneInfo("UTC")
    return (
        (due - schedule.open_before).astimezone(utc),
        due.astimezone(utc),
        (due + schedule.window).astimezone(utc),
    )


def schedule_preview(*, schedule: Schedule, index_date: date,
                     count: int = 10) -> list[tuple[datetime, datetime, datetime]]:
    """The first ``count`` occurrences of an (unsaved) schedule for an example index date, as
    (opens, due, closes) in Danish time: what the programme editor shows before saving."""
    days = schedule.spec.dates(index_date)[:count]
    return [(opens.astimezone(TZ), due.astimezone(TZ), closes.astimezone(TZ))
            for opens, due, closes in (_times(schedule, day) for day in days)]


def _paused_on(patient_id: uuid.UUID) -> list[tuple[date, date | None]]:
    return list(Pause.objects.filter(patient_id=patient_id, withdrawn=False).values_list("starts_on", "ends_on"))


def _inside(due_at: datetime, pauses: list[tuple[date, date | None]]) -> bool:
    day = due_at.astimezone(TZ).date()
    return any(start <= day and (end is None or day <= end) for start, end in pauses)


def schedule_generate_occurrences(*, episode: TreatmentEpisode, now: datetime | None = None) -> int:
    """Create the occurrences of every active schedule of the episode's programme, up to each
    schedule's end (and the episode's end, if it has one). Returns how many were new.

    Idempotent: existing occurrences are left alone (unique per episode, schedule, due time).
    Occurrences whose deadline has already passed at ``now`` are not created — the patient was
    never asked, so they are neither open nor missed (an episode registered late, or a schedule
    added to a running programme, starts with what can still be answered)."""
    now = now or timezone.now()
    pauses = _paused_on(episode.patient_id)
    created = 0
    for schedule in Schedule.objects.filter(program_id=episode.program_id, active=True).order_by("id"):
        existing = set(Occurrence.objects.filter(episode=episode, schedule=schedule).values_list("due_at", flat=True))
        rows = []
        for day in schedule.spec.dates(episode.treatment_start):
            if episode.end is not None and day > episode.end:
                continue
            opens_at, due_at, closes_at = _times(schedule, day)
            if closes_at <= now or due_at in existing:
                continue
            rows.append(Occurrence(
                patient_id=episode.patient_id, episode=episode, schedule=schedule,
                questionnaire_url=schedule.questionnaire_url, opens_at=opens_at, due_at=due_at,
                closes_at=closes_at,
                status=OccurrenceStatus.PAUSED if _inside(due_at, pauses) else OccurrenceStatus.SCHEDULED,
            ))
        # ignore_conflicts: a concurrent run for the same episode (daily sweep + the task fired
        # for a new episode) inserts the same rows; the unique constraint keeps one of each.
        Occurrence.objects.bulk_create(rows, ignore_conflicts=True)
        created += len(rows)
    return created


def episodes_generate_occurrences(*, now: datetime) -> int:
    """The daily sweep: generate for every episode that has not ended. Covers new episodes,
    schedules added to a programme, and anything a lost task left undone."""
    today = now.astimezone(TZ).date()
    episodes = TreatmentEpisode.objects.filter(Q(end=None) | Q(end__gte=today)).filter(
        program__schedules__active=True
    ).distinct().order_by("id")
    return sum(schedule_generate_occurrences(episode=e, now=now) for e in episodes.iterator())


# --- opening, closing, missing ------------------------------------------------------------------

def _newest_version(url: str) -> Questionnaire | None:
    return Questionnaire.objects.filter(url=url).order_by("-created_at", "-id").first()


def _open_due(queryset: QuerySet[Occurrence], now: datetime) -> int:
    due = queryset.filter(status=OccurrenceStatus.SCHEDULED, opens_at__lte=now, closes_at__gt=now)
    opened = 0
    for url in set(due.values_list("questionnaire_url", flat=True)):
        # Guarded by status: two sweeps at once open each occurrence once.
        opened += due.filter(questionnaire_url=url).update(
            status=OccurrenceStatus.OPEN, questionnaire=_newest_version(url)
        )
    return opened


@dataclass(frozen=True)
class Advanced:
    opened: int
    missed: int


def occurrences_advance(*, now: datetime, batch: int = 500) -> Advanced:
    """scheduled → open once ``opens_at`` passed; scheduled/open → missed once ``closes_at``
    passed, recording a MissedOccurrence in the same transaction. Paused and completed ones are
    never touched. Running it twice changes nothing the second time."""
    opened = _open_due(Occurrence.objects.all(), now)
    missed = 0
    while True:
        with transaction.atomic():
            # SKIP LOCKED: an occurrence being completed right now (row locked by the submission's
            # guarded update) is left to the next run, which sees it completed.
            ids = list(
                Occurrence.objects.select_for_update(skip_locked=True)
                .filter(status__in=LIVE, closes_at__lte=now)
                .order_by("closes_at", "id")
                .values_list("id", flat=True)[:batch]
            )
            if not ids:
                break
            Occurrence.objects.filter(id__in=ids, status__in=LIVE).update(status=OccurrenceStatus.MISSED)
            MissedOccurrence.objects.bulk_create(
                [MissedOccurrence(occurrence_id=i, recorded_at=now) for i in ids], ignore_conflicts=True
            )
            # Each miss waits in the evaluation inbox until its deadline has passed; the missed
            # rules' grace periods are theirs to add (alerts.evaluation.missed). The sweep asks
            # for them: not now, in the middle of a run over the schedules.
            enqueue_each(source=EvaluationSource.MISSED, due=MissedOccurrence.objects.filter(
                occurrence_id__in=ids, processed_at=None).values_list("id", "occurrence__closes_at"))
        missed += len(ids)
    return Advanced(opened=opened, missed=missed)


# --- pauses -------------------------------------------------------------------------------------

def _live_due_between(patient: Patient, starts_on: date, ends_on: date | None) -> QuerySet[Occurrence]:
    qs = Occurrence.objects.filter(patient=patient, status__in=LIVE, due_at__gte=_local_midnight(starts_on))
    if ends_on is not None:
        qs = qs.filter(due_at__lt=_local_midnight(ends_on + timedelta(days=1)))
    return qs


def pause_create(
    *,
    patient: Patient,
    starts_on: date,
    ends_on: date | None,
    reason: str,
    created_by: User,
    now: datetime | None = None,
    request: HttpRequest | None = None,
) -> Pause:
    """Pause a patient's occurrences due (local date) from ``starts_on`` to ``ends_on``
    inclusive (None = until ended): they become paused, never missed."""
    now = now or timezone.now()
    errors = {}
    if not reason.strip():
        errors["reason"] = _("Give the reason for the pause, e.g. holiday or admission.")
    if ends_on is not None and ends_on < starts_on:
        errors["ends_on"] = _("The pause ends before it starts.")
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        pause = Pause.objects.create(patient=patient, starts_on=starts_on, ends_on=ends_on,
                                     reason=reason.strip(), created_by=created_by, created_at=now)
        _live_due_between(patient, starts_on, ends_on).update(status=OccurrenceStatus.PAUSED)
        audit_record(user=created_by, action=Action.CREATE, resource=f"Pause/{pause.pk}",
                     patient_id=patient.pk, request=request)
    return pause


def pause_end(*, pause: Pause, on: date, by: User, now: datetime | None = None,
              request: HttpRequest | None = None) -> Pause:
    """End a pause early: ``on`` is its new last day. A pause ended before it began is withdrawn.
    Paused occurrences that no longer fall inside any pause and can still be answered go back to
    scheduled, or straight to open if their window is running."""
    now = now or timezone.now()
    if pause.withdrawn or (pause.ends_on is not None and on >= pause.ends_on):
        raise ValidationError({"ends_on": _("The pause already ends on %(day)s.") % {"day": pause.ends_on}})
    with transaction.atomic():
        pause = Pause.objects.select_for_update().get(pk=pause.pk)
        if on < pause.starts_on:
            pause.withdrawn = True
        else:
            pause.ends_on = on
        pause.ended_by, pause.ended_at = by, now
        pause.save(update_fields=["ends_on", "withdrawn", "ended_by", "ended_at"])
        pauses = _paused_on(pause.patient_id)
        paused = Occurrence.objects.filter(patient_id=pause.patient_id, status=OccurrenceStatus.PAUSED,
                                           closes_at__gt=now)
        restore = [o.pk for o in paused if not _inside(o.due_at, pauses)]
        restored = Occurrence.objects.filter(pk__in=restore, status=OccurrenceStatus.PAUSED)
        restored.update(status=OccurrenceStatus.SCHEDULED)
        _open_due(Occurrence.objects.filter(pk__in=restore), now)
        audit_record(user=by, action=Action.UPDATE, resource=f"Pause/{pause.pk} end",
                     patient_id=pause.patient_id, request=request)
    return pause


# --- answering ----------------------------------------------------------------------------------

def _answerable(now: datetime, *, late: bool = False) -> Q:
    # "scheduled" with a running window counts: the advance sweep may simply not have run yet.
    # With ``late``, "missed" counts for an answer given inside the window and uploaded after the
    # deadline (a phone offline for two days): the patient did answer in time. An answer given
    # after the deadline lies outside the window, so it never completes a missed occurrence.
    statuses = (*LIVE, OccurrenceStatus.MISSED) if late else LIVE
    return Q(status__in=statuses, opens_at__lte=now, closes_at__gt=now)


def occurrence_for_submission(*, patient: Patient, questionnaire_url: str, now: datetime) -> Occurrence | None:
    """The occurrence an answer to ``questionnaire_url`` given at ``now`` (the answer's own time,
    not its receipt) fulfils: the one whose window contains ``now`` with the earliest deadline,
    or None (the questionnaire was not scheduled for the patient then)."""
    return (
        Occurrence.objects.filter(_answerable(now, late=True), patient=patient, questionnaire_url=questionnaire_url)
        .order_by("closes_at", "id")
        .first()
    )


def occurrence_fulfil(*, response: QuestionnaireResponse, patient: Patient, authored_at: datetime,
                      received_at: datetime) -> None:
    """A completed answer, in the transaction that stores it (questionnaires.services.response_submit,
    registered by schedules.apps): it fulfils the scheduled occurrence whose window contained its
    own time, if any — also one already recorded as missed, when the answer was given in time and
    uploaded late. Answers between occurrences are welcome too (patients report symptoms when they
    have them). An occurrence that closed (or was paused) while the answer was sent refuses it
    (ResponseConflict, with the reason for the patient): nothing is stored, the draft is untouched."""
    occurrence = occurrence_for_submission(patient=patient, questionnaire_url=response.questionnaire.url,
                                           now=authored_at)
    if occurrence is None:
        return
    try:
        occurrence_complete(occurrence=occurrence, response=response, now=authored_at, received_at=received_at)
    except OccurrenceNotOpen as exc:
        raise ResponseConflict(str(exc)) from exc


def occurrence_complete(
    *, occurrence: Occurrence, response: QuestionnaireResponse, now: datetime | None = None,
    received_at: datetime | None = None,
) -> Occurrence:
    """Mark ``occurrence`` answered by ``response`` given at ``now`` (the answer's own time).
    Raises OccurrenceNotOpen (``now`` outside the window, paused, already answered) or
    ValidationError (response of another patient or questionnaire, or a draft). Call it in the
    transaction that stores the response, so that a refusal stores nothing.

    A missed occurrence whose window contains ``now`` is completed too (a late upload). If the
    rules have not looked at its MissedOccurrence yet, that row is closed here (processed, with
    the answer that came late), so no missed alert is raised; if they have, alerts.services
    tells the open alert when it evaluates the response."""
    now = now or timezone.now()
    received_at = received_at or timezone.now()
    if response.patient_id != occurrence.patient_id:
        raise ValidationError(_("The response belongs to another patient than the occurrence."))
    if response.questionnaire.url != occurrence.questionnaire_url:
        raise ValidationError(_("The response answers another questionnaire than the occurrence asks for."))
    if response.status != ResponseStatus.COMPLETED:
        raise ValidationError(_("A draft does not complete a questionnaire; submit it first."))
    # The guarded update is the claim: of two submissions at once, one completes the occurrence.
    claimed = Occurrence.objects.filter(_answerable(now, late=True), pk=occurrence.pk).update(
        status=OccurrenceStatus.COMPLETED, completed_at=now, response=response,
        questionnaire=response.questionnaire,
    )
    occurrence.refresh_from_db()
    if not claimed:
        raise OccurrenceNotOpen(occurrence, _not_open_reason(occurrence, now))
    # A late upload: the miss stays recorded (the deadline did pass without an answer), with the
    # answer that came late. Not yet processed by the rules → processed now, so no missed alert
    # is raised. A row being evaluated right now is locked by missed_evaluate: this waits for it,
    # finds it processed and keeps that time (alerts.services then tells its open alert).
    MissedOccurrence.objects.filter(occurrence=occurrence).update(
        processed_at=Coalesce(F("processed_at"), Value(received_at)), answered_late_by=response)
    return occurrence


def _not_open_reason(occurrence: Occurrence, now: datetime) -> str:
    def at(moment: datetime) -> str:
        return formats.date_format(moment.astimezone(TZ), "DATETIME_FORMAT")

    if occurrence.status == OccurrenceStatus.COMPLETED:
        return _("This questionnaire was already answered on %(at)s.") % {"at": at(occurrence.completed_at or now)}
    if occurrence.status == OccurrenceStatus.PAUSED:
        return _("This questionnaire is paused; it cannot be answered now.")
    if occurrence.status == OccurrenceStatus.MISSED or occurrence.closes_at <= now:
        return _("This questionnaire closed on %(at)s; answers can no longer be given.") % {
            "at": at(occurrence.closes_at)}
    return _("This questionnaire opens on %(at)s.") % {"at": at(occurrence.opens_at)}


# --- reminders ----------------------------------------------------------------------------------

def reminders_send_due(*, now: datetime) -> int:
    """Send the "before the deadline" reminder of every answerable, unanswered occurrence whose
    schedule's ``remind_before`` has been reached, through every enabled channel. Returns how
    many were sent.

    Each (occurrence, channel) is claimed by inserting a "sending" row before the transport is
    called; the partial unique constraint lets only one such row exist, so a task that runs twice
    (or two at once) sends once. A failed attempt is kept with its error and retried on the next
    run, up to REMINDER_MAX_ATTEMPTS."""
    ReminderDelivery.objects.filter(
        status=ReminderStatus.SENDING, attempted_at__lt=now - REMINDER_STALE_AFTER
    ).update(status=ReminderStatus.FAILED, error="Interrupted: the worker stopped while sending.")
    due = (
        Occurrence.objects.filter(_answerable(now), schedule__remind_before__isnull=False)
        .annotate(remind_at=ExpressionWrapper(F("closes_at") - F("schedule__remind_before"),
                                              output_field=DateTimeField()))
        .filter(remind_at__lte=now)
        .select_related("patient__user")
        .order_by("closes_at", "id")
    )
    sent = 0
    for channel in channels_enabled():
        # Occurrences already reminded through this channel are left out in the query, so a run
        # costs queries only for the reminders it actually attempts.
        done = ReminderDelivery.objects.filter(
            occurrence=OuterRef("pk"), channel=channel, kind=REMINDER_BEFORE_DEADLINE,
            status__in=[ReminderStatus.SENDING, ReminderStatus.SENT],
        )
        for occurrence in due.exclude(Exists(done)):
            sent += _deliver(occurrence, channel, REMINDER_BEFORE_DEADLINE, now)
    return sent


def _deliver(occurrence: Occurrence, channel: str, kind: str, now: datetime) -> int:
    attempts = ReminderDelivery.objects.filter(occurrence=occurrence, channel=channel, kind=kind)
    if attempts.filter(status__in=[ReminderStatus.SENDING, ReminderStatus.SENT]).exists():
        return 0
    if attempts.filter(status=ReminderStatus.FAILED).count() >= REMINDER_MAX_ATTEMPTS:
        return 0
    try:
        with transaction.atomic():
            delivery = ReminderDelivery.objects.create(
                occurrence=occurrence, channel=channel, kind=kind, attempted_at=now
            )
    except IntegrityError:
        return 0  # another run claimed it between our check and our insert
    # The transport is slow I/O: called outside any transaction, after the claim is committed.
    try:
        transport_get(channel).send(occurrence=occurrence, kind=kind)
    except Exception as exc:
        log.warning("reminder %s via %s for occurrence %s failed: %s", kind, channel, occurrence.pk, exc)
        ReminderDelivery.objects.filter(pk=delivery.pk).update(
            status=ReminderStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        return 0
    ReminderDelivery.objects.filter(pk=delivery.pk).update(status=ReminderStatus.SENT)
    return 1
