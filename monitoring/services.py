"""Writes of home readings. Every path that stores a reading (REST, web form, later FHIR)
goes through ``reading_ingest``."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from monitoring.measures import measure_lookup
from monitoring.models import Device, Reading, Source
from patients.models import Patient


class DuplicateConflict(Exception):
    """The client id was used before for a different reading."""


@dataclass(frozen=True)
class IngestResult:
    reading: Reading
    created: bool


def _validated(
    *, measure: str, value: Decimal, unit: str, effective_at: datetime
) -> tuple[str, Decimal, str]:
    errors: dict[str, str] = {}
    m = measure_lookup(measure)
    if m is None:
        raise ValidationError({"measure": _("Unknown measure %(m)s.") % {"m": measure}})
    if unit != m.unit:
        errors["unit"] = _("The unit of %(measure)s must be %(unit)s.") % {
            "measure": m.code,
            "unit": m.unit,
        }
    elif not (m.minimum <= value <= m.maximum):
        errors["value"] = _(
            "%(value)s %(unit)s is not a possible value; expected %(lo)s to %(hi)s."
        ) % {"value": value, "unit": m.unit_label, "lo": m.minimum, "hi": m.maximum}
    if timezone.is_naive(effective_at):
        errors["effective_at"] = _("The time must include a time zone.")
    elif effective_at > timezone.now() + timedelta(seconds=settings.READING_CLOCK_SKEW_SECONDS):
        errors["effective_at"] = _("The time lies in the future; check the device clock.")
    if errors:
        raise ValidationError(errors)
    return m.code, value, m.unit


def _enqueue_evaluation(reading_ids: list[int]) -> None:
    from monitoring.tasks import evaluate_readings

    evaluate_readings.delay(reading_ids)


def reading_ingest(
    *,
    patient: Patient,
    measure: str,
    value: Decimal,
    unit: str,
    effective_at: datetime,
    source: Source,
    device: Device | None = None,
    client_id: str | None = None,
    entered_by: User | None = None,
) -> IngestResult:
    """Validate and store one reading, then have the rules evaluate it after commit.

    Idempotent on ``client_id``: the same reading sent again returns the stored one
    (``created=False``); the same id with different content raises DuplicateConflict.
    Raises ValidationError (field -> message) for impossible values; nothing is stored then."""
    code, value, unit = _validated(measure=measure, value=value, unit=unit, effective_at=effective_at)
    if client_id:
        existing = Reading.objects.filter(patient=patient, client_id=client_id).first()
        if existing is not None:
            return _same_or_conflict(existing, code, value, effective_at)
    try:
        with transaction.atomic():
            reading = Reading.objects.create(
                patient=patient,
                device=device,
                measure=code,
                value=value,
                unit=unit,
                effective_at=effective_at,
                source=source,
                client_id=client_id or None,
                entered_by=entered_by,
            )
            transaction.on_commit(lambda: _enqueue_evaluation([reading.id]))
    except IntegrityError:
        # A concurrent retry with the same client id won the race.
        existing = Reading.objects.get(patient=patient, client_id=client_id)
        return _same_or_conflict(existing, code, value, effective_at)
    return IngestResult(reading, True)


def _same_or_conflict(
    existing: Reading, code: str, value: Decimal, effective_at: datetime
) -> IngestResult:
    if (existing.measure, existing.value, existing.effective_at) == (code, value, effective_at):
        return IngestResult(existing, False)
    raise DuplicateConflict(existing.client_id)


def readings_sweep_unevaluated(*, older_than_seconds: int = 30, limit: int = 5000) -> int:
    """Re-enqueue evaluation of readings whose message the broker lost. Returns how many.

    Readings younger than ``older_than_seconds`` are left alone: their task is most likely
    still queued. Evaluation claims each reading, so a reading evaluated twice alerts once."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    ids = list(
        Reading.objects.filter(evaluated_at=None, received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("id", flat=True)[:limit]
    )
    for start in range(0, len(ids), 500):
        _enqueue_evaluation(ids[start : start + 500])
    return len(ids)
