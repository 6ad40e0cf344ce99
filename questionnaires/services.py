"""Writes for questionnaires: import, export, revise, drafts and submission."""

import copy
import logging
from datetime import datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import pydantic
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from accounts.models import User
from alerts.evaluation import Source as EvaluationSource
from alerts.evaluation import enqueue
from patients.models import Patient
from questionnaires import definition as qdef
from questionnaires.models import Questionnaire, QuestionnaireResponse, ResponseStatus
from questionnaires.review import review_fields
from questionnaires.validation import ResponseError, response_validate

logger = logging.getLogger(__name__)


class QuestionnaireImportError(ValidationError):
    """An import refused; ``issues`` name the items (``Issue.link_id``)."""

    def __init__(self, issues: list[qdef.Issue]) -> None:
        self.issues = issues
        super().__init__([str(i) for i in issues])


class ResponseInvalid(ValidationError):
    """A response refused; ``errors`` are ``(linkId, message)`` pairs."""

    def __init__(self, errors: list[ResponseError]) -> None:
        self.errors = errors
        super().__init__([f"{e.link_id}: {e.message}" if e.link_id else e.message for e in errors])


class AuthoredInvalid(ResponseInvalid):
    """The answer's own time (FHIR ``QuestionnaireResponse.authored``) cannot be right: in the
    future beyond the clock-skew allowance, before the patient was enrolled, or without a time
    zone. Nothing is stored."""

    def __init__(self, message: str) -> None:
        super().__init__([ResponseError(None, message)])


class ResponseConflict(ValidationError):
    """The response is valid but cannot be taken as it stands: its identifier was used for other
    answers, or the occurrence it would fulfil closed while it was being sent."""


# Called with the response, its patient, and its authored and received times in the transaction
# that stores a completed answer, in the order registered. Registered by apps above questionnaires in their ready()
# (schedules.apps: the scheduled occurrence the answer fulfils), so this app needs not import
# them. A hook refuses the answer by raising ResponseConflict: nothing is stored then.
class SubmittedHook(Protocol):
    def __call__(self, *, response: QuestionnaireResponse, patient: Patient, authored_at: datetime,
                 received_at: datetime) -> None: ...


_submitted_hooks: list[SubmittedHook] = []


def response_submitted_hook_register(hook: SubmittedHook) -> None:
    """Have ``hook`` run inside every ``response_submit`` that stores a completed answer (once per
    hook, however often registered)."""
    if hook not in _submitted_hooks:
        _submitted_hooks.append(hook)


def response_submitted_hooks() -> list[SubmittedHook]:
    """The hooks registered (tests: the apps above have plugged in)."""
    return list(_submitted_hooks)


IDENTIFIER_MAX = 100  # QuestionnaireResponse.identifier's column
# Enrolment days are Danish calendar days, as in schedules.services.
_TZ = ZoneInfo("Europe/Copenhagen")


def _parse(resource: Any) -> qdef.Definition:
    if not isinstance(resource, dict):
        raise QuestionnaireImportError([qdef.Issue("error", None, "a Questionnaire must be a JSON object")])
    try:
        return qdef.parse(resource)
    except pydantic.ValidationError as exc:
        raise QuestionnaireImportError([
            qdef.Issue("error", None, f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}")
            for e in exc.errors()
        ]) from exc


def _normalised(resource: dict[str, Any], parsed: qdef.Definition) -> dict[str, Any]:
    """The resource as stored: with a canonical url and a version, which every response refers to
    (``url|version``). Files without a url (the SDC test forms) get a URN from their id."""
    out = copy.deepcopy(resource)
    if not parsed.url and parsed.id:
        out["url"] = f"urn:proplatform:questionnaire:{parsed.id}"
    out["version"] = parsed.version or "1"
    return out


def questionnaire_review(*, resource: dict[str, Any]) -> list[qdef.Issue]:
    """What an import of ``resource`` would report (errors refuse it, warnings are shown)."""
    try:
        parsed = _parse(resource)
    except QuestionnaireImportError as exc:
        return exc.issues
    issues = parsed.review()
    if not parsed.url and not parsed.id:
        issues.insert(0, qdef.Issue("error", None, "url: a canonical url (or at least an id) is required"))
    return issues


