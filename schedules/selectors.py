"""Reads of occurrences for the patient's pages and the clinician's views."""

from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from patients.models import Patient
from schedules.models import Occurrence, OccurrenceStatus


def open_occurrences_for(patient: Patient, *, now: datetime | None = None) -> QuerySet[Occurrence]:
    """What the patient can answer now, nearest deadline first. Includes "scheduled" ones whose
    window is already running, so the page does not wait for the advance sweep."""
    now = now or timezone.now()
    return (
        Occurrence.objects.filter(
            patient=patient,
            status__in=[OccurrenceStatus.SCHEDULED, OccurrenceStatus.OPEN],
            opens_at__lte=now,
            closes_at__gt=now,
        )
        .select_related("schedule", "questionnaire")
        .order_by("closes_at", "id")
    )


def next_occurrences_for(patient: Patient, *, now: datetime | None = None) -> dict[str, Occurrence]:
    """Per questionnaire url, the patient's next occurrence that has not opened yet: what the
    home page tells as "next time" (a paused one is not asked for, so it is not next)."""
    now = now or timezone.now()
    upcoming = (Occurrence.objects.filter(patient=patient, status=OccurrenceStatus.SCHEDULED, opens_at__gt=now)
                .order_by("due_at", "id"))
    found: dict[str, Occurrence] = {}
    for occurrence in upcoming[:200]:  # a year of weekly schedules; the first per url is wanted
        found.setdefault(occurrence.questionnaire_url, occurrence)
    return found


def occurrences_for(patient: Patient) -> QuerySet[Occurrence]:
    """The patient's whole history and plan, newest due time first."""
    return (
        Occurrence.objects.filter(patient=patient)
        .select_related("schedule", "questionnaire", "response")
        .order_by("-due_at", "-id")
    )
