"""A questionnaire not answered: a scheduled occurrence past its deadline plus ``grace_hours``.

schedules records a MissedOccurrence when an occurrence's deadline passes unanswered (occurrences
due during a pause are paused instead and never missed). alerts.services.missed_evaluate runs
this kind once the grace period has passed. It stays silent when

- the questionnaire was answered after all, outside the schedule, between the occurrence
  opening and the end of the grace period (a late answer is an answer);
- a pause covers the occurrence's due date — also one recorded after the miss, e.g. an
  admission registered the day after;
- fewer than ``consecutive`` occurrences in a row were missed ("stopped answering" = 2 or 3).
  Occurrences that were paused are skipped when counting; an answered one ends the run.

``questionnaire`` limits the rule to one questionnaire (canonical URL); without it every
scheduled questionnaire counts, and "in a row" runs across all of them in order of due time.
"""

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING
from uuid import UUID
from zoneinfo import ZoneInfo

import pydantic
from django.utils import formats
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l
from django.utils.translation import ngettext

from alerts.rules.form_spec import (
    Number,
    QuestionnairePick,
)

if TYPE_CHECKING:
    from alerts.rules import Finding
    from alerts.rules.context import Context, PastOccurrence
    from schedules.models import MissedOccurrence, Occurrence

# The patient's days (pauses, due dates) are Danish calendar days, as in schedules.services.
TZ = ZoneInfo("Europe/Copenhagen")


class Params(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    questionnaire: str | None = None  # canonical URL; None = any scheduled questionnaire
    grace_hours: Decimal = Decimal(0)
    consecutive: int = pydantic.Field(default=1, ge=1, le=20)

    @pydantic.model_validator(mode="after")
    def _check(self) -> "Params":
        if self.grace_hours < 0:
            raise ValueError(_("The hours of grace cannot be negative."))
        return self

    @property
    def grace(self) -> timedelta:
        return timedelta(hours=float(self.grace_hours))


def _day(moment: datetime) -> date:
    return moment.astimezone(TZ).date()


def _answered_late(ctx: "Context", patient_id: UUID, occurrence: "Occurrence | PastOccurrence",
                   grace: timedelta) -> bool:
    return ctx.answered(patient_id, occurrence.questionnaire_url, since=occurrence.opens_at,
                        until=occurrence.closes_at + grace)


def evaluate_missed(params: Params, missed: "MissedOccurrence", ctx: "Context") -> "Finding | None":
    from alerts.rules import Finding

    occurrence = missed.occurrence
    patient_id = occurrence.patient_id
    if params.questionnaire is not None and occurrence.questionnaire_url != params.questionnaire:
        return None
    if (ctx.as_of or ctx.now) < occurrence.closes_at + params.grace:
        return None  # still within the grace period: a late answer may come
    if ctx.paused(patient_id, _day(occurrence.due_at)) or _answered_late(ctx, patient_id, occurrence, params.grace):
        return None
    run: list[Occurrence | PastOccurrence] = [occurrence]
    if params.consecutive > 1:
        # Paused ones are skipped, so look further back than the run itself.
        for past in ctx.occurrences_before(patient_id, params.questionnaire, before=occurrence.due_at,
                                           limit=params.consecutive * 5):
            if past.status == "paused" or ctx.paused(patient_id, _day(past.due_at)):
                continue
            if past.status != "missed" or _answered_late(ctx, patient_id, past, params.grace):
                break
            run.append(past)
            if len(run) == params.consecutive:
                break
        if len(run) < params.consecutive:
            return None

    title = occurrence.questionnaire.title if occurrence.questionnaire is not None else occurrence.questionnaire_url
    due = formats.date_format(occurrence.due_at.astimezone(TZ), "SHORT_DATETIME_FORMAT")
    if len(run) == 1:
        reason = _("“%(title)s” due %(due)s was not answered.") % {"title": title, "due": due}
    else:
        reason = ngettext(
            "%(count)s questionnaire in a row not answered, the last “%(title)s” due %(due)s.",
            "%(count)s questionnaires in a row not answered, the last “%(title)s” due %(due)s.",
            len(run),
        ) % {"count": len(run), "title": title, "due": due}
    return Finding(
        reason=reason,
        evidence={
            "missed_id": missed.pk,
            "occurrence_id": occurrence.pk,
            "questionnaire_url": occurrence.questionnaire_url,
            "questionnaire": title,
            "due_at": occurrence.due_at.isoformat(),
            "closes_at": occurrence.closes_at.isoformat(),
            "grace_hours": str(params.grace_hours),
            "consecutive": len(run),
            "occurrences": [{"occurrence_id": o.id, "questionnaire_url": o.questionnaire_url,
                             "due_at": o.due_at.isoformat()} for o in run],
        },
    )


# How the editor asks for the parameters (alerts.rules.form_spec, issue 24).
FORM = (
    QuestionnairePick("questionnaire", _l("Questionnaire"), _l("Leave empty for every scheduled questionnaire."),
                      required=False),
    Number("grace_hours", _l("Grace after the deadline"), _l("E.g. 12 hours before the team is told."),
           unit=_l("hours"), required=True, minimum=Decimal("0"),
           maximum=Decimal("336"), initial=0),
    Number("consecutive", _l("Missed in a row"), _l("E.g. 2: one forgotten answer is not a reason to call."),
           required=True, minimum=Decimal("1"), maximum=Decimal("20"),
           whole=True, initial=1),
)
CHECKS = ()