def questionnaire_import(*, resource: dict[str, Any], strict: bool = False) -> Questionnaire:
    """``questionnaire_import_checked`` without saying whether the version is new."""
    return questionnaire_import_checked(resource=resource, strict=strict)[0]


def questionnaire_import_checked(*, resource: dict[str, Any], strict: bool = False) -> tuple[Questionnaire, bool]:
    """Store a FHIR R4 Questionnaire version.

    Refuses what cannot work (errors, each naming its item). Warnings — features rendered in a
    simpler way, such as an external answerValueSet answered in free text — are imported; they
    stay computable from the stored resource (``questionnaire_review``) and refuse the import when
    ``strict``. Re-importing the same url+version with the same content returns the stored row
    (and False: nothing was created); with other content it is refused (a change needs a new
    version: ``questionnaire_revise``)."""
    issues = questionnaire_review(resource=resource)
    refusing = [i for i in issues if i.severity == "error" or strict]
    if refusing:
        raise QuestionnaireImportError(refusing)
    for issue in issues:
        logger.warning("questionnaire import: %s", issue)
    parsed = qdef.parse(resource)
    stored = _normalised(resource, parsed)
    with transaction.atomic():
        existing = Questionnaire.objects.filter(url=stored["url"], version=stored["version"]).first()
        if existing is not None:
            if existing.resource != stored:
                raise QuestionnaireImportError([qdef.Issue(
                    "error", None,
                    f"version {stored['version']} of {stored['url']} exists with other content; "
                    "give it a new version")])
            return existing, False
        return Questionnaire.objects.create(
            url=stored["url"], version=stored["version"],
            title=parsed.title or parsed.name or stored["url"], status=parsed.status, resource=stored,
            # SDC's "sum of the ordinal values" calculatedExpression becomes the version's scale;
            # a scoring spec given later (load_instruments, the admin) takes its place.
            scoring=qdef.derived_scoring(parsed),
        ), True


def questionnaire_export(*, questionnaire: Questionnaire) -> dict[str, Any]:
    """The stored FHIR R4 Questionnaire of this version (a copy; ids are the FHIR view's job)."""
    resource: dict[str, Any] = copy.deepcopy(questionnaire.resource)
    resource["url"] = questionnaire.url
    resource["version"] = questionnaire.version
    resource["status"] = questionnaire.status
    return resource


def _next_version(url: str) -> str:
    versions = list(Questionnaire.objects.filter(url=url).values_list("version", flat=True))
    numbers = [int(v) for v in versions if v.isdigit()]
    if len(numbers) != len(versions):
        raise QuestionnaireImportError([qdef.Issue(
            "error", None, "the existing versions are not plain numbers; give the new version")])
    return str(max(numbers, default=0) + 1)


def questionnaire_revise(
    *, questionnaire: Questionnaire, resource: dict[str, Any], version: str | None = None
) -> Questionnaire:
    """Edit a published questionnaire: the edit becomes a new version under the same url, offered
    in the same programmes. Responses (and rules) keep pointing at the version they were made
    against. An edit that changes nothing returns the questionnaire unchanged."""
    edited = {**copy.deepcopy(resource), "url": questionnaire.url}
    if {**edited, "version": questionnaire.version} == questionnaire.resource:
        return questionnaire
    with transaction.atomic():
        edited["version"] = version or _next_version(questionnaire.url)
        revised = questionnaire_import(resource=edited)
        if revised.scoring is None and questionnaire.scoring is not None:
            # The old scoring must still fit: a renamed linkId would leave a scale forever missing.
            from questionnaires.scoring import parse_spec, spec_problems

            problems = spec_problems(parse_spec(questionnaire.scoring), revised.resource)
            if problems:
                raise QuestionnaireImportError([qdef.Issue("error", None, f"scoring: {p}") for p in problems])
            revised.scoring = questionnaire.scoring
            revised.save(update_fields=["scoring"])
        revised.programs.add(*questionnaire.programs.all())
    return revised


# --- responses -------------------------------------------------------------------------------

def responses_draft_of(*, patient: Patient, author: User | None) -> QuerySet[QuestionnaireResponse]:
    """The drafts ``author`` started for the patient, and only those: a relative does not see a
    draft the patient started, nor the patient a relative's (ADR 0006)."""
    return QuestionnaireResponse.objects.filter(patient=patient, author=author, status=ResponseStatus.IN_PROGRESS)


