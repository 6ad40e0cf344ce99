"""Reads behind the clinician's patient list (/patients/).

The list composes several apps (alerts, readings, answers, schedules), so it sits beside the
patient page (clinic/views.py) above them in the layers, not in patients/selectors.py, which
the lower apps import (the header of every patient page, which reads only patients, is there:
patients.selectors.patient_header). Access is never decided here: every query starts from
``patients.access.patients_for``.

A team may follow thousands of patients: the list counts and pages on the bare patient rows
(the filters are EXISTS clauses), and only the page's 50 rows get the per-patient columns
(latest answer, latest reading, open alerts — correlated subqueries on the indexes those tables
already have) and their episodes (one query). Four queries per page, however many patients.
"""

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.utils import timezone

from accounts.models import Role, User
from alerts.models import Alert, Status
from monitoring.models import Reading
from patients.access import patients_for, teams_for
from patients.models import Patient, Program, TreatmentEpisode, age_on
from patients.selectors import patient_search_q
from questionnaires.models import QuestionnaireResponse, ResponseStatus
from schedules.models import Occurrence, OccurrenceStatus, Pause

PAGE_SIZE = 50
# "Missed questionnaires": a deadline passed unanswered within this many days. Older misses are
# history the patient page shows; the list is for who needs a call now.
MISSED_WINDOW = timedelta(days=30)

@dataclass(frozen=True)
class ListFilter:
    """The list's filters (GET parameters: none of them can hold a CPR number). ``None``/False
    means "any"."""

    program_id: int | None = None
    open_alerts: bool = False
    missed: bool = False
    paused: bool = False
    overdue_reviews: bool = False

    @property
    def active(self) -> bool:
        return (self.program_id is not None or self.open_alerts or self.missed or self.paused
                or self.overdue_reviews)


def programs_for(user: User) -> QuerySet[Program]:
    """Programmes with patients in the user's scope: the choices of the programme filter."""
    return (Program.objects.filter(episodes__patient__in=patients_for(user).values("pk"))
            .distinct().order_by("name"))


def patient_list(user: User, f: ListFilter, *, search: str | None = None, today: date | None = None
                 ) -> QuerySet[Patient]:
    """The user's patients, filtered and searched, ordered by name: bare rows to count and page."""
    today = today or timezone.localdate()
    qs = Patient.objects.filter(pk__in=patients_for(user).values("pk"))
    if search:
        qs = qs.filter(patient_search_q(search))
    if f.program_id is not None:
        qs = qs.filter(Exists(TreatmentEpisode.objects.filter(patient=OuterRef("pk"), program_id=f.program_id)))
    if f.open_alerts:
        qs = qs.filter(Exists(Alert.objects.filter(patient=OuterRef("pk"), status__in=_UNRESOLVED)))
    if f.missed:
        since = timezone.now() - MISSED_WINDOW
        # occurrence_patient_due serves this: the patient's occurrences by due time.
        qs = qs.filter(Exists(Occurrence.objects.filter(patient=OuterRef("pk"), due_at__gte=since,
                                                        status=OccurrenceStatus.MISSED)))
    if f.paused:
        qs = qs.filter(Exists(_pauses_on(today).filter(patient=OuterRef("pk"))))
    if f.overdue_reviews:
        # Answers whose review promise has passed without a "Markér som gennemset" (questionnaires.review).
        qs = qs.filter(Exists(QuestionnaireResponse.objects.filter(
            patient=OuterRef("pk"), status=ResponseStatus.COMPLETED, review_due_at__lt=timezone.now(),
            review__isnull=True)))
    return qs.order_by("family_name", "given_name", "pk")


_UNRESOLVED = (Status.OPEN, Status.ACKNOWLEDGED)


def _pauses_on(day: date) -> QuerySet[Pause]:
    return Pause.objects.filter(Q(ends_on=None) | Q(ends_on__gte=day), withdrawn=False, starts_on__lte=day)


@dataclass
class PatientRow:
    patient: Patient
    age: int
    episodes: list[TreatmentEpisode]
    last_answer: datetime | None
    last_reading: datetime | None
    open_alerts: int
    missed: int
    paused: bool
    programs: list[str] = field(default_factory=list)


def patient_rows(user: User, ids: list[uuid.UUID], *, today: date | None = None) -> list[PatientRow]:
    """The columns of the list for the patients ``ids`` (one page), in that order. Only the
    episodes of the user's own teams are shown: another team's programme is not theirs to see."""
    today = today or timezone.localdate()
    since = timezone.now() - MISSED_WINDOW
    # Each subquery finds one row through an index: reading_trend (patient, measure,
    # effective_at) for the latest reading, the responses' patient foreign key index, and the
    # partial unique index of unresolved alerts (patient, rule) for the count. Computed for the
    # page's rows only.
    last_reading = (Reading.objects.filter(patient=OuterRef("pk"), erroneous_at=None)
                    .order_by("-effective_at").values("effective_at")[:1])
    last_answer = (QuestionnaireResponse.objects.filter(patient=OuterRef("pk"), status="completed")
                   .order_by("-authored_at").values("authored_at")[:1])
    open_alerts = (Alert.objects.filter(patient=OuterRef("pk"), status__in=_UNRESOLVED).order_by()
                   .values("patient").annotate(n=Count("pk")).values("n"))
    missed = (Occurrence.objects.filter(patient=OuterRef("pk"), due_at__gte=since, status=OccurrenceStatus.MISSED)
              .order_by().values("patient").annotate(n=Count("pk")).values("n"))
    team_ids = list(teams_for(user).values_list("pk", flat=True))
    episodes = TreatmentEpisode.objects.select_related("program", "care_team").order_by("-treatment_start")
    if user.role != Role.ADMIN:
        episodes = episodes.filter(care_team_id__in=team_ids)
    found = {p.pk: p for p in Patient.objects.filter(pk__in=ids).annotate(
        last_reading_at=Subquery(last_reading), last_answer_at=Subquery(last_answer),
        open_alert_count=Subquery(open_alerts), missed_count=Subquery(missed),
        paused_now=Exists(_pauses_on(today).filter(patient=OuterRef("pk"))),
    ).prefetch_related(Prefetch("episodes", queryset=episodes, to_attr="visible_episodes"))}
    rows = []
    for pk in ids:
        p = found.get(pk)
        if p is None:
            continue
        eps = list(p.visible_episodes)
        rows.append(PatientRow(
            patient=p, age=age_on(p.birth_date, today), episodes=eps,
            last_answer=p.last_answer_at, last_reading=p.last_reading_at,
            open_alerts=p.open_alert_count or 0, missed=p.missed_count or 0,
            paused=p.paused_now,
            programs=sorted({e.program.name for e in eps}),
        ))
    return rows


def patient_list_page(user: User, f: ListFilter, *, search: str | None,
                      number: str | int | None) -> tuple[Page[Any], list[PatientRow]]:
    """One page of the list: the page (for its links and count) and its rows with columns."""
    paginator = Paginator(patient_list(user, f, search=search).values_list("pk", flat=True), PAGE_SIZE)
    page = paginator.get_page(number)
    return page, patient_rows(user, list(page.object_list))
