"""The review queue ("Svar til gennemsyn"): every submitted response is looked at by a nurse
within the programme's promise, green ones included (issue 19).

AmbuFlex sorts every response green, yellow or red so that none goes unseen; an alert covers only
what a rule fires on. So on submission (``questionnaires.services.response_submit``, the one path
of the web form and FHIR) each completed response gets:

- a **colour**: the worst answer colour of the questionnaire version it answered (the
  answer-severity extension, ``answer_colour``; "contact me" = yes is at least yellow). When the
  rules later raise or add to an alert from this response, ``response_colour_raise`` lifts the
  colour to the alert's (never lowers it).
- a **due time**: the end (23:59:59 Europe/Copenhagen) of the Nth working day after the answers
  reached us, N being the promise of the patient's programme (``Program.review_workdays``, the
  strictest if several programmes offer the questionnaire). Working days skip weekends and the
  Danish public holidays of the maintained ``holidays`` library (Easter, Ascension, Whit Monday,
  Christmas, New Year; Store Bededag until 2023) — not the "optional" days such as Christmas
  Eve, which many departments staff as weekdays.

A response leaves the queue only through ``response_review`` / ``responses_review_bulk``: a
ResponseReview row written on purpose, which is also the one source of "Seen by your care team"
on the patient's pages (``responses_reviewed_at``). Opening a patient page is audited as a read
and changes nothing here. Overdue reviews climb the alerts' escalation ladder
(``alerts.review_escalation``).
"""

import uuid
from datetime import date, datetime, time, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Case, F, IntegerField, Min, Q, QuerySet, Value, When
from django.http import HttpRequest
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from accounts.models import Role, User
from audit.models import Action
from audit.services import audit_record
from patients.access import Requester, patients_for
from patients.models import TreatmentEpisode
from questionnaires.definition import Definition, Item, response_items_walk
from questionnaires.models import Questionnaire, QuestionnaireResponse, ResponseReview, ResponseStatus, ReviewColour

TZ = ZoneInfo("Europe/Copenhagen")
RANK: dict[str, int] = {ReviewColour.GREEN: 0, ReviewColour.YELLOW: 1, ReviewColour.RED: 2}
CONTACT_LINK_ID = "contact"  # "Do you want us to contact you?" in every library instrument
NOTE_MAX = 2000
BULK_MAX = 200


# --- colour -------------------------------------------------------------------------------------

def answer_colour(item: Item, answer: dict[str, Any], contact_link_id: str = CONTACT_LINK_ID) -> str | None:
    """The colour one answer carries (yellow/red), or None. On a boolean item the extension
    colours "yes"; a "yes" to the contact question is never nothing: the patient asked for a
    call. Shared with the answer-severity rule kind (alerts.rules.severity)."""
    if item.type == "boolean":
        if answer.get("valueBoolean") is not True:
            return None
        colour = item.severity
        if item.linkId == contact_link_id and colour is None:
            colour = ReviewColour.YELLOW.value
        return colour
    option = item.option_for(answer)
    return option.severity if option is not None else None


def response_colour(definition: Definition, items: list[dict[str, Any]]) -> str:
    """Green, yellow or red: the worst colour among the answers given."""
    by_id = definition.by_link_id()
    worst = ReviewColour.GREEN.value
    for given in response_items_walk(items):
        item = by_id.get(given.get("linkId", ""))
        if item is None:
            continue
        for answer in given.get("answer") or []:
            colour = answer_colour(item, answer)
            if colour is not None and colour in RANK and RANK[colour] > RANK[worst]:
                worst = colour
    return worst


def response_colour_raise(*, response_id: int, colour: str) -> bool:
    """Lift a response's colour to ``colour`` (an open alert raised from it), never lower it.
    One guarded UPDATE, so it is safe inside the evaluating transaction and against a review."""
    if colour not in RANK:
        return False
    lower = [c for c, r in RANK.items() if r < RANK[colour]]
    return bool(QuestionnaireResponse.objects.filter(pk=response_id, review_colour__in=lower)
                .update(review_colour=colour))


