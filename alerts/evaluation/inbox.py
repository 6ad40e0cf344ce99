"""Writing to and reading from the evaluation inbox (alerts.evaluation.models.PendingEvaluation).

The source apps call ``enqueue`` inside the transaction that stores their rows: the row commits
with them or not at all, so no stored reading or answer is ever without its pending evaluation.
The hot single-reading path writes its reading and its inbox row in one statement instead
(``reading_enqueue_sql``)."""

from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from alerts.evaluation.dispatch import request_now, request_soon
from alerts.evaluation.models import PendingEvaluation, Source


def enqueue(*, source: Source, ids: Iterable[int], not_before: datetime | None = None,
            after_commit: bool = True) -> int:
    """Record that the rules must look at ``ids`` (of ``source``'s model); returns the inbox row's
    id. Call it in the transaction that stores those rows. Unless ``not_before`` lies in the
    future or ``after_commit`` is False, an evaluation task is asked for once the transaction
    commits (robust: a broker outage leaves the row for the sweep, and the caller's answer true)."""
    object_ids = list(ids)
    now = timezone.now()
    row = PendingEvaluation.objects.create(source=source, object_ids=object_ids, size=len(object_ids),
                                           created_at=now, not_before=not_before or now)
    if after_commit and row.not_before <= now:
        pk = row.pk
        if source == Source.READING:
            transaction.on_commit(lambda: request_soon(pk), robust=True)
        else:
            # Not through the waiting-task mark: a waiting task coalesces reading batches only.
            transaction.on_commit(lambda: request_now([pk], readings=False), robust=True)
    return row.pk


def enqueue_each(*, source: Source, due: Iterable[tuple[int, datetime]]) -> None:
    """One inbox row per (id, not_before) in one INSERT, each asked for by the sweep once due
    (misses: each waits for its own deadline). Call it in the transaction that stores the rows."""
    now = timezone.now()
    PendingEvaluation.objects.bulk_create([
        PendingEvaluation(source=source, object_ids=[pk], size=1, created_at=now, not_before=not_before)
        for pk, not_before in due])


def pending_object_ids(*, source: Source) -> set[int]:
    """The ids of ``source``'s rows whose rules have not run yet."""
    return {i for ids in PendingEvaluation.objects.filter(source=source).values_list("object_ids", flat=True)
            for i in ids}


_TABLE = PendingEvaluation._meta.db_table


def reading_enqueue_sql(*, ids: str, size: str, at: str) -> str:
    """An ``INSERT … RETURNING id`` of one inbox row for readings, for a statement that also
    stores them (monitoring's COPY reservation and one-statement insert, PostgreSQL): ``ids`` an
    SQL expression of the jsonb array of reading ids, ``size`` of their count, ``at`` of the time
    (created_at and not_before)."""
    return (f"INSERT INTO {_TABLE} (source, object_ids, size, created_at, not_before) "
            f"SELECT '{Source.READING.value}', {ids}, {size}, {at}, {at}")


def inbox_claim(*, inbox_id: int, source: Source, now: datetime) -> PendingEvaluation | None:
    """Lock one due inbox row of ``source`` for the evaluating transaction, or None if it is gone
    (done), not due, or held by another worker right now (SKIP LOCKED). The caller deletes it in
    the same transaction when the work is done. Must run inside a transaction."""
    return (PendingEvaluation.objects.select_for_update(skip_locked=True)
            .filter(pk=inbox_id, source=source, not_before__lte=now).first())