def response_draft_for(*, patient: Patient, questionnaire: Questionnaire, author: User) -> QuestionnaireResponse | None:
    return responses_draft_of(patient=patient, author=author).filter(questionnaire=questionnaire).first()


def response_draft_save(
    *, patient: Patient, questionnaire: Questionnaire, items: list[dict[str, Any]], current_page: int,
    author: User | None,
) -> QuestionnaireResponse:
    """Save the answers so far (status in-progress; one draft per patient, version and author).
    Types and options are checked, required answers are not; answers to disabled items are dropped."""
    checked = response_validate(questionnaire.definition, items, check_required=False)
    if checked.errors:
        raise ResponseInvalid(checked.errors)
    with transaction.atomic():
        mine = responses_draft_of(patient=patient, author=author).filter(questionnaire=questionnaire)
        draft = mine.select_for_update().first()
        if draft is None:
            try:
                # The partial unique constraint uniq_response_draft decides a race of two tabs.
                with transaction.atomic():
                    return QuestionnaireResponse.objects.create(
                        patient=patient, questionnaire=questionnaire, status=ResponseStatus.IN_PROGRESS,
                        items=checked.items, current_page=current_page, author=author,
                    )
            except IntegrityError:
                draft = mine.select_for_update().get()
        draft.items = checked.items
        draft.current_page = current_page
        draft.save(update_fields=["items", "current_page", "updated_at"])
    return draft


def patient_enrolled_at(patient: Patient) -> datetime:
    """The earliest moment the patient can have answered anything on the platform: when their
    record was created, or — if earlier — the start (00:00 Danish time) of the day their earliest
    treatment episode started. The second covers a patient registered in the middle of a course
    whose answers since its start are brought over from another system; baseline answers given
    before treatment starts come after registration, so the record's creation covers them."""
    starts = list(patient.episodes.order_by("treatment_start").values_list("treatment_start", flat=True)[:1])
    enrolled = patient.created_at
    if starts:
        enrolled = min(enrolled, datetime.combine(starts[0], time.min, tzinfo=_TZ))
    return enrolled


def response_authored_check(*, patient: Patient, authored_at: datetime, now: datetime) -> None:
    """Refuse an answer's own time that cannot be right (``AuthoredInvalid``): without a time zone,
    later than ``now`` plus the clock-skew allowance (RESPONSE_CLOCK_SKEW_SECONDS: a phone a few
    minutes fast is not a wrong answer), or before the patient was enrolled (less the same
    allowance). Rules and schedules use this time, so a wrong one would pair the answer with
    the wrong readings or complete the wrong occurrence."""
    if not isinstance(authored_at, datetime) or timezone.is_naive(authored_at):
        raise AuthoredInvalid(_("The time the answers were given must be a date and time with a time zone."))
    skew = timedelta(seconds=settings.RESPONSE_CLOCK_SKEW_SECONDS)

    def shown(moment: datetime) -> str:
        try:
            return date_format(moment.astimezone(_TZ), "DATETIME_FORMAT")
        except OverflowError:  # year 1 or 9999 in another zone: past the calendar's edge
            return moment.isoformat()

    if authored_at > now + skew:
        raise AuthoredInvalid(_("The time the answers were given (%(at)s) lies in the future; "
                                "check the clock of the device that sent them.") % {"at": shown(authored_at)})
    enrolled = patient_enrolled_at(patient)
    if authored_at < enrolled - skew:
        raise AuthoredInvalid(_("The time the answers were given (%(at)s) lies before the patient was enrolled "
                                "(%(enrolled)s); check the clock of the device that sent them.")
                              % {"at": shown(authored_at), "enrolled": shown(enrolled)})