# --- due time -----------------------------------------------------------------------------------

@cache
def _holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("DK", years=year, categories=("public",))


def working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _holidays(day.year)


def review_due_at(received_at: datetime, workdays: int) -> datetime:
    """The end of the ``workdays``-th working day after the day ``received_at`` falls on in
    Denmark. The day of arrival does not count: answers sent at 22:00 on a Monday are due at the
    end of Wednesday with a promise of 2 working days, like answers sent at 08:00."""
    day = received_at.astimezone(TZ).date()
    left = max(1, workdays)
    while left:
        day += timedelta(days=1)
        if working_day(day):
            left -= 1
    return datetime.combine(day, time(23, 59, 59), tzinfo=TZ)


def review_workdays_for(*, patient_id: uuid.UUID, questionnaire_url: str, on: date) -> int:
    """The promise of the programmes that offer this questionnaire to the patient (episodes not
    ended before ``on``): the shortest, as a patient in two programmes was promised both. Without
    such an episode (an answer between programmes), the site default PRO_REVIEW_WORKDAYS."""
    found = (TreatmentEpisode.objects.filter(patient_id=patient_id, program__questionnaires__url=questionnaire_url)
             .filter(Q(end=None) | Q(end__gte=on)).aggregate(n=Min("program__review_workdays"))["n"])
    return int(found if found is not None else getattr(settings, "PRO_REVIEW_WORKDAYS", 2))


def review_fields(*, patient_id: uuid.UUID, questionnaire: Questionnaire, items: list[dict[str, Any]],
                  received_at: datetime) -> dict[str, Any]:
    """The review queue's columns of a response being submitted (``response_submit``). The clock
    starts when the answers reach us, not at a client's ``authored`` time: a form filled in
    offline last week is still owed its look."""
    workdays = review_workdays_for(patient_id=patient_id, questionnaire_url=questionnaire.url,
                                   on=received_at.astimezone(TZ).date())
    return {"review_due_at": review_due_at(received_at, workdays),
            "review_colour": response_colour(questionnaire.definition, items)}


# --- reads --------------------------------------------------------------------------------------

def _colour_rank() -> Case:
    return Case(When(review_colour=ReviewColour.RED, then=Value(0)),
                When(review_colour=ReviewColour.YELLOW, then=Value(1)),
                default=Value(2), output_field=IntegerField())


def review_queue(user: Requester) -> QuerySet[QuestionnaireResponse]:
    """Submitted responses not yet reviewed, of the patients of ``user``'s care teams (only
    clinicians review: an administrator is not the care team): red, yellow, green, and within a
    colour the earliest due first."""
    if user is None or getattr(user, "role", None) != Role.CLINICIAN:
        return QuestionnaireResponse.objects.none()
    return (QuestionnaireResponse.objects
            .filter(patient__in=patients_for(user), status=ResponseStatus.COMPLETED, review__isnull=True)
            .annotate(colour_rank=_colour_rank())
            .select_related("patient", "questionnaire")
            # A response stored without a due time (written past response_submit) is overdue
            # already, not invisible: it sorts first within its colour.
            .order_by("colour_rank", F("review_due_at").asc(nulls_first=True), "pk"))


def reviews_overdue_count(user: Requester, *, now: datetime | None = None) -> int:
    return review_queue(user).filter(Q(review_due_at__lt=now or timezone.now()) | Q(review_due_at=None)).count()


def responses_reviewed_at(patient_id: uuid.UUID, response_ids: list[int]) -> dict[int, datetime]:
    """When each response was marked as reviewed — the date "Seen by your care team on …" shows
    the patient. Only the ResponseReview row counts; responses not in the result are not seen."""
    if not response_ids:
        return {}
    return dict(ResponseReview.objects.filter(response__patient_id=patient_id, response_id__in=response_ids)
                .values_list("response_id", "reviewed_at"))


# --- writes -------------------------------------------------------------------------------------

