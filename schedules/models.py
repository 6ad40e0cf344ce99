"""Questionnaire schedules relative to a patient's index date, their occurrences, pauses,
missed-occurrence records and every reminder delivery attempt."""

from datetime import time, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from schedules.spec import Spec, spec_parse

# The schedule kinds of schedules.spec.KINDS, named for people (the admin showed raw values).
SCHEDULE_KINDS = [("offsets", _("On fixed days")), ("every", _("Every so many days")),
                  ("weekdays", _("On fixed weekdays")), ("once", _("Once"))]


class Schedule(models.Model):
    """When a programme's patients answer a questionnaire, counted from each episode's index date.

    ``kind`` + ``params`` are a typed spec (schedules.spec). Each occurrence is due at ``due_time``
    (Danish local time) on its day, opens ``open_before`` earlier and closes ``window`` later.
    Changing the timing of a schedule that already has occurrences would create a second set
    beside the first (occurrences are unique per due time): deactivate it and add a new one."""

    program = models.ForeignKey("patients.Program", on_delete=models.CASCADE, related_name="schedules",
                                verbose_name=_("programme"))
    name = models.CharField(_("name"), max_length=200)
    # The canonical url, not a version: each occurrence gets the newest version when it opens.
    questionnaire_url = models.URLField(_("questionnaire (canonical url)"), max_length=300)
    kind = models.CharField(_("how often"), max_length=16, choices=SCHEDULE_KINDS)
    params = models.JSONField(_("days"))
    due_time = models.TimeField(_("due at (Danish time)"), default=time(9, 0))
    open_before = models.DurationField(_("opens before the due time"), default=timedelta(0))
    window = models.DurationField(_("open after the due time"))
    # Remind this long before the deadline while the occurrence is unanswered; None = never.
    remind_before = models.DurationField(_("reminder before the deadline"), null=True, blank=True)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("schedule")
        verbose_name_plural = _("schedules")
        constraints = [
            # The demo and the standard follow-up helper find their schedules again by name.
            models.UniqueConstraint(fields=["program", "name"], name="uniq_schedule_program_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.program_id})"

    @property
    def spec(self) -> Spec:
        return spec_parse(self.kind, self.params)

    def clean(self) -> None:
        errors: dict[str, Any] = {}
        try:
            spec_parse(self.kind, self.params)
        except ValidationError as exc:
            errors.update(exc.message_dict)
        errors.update(timing_errors(open_before=self.open_before, window=self.window,
                                    remind_before=self.remind_before))
        if self.program_id is not None and not self.program.questionnaires.filter(url=self.questionnaire_url).exists():
            # The admin's path: a url typed by hand that names nothing, or a questionnaire outside
            # the programme, is refused next to the field (issue 24).
            errors["questionnaire_url"] = str(_("The questionnaire is not one of the programme's questionnaires."))
        if errors:
            raise ValidationError(errors)


def timing_errors(
    *, open_before: timedelta | None, window: timedelta | None, remind_before: timedelta | None
) -> dict[str, str]:
    errors: dict[str, str] = {}
    if window is None or window <= timedelta(0):
        errors["window"] = str(_("The window must be longer than zero: it is the time from the due "
                                 "time to the deadline."))
    if open_before is None or open_before < timedelta(0):
        errors["open_before"] = str(_("Opening before the due time cannot be negative."))
    if remind_before is not None and remind_before <= timedelta(0):
        errors["remind_before"] = str(_("A reminder must come before the deadline (a positive duration)."))
    elif remind_before is not None and window and open_before is not None and remind_before >= open_before + window:
        errors["remind_before"] = str(_("The reminder would come before the questionnaire opens; make it "
                                        "shorter than the time from opening to the deadline."))
    return errors


class OccurrenceStatus(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")
    OPEN = "open", _("Open")
    COMPLETED = "completed", _("Completed")
    MISSED = "missed", _("Missed")
    PAUSED = "paused", _("Paused")


class Occurrence(models.Model):
    """One time a patient is asked to answer. Times are stored in UTC and computed in
    Europe/Copenhagen wall-clock time (a 09:00 due time stays 09:00 across daylight saving)."""

    patient = models.ForeignKey("patients.Patient", on_delete=models.CASCADE, related_name="occurrences")
    episode = models.ForeignKey("patients.TreatmentEpisode", on_delete=models.CASCADE, related_name="occurrences")
    schedule = models.ForeignKey(Schedule, on_delete=models.PROTECT, related_name="occurrences")
    questionnaire_url = models.URLField(max_length=300)
    # The version offered: the newest one when the occurrence opened (None while scheduled).
    questionnaire = models.ForeignKey(
        "questionnaires.Questionnaire", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    opens_at = models.DateTimeField()
    due_at = models.DateTimeField()
    closes_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=OccurrenceStatus.choices, default=OccurrenceStatus.SCHEDULED)
    completed_at = models.DateTimeField(null=True, blank=True)
    response = models.ForeignKey(
        "questionnaires.QuestionnaireResponse", on_delete=models.SET_NULL, null=True, blank=True,
        related_name="occurrences",
    )

    class Meta:
        constraints = [
            # Generation runs daily over every episode and again when a task is re-delivered:
            # this makes running it twice create nothing the second time.
            models.UniqueConstraint(fields=["episode", "schedule", "due_at"], name="uniq_occurrence_due"),
        ]
        indexes = [
            # occurrences_advance: scheduled ones whose opens_at passed
            models.Index(fields=["status", "opens_at"], name="occurrence_status_opens"),
            # occurrences_advance (missed) and reminders_send_due: open ones by deadline
            models.Index(fields=["status", "closes_at"], name="occurrence_status_closes"),
            # selectors: a patient's open occurrences and history; occurrence_for_submission
            models.Index(fields=["patient", "due_at"], name="occurrence_patient_due"),
        ]

    def __str__(self) -> str:
        return f"{self.questionnaire_url} due {self.due_at:%Y-%m-%d %H:%M} ({self.status})"


class MissedOccurrence(models.Model):
    """The status change open → missed, as a row. The rules (issue: alerts on missed answers)
    claim it with ``filter(pk=..., processed_at=None).update(processed_at=now)``."""

    occurrence = models.OneToOneField(Occurrence, on_delete=models.CASCADE, related_name="missed")
    recorded_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)
    # An answer given inside the window but uploaded after the deadline: it completed the
    # occurrence after all (schedules.services.occurrence_complete). If it came before the rules
    # looked at this row, processed_at is set with it and no missed alert is raised; if after,
    # alerts.services adds it to the open alert.
    answered_late_by = models.ForeignKey(
        "questionnaires.QuestionnaireResponse", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        indexes = [
            # the rules' sweep: missed occurrences nobody has looked at yet
            models.Index(fields=["recorded_at"], condition=models.Q(processed_at=None),
                         name="missed_unprocessed"),
        ]

    def __str__(self) -> str:
        return f"missed {self.occurrence_id} at {self.recorded_at:%Y-%m-%d %H:%M}"


class Pause(models.Model):
    """A holiday or an admission: occurrences due (local date) from ``starts_on`` to ``ends_on``
    inclusive are paused, not missed. ``ends_on`` None = until ended."""

    patient = models.ForeignKey("patients.Patient", on_delete=models.CASCADE, related_name="pauses")
    starts_on = models.DateField()
    ends_on = models.DateField(null=True, blank=True)
    reason = models.TextField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    # Ended early (ends_on moved forward) or withdrawn before it began: who and when.
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    ended_at = models.DateTimeField(null=True, blank=True)
    withdrawn = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["patient", "starts_on"], name="pause_patient_start")]

    def __str__(self) -> str:
        return f"pause {self.starts_on}–{self.ends_on or '…'}"


class ReminderStatus(models.TextChoices):
    # "sending" is the claim: written (and committed) before the transport is called.
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")


class ReminderDelivery(models.Model):
    """One attempt to deliver one reminder through one channel. Failed attempts stay as rows
    beside the retry that follows them."""

    occurrence = models.ForeignKey(Occurrence, on_delete=models.CASCADE, related_name="reminders")
    channel = models.CharField(max_length=32)
    kind = models.CharField(max_length=32)  # e.g. "before-deadline"
    attempted_at = models.DateTimeField()
    status = models.CharField(max_length=8, choices=ReminderStatus.choices, default=ReminderStatus.SENDING)
    error = models.TextField(blank=True)

    class Meta:
        constraints = [
            # The claim: at most one attempt in flight or delivered per reminder and channel, so a
            # re-delivered or concurrent task cannot send it twice. Failed attempts do not count,
            # so the next run may try again.
            models.UniqueConstraint(
                fields=["occurrence", "kind", "channel"],
                condition=models.Q(status__in=["sending", "sent"]),
                name="uniq_reminder_claim",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} via {self.channel}: {self.status}"