def _scores(questionnaire: Questionnaire, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    try:
        from questionnaires.scoring import score_response
    except ImportError:
        return []
    try:
        return list(score_response(questionnaire=questionnaire, items=items))
    except Exception:
        # The answers matter more than the score: a scoring fault must not lose a patient's
        # submission. The missing score is visible, and the log names the questionnaire.
        logger.exception("scoring failed for questionnaire %s", questionnaire.pk)
        return []


def response_submit(
    *,
    patient: Patient,
    questionnaire: Questionnaire,
    items: list[dict[str, Any]],
    author: User | None,
    identifier: str | None = None,
    authored_at: datetime | None = None,
    draft: QuestionnaireResponse | None = None,
    refuse_disabled: bool = False,
) -> QuestionnaireResponse:
    """Validate fully and store a completed response — completing the author's own draft of
    this version if there is one. All or nothing: invalid input raises ``ResponseInvalid`` and stores
    nothing. A second submission with the same ``identifier`` returns the first response.
    Rule evaluation is enqueued after commit."""
    if identifier is not None and not (isinstance(identifier, str) and 0 < len(identifier) <= IDENTIFIER_MAX):
        raise ResponseInvalid([ResponseError(None, _("The identifier must be text of 1 to %(n)s characters.")
                                             % {"n": IDENTIFIER_MAX})])
    checked = response_validate(questionnaire.definition, items)
    if refuse_disabled and checked.dropped:
        # An API client is told which answers belong to disabled items instead of having them
        # dropped without a word (the web form never sends them).
        message = _("This item is not enabled by the other answers; leave out its answer.")
        checked.errors += [ResponseError(link_id, message) for link_id in checked.dropped]
    if checked.errors:
        raise ResponseInvalid(checked.errors)
    if identifier is not None:
        existing = QuestionnaireResponse.objects.filter(patient=patient, identifier=identifier).first()
        if existing is not None:
            return _same_or_conflict(existing, questionnaire, checked.items)
    received_at = timezone.now()
    # The answer's own time: the client's (FHIR authored), else the moment it is sent (the web form).
    authored_at = received_at if authored_at is None else authored_at
    response_authored_check(patient=patient, authored_at=authored_at, now=received_at)
    scores = _scores(questionnaire, checked.items)
    fields = {"status": ResponseStatus.COMPLETED, "items": checked.items, "scores": scores,
              "author": author, "identifier": identifier, "authored_at": authored_at, "received_at": received_at,
              # Every response, green ones too, goes on the review queue (questionnaires.review).
              **review_fields(patient_id=patient.pk, questionnaire=questionnaire, items=checked.items,
                              received_at=received_at)}
    try:
        with transaction.atomic():
            if draft is not None:
                # Sending a particular draft (the web form): whoever sends it second — another
                # tab, a relative at the same moment — gets the first sending, not a duplicate.
                draft = QuestionnaireResponse.objects.select_for_update().get(pk=draft.pk)
                if draft.status == ResponseStatus.COMPLETED:
                    return draft
            else:
                # the sender's own draft of this version, if any (never another person's)
                draft = None if author is None else (
                    responses_draft_of(patient=patient, author=author).filter(questionnaire=questionnaire)
                    .select_for_update().first())
            if draft is None:
                response = QuestionnaireResponse.objects.create(
                    patient=patient, questionnaire=questionnaire, **fields)
            else:
                for name, value in fields.items():
                    setattr(draft, name, value)
                draft.save()
                response = draft
            # What the apps above do with a completed answer, in this transaction: schedules
            # completes the occurrence it fulfils, or refuses the answer (ResponseConflict) and
            # nothing is stored.
            for hook in _submitted_hooks:
                hook(response=response, patient=patient, authored_at=authored_at, received_at=received_at)
            # In the evaluation inbox with the answer, or neither; the task is asked for after
            # commit, and a broker outage leaves the row for the sweep, not an error page.
            enqueue(source=EvaluationSource.RESPONSE, ids=[response.pk])
    except IntegrityError:
        # Two submissions with one identifier raced; the constraint let one through.
        if identifier is None:
            raise
        existing = QuestionnaireResponse.objects.get(patient=patient, identifier=identifier)
        return _same_or_conflict(existing, questionnaire, checked.items)
    return response


def _same_or_conflict(existing: QuestionnaireResponse, questionnaire: Questionnaire,
                      items: list[dict[str, Any]]) -> QuestionnaireResponse:
    """A resend of the same answers returns the stored response; other answers under the same
    identifier are refused — silently keeping the old ones could drop a "please call me"."""
    if existing.questionnaire_id == questionnaire.pk and existing.items == items:
        return existing
    raise ResponseConflict(_("This identifier was already used for other answers."))
