"""Reads of home readings for the trend pages (clinician and patient), their tables and CSV. What
alerts' rules say about readings (limits, watched measures) is alerts.selectors_readings."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import QuerySet
from django.utils import timezone

from monitoring.models import Reading
from patients.models import Patient

PERIODS = (7, 30, 90)  # days; the period selector's choices
DEFAULT_PERIOD = 30


def period_days(raw: str | None) -> int:
    """The period asked for in ``?days=``; anything else is the default (a hand-edited URL
    should show a chart, not an error page)."""
    try:
        days = int(raw or DEFAULT_PERIOD)
    except ValueError:
        return DEFAULT_PERIOD
    return days if days in PERIODS else DEFAULT_PERIOD


@dataclass(frozen=True)
class Threshold:
    """A limit line on a reading chart (monitoring.charts): crossing it raises an alert of
    ``severity`` (the limits are read from alerts' rules by alerts.selectors_readings)."""

    bound: str  # "low" or "high"
    value: Decimal
    rule_name: str
    severity: str
    # For a two-part measure (blood pressure), the name of the part the limit applies to
    # ("Systolic"); None for a one-value measure.
    component: str | None = None


def readings_in_period(*, patient: Patient, measure: str, days: int,
                       now: datetime | None = None) -> QuerySet[Reading]:
    """One patient's readings of one measure in the last ``days`` days, newest first
    (served by the ``reading_trend`` index). Erroneous readings are included: they are shown,
    marked, never hidden."""
    since = (now or timezone.now()) - timedelta(days=days)
    return (Reading.objects.filter(patient=patient, measure=measure, effective_at__gte=since)
            .select_related("erroneous_by").order_by("-effective_at", "-pk"))
