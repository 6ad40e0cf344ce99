"""Storing a FHIR transaction Bundle of Observations: all or nothing (FHIR R4 §3.1.0.11.2).
The view parses, checks access and answers; the decision to store nothing when one entry is
refused lives here."""

from typing import Any

from django.db import transaction

from accounts.models import User
from monitoring.ingest import ItemResult, readings_ingest
from monitoring.models import Device, Source
from patients.models import Patient


class TransactionRefused(Exception):
    """Nothing of the Bundle was stored: ``failed`` lists (the entry's index in the Bundle, its
    result) for every entry that was refused, so that the sender can mend them all at once."""

    def __init__(self, failed: list[tuple[int, ItemResult]]) -> None:
        super().__init__(f"{len(failed)} entries refused")
        self.failed = failed


def observations_transaction_store(*, patient: Patient, entries: dict[int, dict[str, Any]],
                                   provenance: dict[int, dict[str, Any] | None], source: Source,
                                   device: Device | None, entered_by: User | None) -> dict[int, ItemResult]:
    """Store the readings of a transaction Bundle's entries (index in the Bundle -> reading item,
    as monitoring.ingest takes them), in one database transaction; returns each entry's result.
    Raises TransactionRefused, with nothing stored, if any entry is refused (a field error, a
    client_id used for another reading, ...): a repeat (200) is no refusal."""
    order = sorted(entries)
    with transaction.atomic():
        results = readings_ingest(patient=patient, items=[entries[i] for i in order], source=source, device=device,
                                  entered_by=entered_by, provenance=[provenance.get(i) for i in order])
        failed = [(i, r) for i, r in zip(order, results, strict=True) if r.reading is None]
        if failed:
            raise TransactionRefused(failed)  # inside the atomic block: it rolls back
    return dict(zip(order, results, strict=True))
