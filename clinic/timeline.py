"""The clinician's patient page: one timeline of what happened, newest first.

Readings, completed questionnaire answers (with the colours their answers carry), alerts, pauses
and treatment starts, merged so that a nurse reads the last weeks in one list instead of five
tables. Like clinic/views.py this composes several apps for one page; the domain modules never
import it.

The timeline is bounded: ``days`` back from now (30 unless the page asks for more, see
``TIMELINE_DAYS``), and at most ``READING_LIMIT`` readings, since a device sending every few
minutes would otherwise bury the answers and alerts. The trend pages show every reading."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from alerts.models import Alert
from alerts.rules.severity import RANK, answer_colours
from monitoring.measures import MEASURES, Measure
from monitoring.models import Reading
from patients.models import Patient, TreatmentEpisode
from questionnaires.models import QuestionnaireResponse
from schedules.models import Pause

# The periods the page offers; anything else asked for is the first (bad input never fails the page).
TIMELINE_DAYS = (30, 90, 365)
READING_LIMIT = 200


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # "reading" | "response" | "alert" | "pause" | "start"
    obj: Reading | QuestionnaireResponse | Alert | Pause | TreatmentEpisode  # as kind says
    measure: Measure | None = None  # a reading's
    colours: list[dict[str, str]] = field(default_factory=list)  # a response's coloured answers
    colour: str = ""  # the entry's worst colour ("red", "yellow" or "")


@dataclass(frozen=True)
class Timeline:
    entries: list[TimelineEntry]
    days: int
    since: datetime
    earlier_days: int | None  # the next longer period, None when the longest is shown
    readings_cut: bool  # more readings in the period than READING_LIMIT

    @property
    def response_ids(self) -> list[int]:
        return [e.obj.pk for e in self.entries if e.kind == "response"]


def timeline_days(value: str | None) -> int:
    """The period asked for in the query string, or the default."""
    try:
        days = int(value or "")
    except ValueError:
        return TIMELINE_DAYS[0]
    return days if days in TIMELINE_DAYS else TIMELINE_DAYS[0]


def _local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _worst(colours: Iterable[str]) -> str:
    return max(colours, key=lambda c: RANK.get(c, 0), default="")


def patient_timeline(patient: Patient, *, days: int, now: datetime) -> Timeline:
    patient_id = patient.pk
    since = now - timedelta(days=days)
    entries: list[TimelineEntry] = []

    readings = list(patient.readings.filter(effective_at__gte=since)
                    .order_by("-effective_at", "-pk")[:READING_LIMIT + 1])
    readings_cut = len(readings) > READING_LIMIT
    for r in readings[:READING_LIMIT]:
        measure = MEASURES.get(r.measure)
        entries.append(TimelineEntry(at=r.effective_at, kind="reading", obj=r, measure=measure,
                                     colour="yellow" if r.unusual and not r.erroneous_at else ""))

    responses = (QuestionnaireResponse.objects.filter(patient_id=patient_id, status="completed",
                                                      authored_at__gte=since)
                 .select_related("questionnaire", "author").order_by("-authored_at"))
    definitions: dict[int, Any] = {}  # parsed once per version, not once per daily response
    for resp in responses:
        if resp.questionnaire_id not in definitions:
            definitions[resp.questionnaire_id] = resp.questionnaire.definition
        colours = answer_colours(resp, definition=definitions[resp.questionnaire_id])
        entries.append(TimelineEntry(at=resp.authored_at, kind="response", obj=resp, colours=colours,
                                     colour=_worst(c["severity"] for c in colours)))

    alerts = (Alert.objects.filter(patient_id=patient_id, raised_at__gte=since)
              .select_related("rule", "resolved_by").order_by("-raised_at"))
    for a in alerts:
        entries.append(TimelineEntry(at=a.raised_at, kind="alert", obj=a, colour=a.severity))

    since_day = timezone.localdate(since)
    pauses = Pause.objects.filter(patient_id=patient_id, withdrawn=False).filter(
        Q(ends_on=None) | Q(ends_on__gte=since_day))
    for p in pauses:
        entries.append(TimelineEntry(at=_local_midnight(p.starts_on), kind="pause", obj=p))

    for episode in (patient.episodes.filter(treatment_start__gte=since_day)
                    .select_related("program")):
        entries.append(TimelineEntry(at=_local_midnight(episode.treatment_start), kind="start", obj=episode))

    entries.sort(key=lambda e: e.at, reverse=True)
    longer = [d for d in TIMELINE_DAYS if d > days]
    return Timeline(entries=entries, days=days, since=since, earlier_days=longer[0] if longer else None,
                    readings_cut=readings_cut)
