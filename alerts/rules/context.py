"""What a rule may know beyond the event in front of it: the patient's history, read from the
database as of a moment. Live evaluation uses now; back-testing (alerts.backtest) replays past
events with ``as_of`` set to each event's own time, so that a rule never sees the future.

Erroneous readings are never part of the history (they are excluded from rules and outcomes).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.db.models import Q, QuerySet
from django.utils import timezone

from monitoring.models import Reading

if TYPE_CHECKING:
    from monitoring.rows import ReadingRow
    from questionnaires.models import QuestionnaireResponse
    from questionnaires.scoring import ItemValues


@dataclass(frozen=True, slots=True)
class PastReading:
    id: int
    measure: str
    value: Decimal
    value2: Decimal | None
    effective_at: datetime


@dataclass(frozen=True, slots=True)
class PastResponse:
    """An earlier completed response with the questionnaire version it answered (item grades
    are read from *that* version's options, since ordinal values may change between versions)."""

    id: int
    questionnaire_id: int
    version: str
    authored_at: datetime
    items: list[dict[str, Any]]
    scores: list[dict[str, Any]]
    resource: dict[str, Any]


def patient_of(reading: "Reading | ReadingRow") -> UUID:
    """The patient whose history a rule looks back over. Rules see stored readings only (a
    model instance, or a row claimed for evaluation); a row not stored yet has no patient id."""
    if reading.patient_id is None:
        raise ValueError("This reading is not stored yet.")
    return reading.patient_id


class Context:
    def __init__(self, *, now: datetime, as_of: datetime | None = None) -> None:
        self.now = now
        # Readings and responses received after this moment are not visible (back-testing);
        # None = all. Both are still judged at their own time (measured, authored).
        self.as_of = as_of

    def readings(self, patient_id: UUID, measure: str, *, since: datetime, until: datetime) -> list[PastReading]:
        """The patient's non-erroneous readings of ``measure`` measured in [since, until],
        oldest first. A late upload counts at the time it was measured."""
        rows = Reading.objects.filter(
            patient_id=patient_id, measure=measure, effective_at__gte=since, effective_at__lte=until,
            erroneous_at=None,
        )
        if self.as_of is not None:
            rows = rows.filter(received_at__lte=self.as_of)
        return [
            PastReading(*row)
            for row in rows.order_by("effective_at", "id").values_list(
                "id", "measure", "value", "value2", "effective_at"
            )
        ]

    def previous_response(
        self, patient_id: UUID, url: str, *, authored_at: datetime, response_id: int
    ) -> PastResponse | None:
        """The patient's latest completed response to questionnaire ``url`` (any version) authored
        before ``authored_at`` (the response being judged), or None."""
        rows = _responses_of(self, patient_id, url).filter(_before(authored_at, response_id))
        return _past(rows.order_by("-authored_at", "-id"))

    def baseline_response(
        self, patient_id: UUID, url: str, *, authored_at: datetime, response_id: int
    ) -> PastResponse | None:
        """The patient's baseline answer to questionnaire ``url`` (any version), earlier than the
        response being judged:

        - the last response authored on or before the day treatment started, in the patient's
          latest treatment episode covering ``authored_at`` (the pre-treatment questionnaire);
        - if none was answered by then, the first response after treatment start;
        - without an episode, the patient's first response.
        The baseline is never the response being judged (then there is nothing to compare with)."""
        rows = _responses_of(self, patient_id, url).filter(_before(authored_at, response_id))
        start = self.treatment_start(patient_id, on=authored_at)
        if start is not None:
            end_of_start_day = timezone.make_aware(datetime.combine(start + timedelta(days=1), time.min))
            before_treatment = _past(rows.filter(authored_at__lt=end_of_start_day).order_by("-authored_at", "-id"))
            if before_treatment is not None:
                return before_treatment
            rows = rows.filter(authored_at__gte=end_of_start_day)
        return _past(rows.order_by("authored_at", "id"))

    def treatment_start(self, patient_id: UUID, *, on: datetime) -> date | None:
        """Treatment start of the patient's latest-started episode that covers ``on`` (local date)."""
        from patients.models import TreatmentEpisode

        day = timezone.localdate(on)
        return (
            TreatmentEpisode.objects.filter(patient_id=patient_id, treatment_start__lte=day)
            .filter(Q(end=None) | Q(end__gte=day))
            .order_by("-treatment_start")
            .values_list("treatment_start", flat=True)
            .first()
        )

    # --- composite scores, combinations and missed answers (NEWS2, combination, missed kinds) ----

    def latest_readings(
        self, patient_id: UUID, measures: list[str], *, since: datetime, until: datetime
    ) -> dict[str, PastReading]:
        """For each of ``measures``, the patient's latest non-erroneous reading measured in
        [since, until] (one query for all of them); measures without one are left out."""
        rows = Reading.objects.filter(
            patient_id=patient_id, measure__in=measures, effective_at__gte=since, effective_at__lte=until,
            erroneous_at=None,
        )
        if self.as_of is not None:
            rows = rows.filter(received_at__lte=self.as_of)
        latest: dict[str, PastReading] = {}
        for row in rows.order_by("effective_at", "id").values_list("id", "measure", "value", "value2", "effective_at"):
            latest[row[1]] = PastReading(*row)  # oldest first: the last one written wins
        return latest

    def answers(self, response: "QuestionnaireResponse", link_id: str) -> list["PastAnswer"]:
        """The answers ``response`` gives to item ``link_id``, each with its grade (the option's
        ordinalValue in the questionnaire version answered, or the number itself for integer and
        decimal items; None when the option carries no grade)."""
        values = self._item_values(response.questionnaire_id, lambda: response.questionnaire.resource)
        return [
            PastAnswer(response.pk, response.authored_at, a.question, a.code, a.display,
                       _grade(values.get(link_id), a.code))
            for a in response.answers_for(link_id)
        ]

    def latest_answers(
        self, patient_id: UUID, url: str, link_id: str, *, since: datetime, until: datetime
    ) -> list["PastAnswer"]:
        """The patient's latest answers to item ``link_id`` of questionnaire ``url`` (any
        version): those of the latest completed response authored in [since, until] that
        answered the item at all ([] if none did)."""
        from questionnaires.models import QuestionnaireResponse

        rows = _responses_of(self, patient_id, url).filter(authored_at__gte=since, authored_at__lte=until)
        for row in rows.order_by("-authored_at", "-id").values_list(
            "id", "authored_at", "items", "questionnaire_id"
        ).iterator(chunk_size=20):
            response = QuestionnaireResponse(id=row[0], authored_at=row[1], items=row[2], questionnaire_id=row[3])
            values = self._item_values(row[3], partial(_resource, row[3]))
            found = [
                PastAnswer(row[0], row[1], a.question, a.code, a.display, _grade(values.get(link_id), a.code))
                for a in response.answers_for(link_id)
            ]
            if found:
                return found
        return []

    def answered(self, patient_id: UUID, url: str, *, since: datetime, until: datetime) -> bool:
        """Whether the patient completed questionnaire ``url`` (any version) in [since, until] —
        inside or outside a schedule (a late answer after the deadline counts)."""
        found: bool = _responses_of(self, patient_id, url).filter(authored_at__gte=since,
                                                                   authored_at__lte=until).exists()
        return found

    def paused(self, patient_id: UUID, day: date) -> bool:
        """Whether a pause (holiday, admission) covers local date ``day``. Pauses recorded after
        the moment being judged are not visible when back-testing."""
        from schedules.models import Pause

        rows = Pause.objects.filter(patient_id=patient_id, withdrawn=False, starts_on__lte=day).filter(
            Q(ends_on=None) | Q(ends_on__gte=day)
        )
        if self.as_of is not None:
            rows = rows.filter(created_at__lte=self.as_of)
        return rows.exists()

    def occurrences_before(
        self, patient_id: UUID, url: str | None, *, before: datetime, limit: int
    ) -> list["PastOccurrence"]:
        """The patient's last ``limit`` scheduled occurrences (of questionnaire ``url``, or of
        any with None) due before ``before``, newest first, with their status as it was at the
        moment being judged: "completed", "missed", "paused" or "pending" (not decided yet)."""
        from schedules.models import Occurrence

        rows = Occurrence.objects.filter(patient_id=patient_id, due_at__lt=before)
        if url is not None:
            rows = rows.filter(questionnaire_url=url)
        moment = self.as_of or self.now
        found = []
        for row in rows.order_by("-due_at", "-id").values_list(
            "id", "questionnaire_url", "opens_at", "due_at", "closes_at", "status", "completed_at",
            "response__received_at",
        )[:limit]:
            status, completed_at, received_at = row[5], row[6], row[7]
            # completed_at is the answer's own time; a late upload completed it only once received,
            # and until then its closed occurrence was missed as far as anyone could know.
            if completed_at is not None and completed_at <= moment and (received_at is None or received_at <= moment):
                status = "completed"
            elif status in ("missed", "completed") and row[4] <= moment:
                status = "missed"
            elif status != "paused":
                status = "pending"
            found.append(PastOccurrence(row[0], row[1], row[2], row[3], row[4], status))
        return found

    def _item_values(self, questionnaire_id: int,
                     resource: Callable[[], dict[str, Any]]) -> dict[str, "ItemValues"]:
        # One parse of a questionnaire version per context (a batch, or a back-test run).
        cache: dict[int, dict[str, ItemValues]] = self.__dict__.setdefault("_item_values_cache", {})
        if questionnaire_id not in cache:
            from questionnaires.scoring import item_values

            cache[questionnaire_id] = item_values(resource())
        return cache[questionnaire_id]


def _responses_of(ctx: "Context", patient_id: UUID, url: str) -> "QuerySet[QuestionnaireResponse]":
    from questionnaires.models import QuestionnaireResponse, ResponseStatus

    rows = QuestionnaireResponse.objects.filter(
        patient_id=patient_id, questionnaire__url=url, status=ResponseStatus.COMPLETED,
    )
    if ctx.as_of is not None:
        # What had arrived by then: an answer authored earlier but uploaded later was not known.
        rows = rows.filter(received_at__lte=ctx.as_of)
    return rows


def _past(rows: "QuerySet[QuestionnaireResponse]") -> PastResponse | None:
    row = rows.values_list(
        "id", "questionnaire_id", "questionnaire__version", "authored_at", "items", "scores",
        "questionnaire__resource",
    ).first()
    return PastResponse(*row) if row is not None else None


def _before(authored_at: datetime, response_id: int) -> Q:
    # Strictly earlier: by authored time, ties broken by id, so two responses stamped the same
    # second still have a clear order and a response never compares with itself.
    return Q(authored_at__lt=authored_at) | Q(authored_at=authored_at, id__lt=response_id)


@dataclass(frozen=True, slots=True)
class PastAnswer:
    """One answer to one item, with its grade (ordinalValue of the option, or the number)."""

    response_id: int
    authored_at: datetime
    question: str
    code: str
    display: str
    grade: Decimal | None


@dataclass(frozen=True, slots=True)
class PastOccurrence:
    id: int
    questionnaire_url: str
    opens_at: datetime
    due_at: datetime
    closes_at: datetime
    status: str  # "completed", "missed", "paused" or "pending", as of the moment judged


def _resource(questionnaire_id: int) -> dict[str, Any]:
    from questionnaires.models import Questionnaire

    resource: dict[str, Any] = Questionnaire.objects.values_list("resource", flat=True).get(pk=questionnaire_id)
    return resource


def _grade(values: "ItemValues | None", code: str) -> Decimal | None:
    """The grade of answer ``code`` given the item's values (questionnaires.scoring.item_values)."""
    if values is None:
        return None
    if values.type in ("integer", "decimal"):
        try:
            return Decimal(code)
        except ArithmeticError:
            return None
    # Matched on the code alone: a response's coding may omit the system the definition gives.
    return next((value for (_system, option), value in values.options.items() if option == code), None)
