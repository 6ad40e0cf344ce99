"""Reading ingest, one or a thousand at a time: the one path every reading takes.

Modules by concern: ``parsing`` (one item: values, units, plausibility), ``lending`` (whom and
which device an item names, ADR 0015), ``storage`` (dedupe, COPY, the one-statement insert, the
evaluation inbox row). Asking for evaluation belongs to alerts.evaluation (ADR 0020).

The hot loop works on plain values: each item is parsed by plain functions (no serializer per
item), normalised to the measure's canonical unit, checked for plausibility, de-duplicated
within the batch and against the database with one query, and inserted with one COPY
(PostgreSQL; ``bulk_create`` elsewhere) in one transaction — or, for one reading with a
client_id (a device's single upload), with one statement that also stores its pending batch
(``_insert_one``, PostgreSQL). Each batch puts one row in the evaluation inbox in the same
transaction (alerts.evaluation, ADR 0020) and asks for its evaluation after commit
(``alerts.evaluation.request_soon``). Stored
items are plain values until a caller asks for a ``Reading`` model instance
(``ItemResult.reading``): the batch endpoint answers with id and flag only, and at 1,000 items
a batch the model instances cost more than parsing the items did.

Per item the outcome is an ``ItemResult``: 201 stored, 200 already stored (a retry), 400 field
errors, 404 a patient or device that is not the caller's, 409 a client_id reused for another
reading. Nothing of a refused item is stored; the good items of a batch are.
"""

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from monitoring.ingest import storage
from monitoring.ingest.lending import _checked
from monitoring.ingest.parsing import Errors, range_error, reading_parse
from monitoring.ingest.storage import ItemResult, reading_writer_tables
from monitoring.models import Device, Source
from monitoring.rows import ReadingRow
from patients.models import Patient

__all__ = ["MAX_BATCH", "BatchTooLarge", "Errors", "ItemResult", "ReadingRow", "range_error",
           "reading_device_store_one", "reading_parse", "reading_writer_tables", "readings_ingest"]

MAX_BATCH = 1000


class BatchTooLarge(ValueError):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


def readings_ingest(
    *,
    patient: Patient,
    items: list[Any],
    source: Source,
    device: Device | None = None,
    entered_by: User | None = None,
    provenance: list[dict[str, Any] | None] | None = None,
) -> list[ItemResult]:
    """Validate and store a batch of readings for ``patient``; one result per item, in order.

    ``provenance`` (FHIR ingest only, one entry per item): what the sender said about the
    reading beyond its value — its code as sent, ``issued`` — kept in ``Reading.original["fhir"]``
    and given back (interop.mapping). A keyword, not an item field, so the REST API's JSON cannot
    put anything there.

    ``device`` is the sending device (device token): items may name only it and only its
    patient. Without it (a patient sending), items may name any device lent to the patient.
    Raises BatchTooLarge (nothing stored) for more than MAX_BATCH items."""
    if len(items) > MAX_BATCH:
        raise BatchTooLarge(len(items))
    now = timezone.now()
    results, candidates = _checked(patient=patient, items=items, device=device, now=now)
    if provenance:
        for p in candidates:
            if provenance[p.index]:
                p.original = {**(p.original or {}), "fhir": provenance[p.index]}
    readings = storage._Readings(patient_id=patient.pk, source=source, now=now, entered_by=entered_by)
    if storage._stored_in_one_statement(candidates, results=results, readings=readings):
        return results  # type: ignore[return-value]  # the one candidate's slot is filled
    for attempt in range(3):
        try:
            with transaction.atomic():
                storage._store(patient=patient, candidates=candidates, results=results, readings=readings)
            break
        except IntegrityError:
            # A concurrent request stored one of these client_ids first (_lock_patient): look again.
            for p in candidates:
                p.id = None
            if attempt == 2:
                raise
            readings = storage._Readings(patient_id=patient.pk, source=source, now=now, entered_by=entered_by)
    return results  # type: ignore[return-value]  # every slot is filled by now


def reading_device_store_one(*, item: Any, device: Device, token_id: int) -> ItemResult | None:
    """Store one reading with a client_id from a device by one statement that also checks that
    the device's token ``token_id`` is still unrevoked and the device still lent to the same
    patient for the same period as ``device`` says (PostgreSQL). For the device fast path
    (monitoring.device_fast_path, ADR 0016), which looks tokens up once a minute, not per request.

    The 201 result, or None when the request deserves any other answer: a field error, no
    client_id, a repeat or a reused client_id, a token or device that changed, another database.
    Nothing is stored then, and the caller leaves the request to the API view, which answers it."""
    now = timezone.now()
    results, candidates = _checked(patient=device.patient, items=[item], device=device, now=now)
    readings = storage._Readings(patient_id=device.patient_id, source=Source.DEVICE, now=now, entered_by=None)
    if storage._stored_in_one_statement(candidates, results=results, readings=readings, still_lent=(token_id, device)):
        return results[0]
    return None
