"""Writes of home readings. Every path that stores a reading (REST single and batch, web form,
later FHIR) goes through ``monitoring.ingest.readings_ingest``; ``reading_ingest`` is its
one-reading form for Python callers."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import User
from audit.models import Action
from audit.services import audit_record
from monitoring.ingest import _enqueue_evaluation, readings_ingest
from monitoring.models import Device, Reading, Source
from patients.models import Patient


class DuplicateConflict(Exception):
    """The client id was used before for a different reading."""


@dataclass(frozen=True)
class IngestResult:
    reading: Reading
    created: bool


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
    value2: Decimal | None = None,
) -> IngestResult:
    """Validate and store one reading, then have the rules evaluate it after commit.

    For blood pressure ``value`` is the systolic and ``value2`` the diastolic pressure.
    Idempotent on ``client_id``: the same reading sent again returns the stored one
    (``created=False``); the same id with different content raises DuplicateConflict.
    Raises ValidationError (field -> messages) for impossible values; nothing is stored then."""
    item: dict[str, object] = {"measure": measure, "unit": unit, "effective_at": effective_at}
    if value2 is None:
        item["value"] = value
    else:
        item["systolic"], item["diastolic"] = value, value2
    if client_id:
        item["client_id"] = client_id
    if device is not None:
        item["device"] = device.pk
    (result,) = readings_ingest(patient=patient, items=[item], source=source, device=device,
                                entered_by=entered_by)
    if result.status == 409:
        raise DuplicateConflict(client_id)
    if result.reading is None:
        raise ValidationError(result.errors)
    return IngestResult(result.reading, result.status == 201)


def readings_sweep_unevaluated(*, older_than_seconds: int = 30, limit: int = 5000) -> int:
    """Re-enqueue evaluation of readings whose message the broker lost. Returns how many.

    Readings younger than ``older_than_seconds`` are left alone: their task is most likely
    still queued. Evaluation claims each reading, so a reading evaluated twice alerts once."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    ids = list(
        # A reading marked erroneous before it was evaluated stays unevaluated: rules skip it.
        Reading.objects.filter(evaluated_at=None, erroneous_at=None, received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("id", flat=True)[:limit]
    )
    for start in range(0, len(ids), 500):
        _enqueue_evaluation(ids[start : start + 500])
    return len(ids)


# --- marking a reading as erroneous -----------------------------------------------------------

class AlreadyErroneous(Exception):
    def __init__(self, reading: Reading) -> None:
        super().__init__(f"Reading {reading.pk} was already marked as erroneous.")
        self.reading = reading


def reading_mark_erroneous(*, reading: Reading, by: User, reason: str,
                           request: HttpRequest | None = None) -> Reading:
    """Mark ``reading`` erroneous with ``reason``, once, and write the audit row (update).

    The mark is claimed with a guarded update (``erroneous_at IS NULL``): of two clinicians
    marking at once, one wins and the other gets AlreadyErroneous — the first reason is not
    overwritten. Raises ValueError for an empty reason."""
    reason = reason.strip()
    if not reason:
        raise ValueError("A reason is required.")
    with transaction.atomic():
        now = timezone.now()
        claimed = Reading.objects.filter(pk=reading.pk, erroneous_at=None).update(
            erroneous_at=now, erroneous_reason=reason, erroneous_by=by)
        if not claimed:
            reading.refresh_from_db()
            raise AlreadyErroneous(reading)
        audit_record(user=by, action=Action.UPDATE, resource=f"Reading/{reading.pk} (marked erroneous)",
                     patient_id=reading.patient_id, request=request)
    reading.refresh_from_db()
    return reading