class AlreadyReviewed(Exception):
    """Someone marked the response first; the message says who and when."""

    def __init__(self, review: ResponseReview) -> None:
        who = review.reviewed_by.get_full_name() or review.reviewed_by.get_username()
        self.message = _("%(who)s already marked these answers as reviewed at %(when)s.") % {
            "who": who, "when": date_format(timezone.localtime(review.reviewed_at), "j. F H:i")}
        super().__init__(self.message)
        self.review = review


def _note_checked(note: str) -> str:
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise ValidationError({"note": _("Keep the note under %(n)s characters.") % {"n": NOTE_MAX}})
    return note


def response_review(*, response: QuestionnaireResponse, user: User, note: str = "",
                    request: HttpRequest | None = None) -> ResponseReview:
    """Mark one response as reviewed by ``user`` (a clinician the caller has checked may see the
    patient). The one-to-one column claims it: a second click, or a colleague at the same moment,
    gets AlreadyReviewed naming who was first, and nothing more is stored."""
    note = _note_checked(note)
    if response.status != ResponseStatus.COMPLETED:
        raise ValidationError({"response": _("Only submitted answers can be marked as reviewed.")})
    try:
        with transaction.atomic():
            # The same row lock the bulk path takes, so the two never race into the constraint.
            QuestionnaireResponse.objects.select_for_update().filter(pk=response.pk).first()
            review = ResponseReview.objects.create(response=response, reviewed_by=user, note=note)
            audit_record(user=user, action=Action.CREATE, resource=f"QuestionnaireResponse/{response.pk} review",
                         patient_id=response.patient_id, request=request)
    except IntegrityError:
        raise AlreadyReviewed(ResponseReview.objects.select_related("reviewed_by").get(response=response)) from None
    return review


def responses_review_bulk(*, response_ids: list[int], user: User,
                          request: HttpRequest | None = None) -> list[ResponseReview]:
    """Mark many green responses as reviewed at once, from the list. All or nothing: if any id is
    not a green, unreviewed response of ``user``'s patients, nothing is stored and the
    ValidationError (field ``ids``) names each one and why — red and yellow answers are looked at
    one by one on the patient's page. The rows are locked first, so a colour lifted by an alert
    meanwhile is seen here."""
    if not response_ids:
        raise ValidationError({"ids": _("Choose at least one response.")})
    if len(response_ids) > BULK_MAX:
        raise ValidationError({"ids": _("At most %(n)s responses at a time.") % {"n": BULK_MAX}})
    ids = list(dict.fromkeys(response_ids))
    with transaction.atomic():
        scope = QuestionnaireResponse.objects.filter(patient__in=patients_for(user), status=ResponseStatus.COMPLETED)
        if getattr(user, "role", None) != Role.CLINICIAN:
            scope = scope.none()
        found = {r.pk: r for r in scope.filter(pk__in=ids).select_related("patient").order_by("pk")
                 .select_for_update(of=("self",))}
        reviewed = set(ResponseReview.objects.filter(response_id__in=list(found)).values_list("response_id", flat=True))
        problems: list[str] = []
        for pk in ids:
            response = found.get(pk)
            if response is None:
                problems.append(_("Response %(id)s: no such response.") % {"id": pk})
            elif pk in reviewed:
                problems.append(_("%(name)s: already marked as reviewed.") % {"name": response.patient.name})
            elif response.review_colour != ReviewColour.GREEN:
                problems.append(_("%(name)s: red and yellow answers are reviewed one at a time on the "
                                  "patient's page.") % {"name": response.patient.name})
        if problems:
            raise ValidationError({"ids": problems})
        now = timezone.now()
        reviews = ResponseReview.objects.bulk_create([
            ResponseReview(response=found[pk], reviewed_by=user, reviewed_at=now, bulk=True) for pk in ids])
        for pk in ids:
            audit_record(user=user, action=Action.CREATE, resource=f"QuestionnaireResponse/{pk} review (bulk)",
                         patient_id=found[pk].patient_id, request=request)
    return reviews
