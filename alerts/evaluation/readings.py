"""The reading source of the inbox: claim reading batches and run the reading rules on them.

A task claims the batches it was asked for and, coalesced, up to COALESCE_MAX others waiting
(ADR 0011, 0013): under a bulk upload one task pays the fixed cost of an evaluation for many
requests."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from psycopg.types.datetime import TimestamptzLoader

from alerts.evaluation.dispatch import COALESCE_MAX, one_waiting_task
from alerts.evaluation.models import PendingEvaluation, Source
from alerts.rules import kinds_for
from alerts.rules.context import Context, patient_of
from alerts.services import Evaluator, errors_record, findings_apply, reading_rules
from monitoring.models import Reading
from monitoring.rows import ReadingRow


def readings_evaluate(*, batch_ids: list[int]) -> int:
    """Run the reading rules on the readings of the given pending batches
    (alerts.evaluation.models.PendingEvaluation, source reading). Returns how many readings it evaluated.

    Each batch is claimed (its row deleted) in the same transaction that raises its alerts: if
    the worker dies half-way, both roll back and the re-delivered task does the work; if the
    task runs twice, the second finds nothing to claim. SKIP LOCKED lets a concurrent sweep
    pass over batches another worker is evaluating right now. Readings a clinician marked
    erroneous are not evaluated at all."""
    kinds = kinds_for("reading")
    now = timezone.now()
    with transaction.atomic():
        _commit_asynchronously()
        readings = _claim_readings(batch_ids)
        if not readings:
            return 0
        patient_ids = {patient_of(r) for r in readings}
        rules = reading_rules(readings, kinds, patient_ids)
        evaluator = Evaluator(Context(now=now), patient_ids, rules)
        evaluator.run_readings(readings, rules)
        findings_apply(evaluator.pending, now=now)
        errors_record(evaluator.errors)
    return len(readings)


def _commit_asynchronously() -> None:
    """Let this transaction's commit return before its WAL reaches the disk (ADR 0009).

    Safe for an evaluation because it is all-or-nothing: a database crash in the next fraction
    of a second can lose the whole transaction — the claim with the alerts — never part of it,
    and the pending batch is then there again for the sweep. The readings themselves were
    committed durably by ingest. Any later ordinary commit flushes this one too."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


_CLAIM_SQL = """
    WITH asked AS (
        SELECT id FROM alerts_pendingevaluation WHERE id = ANY(%(ids)s) AND source = 'reading'
        FOR UPDATE SKIP LOCKED
    ), waiting AS (
        -- Coalescing: other waiting batches created since %(since)s, oldest first. When the
        -- worker falls behind (a burst of single readings, a bulk upload) one task evaluates
        -- the backlog together and pays the fixed cost of a task once. At most 30 more batches
        -- (≤ 30,000 readings). With one waiting task (ADR 0011) batches rely on it however old.
        SELECT id FROM alerts_pendingevaluation
        WHERE source = 'reading' AND created_at >= %(since)s AND NOT (id = ANY(%(ids)s))
        ORDER BY id LIMIT %(extra)s FOR UPDATE SKIP LOCKED
    ), claimed AS (
        DELETE FROM alerts_pendingevaluation AS p
        USING (SELECT id FROM asked UNION SELECT id FROM waiting) AS c WHERE p.id = c.id
        RETURNING p.object_ids
    )
    SELECT r.measure, r.value, r.effective_at, r.value2, r.unit, r.id, r.patient_id, r.device_id,
           r.received_at, r.client_id, r.source, r.unusual  -- ReadingRow's order (monitoring.rows)
    FROM monitoring_reading AS r
    -- ARRAY(...) is computed once, then an index scan on the ids (IN (SELECT ...) was planned
    -- as a scan of the whole table: the planner cannot see how many ids the jsonb holds).
    WHERE r.id = ANY(ARRAY(SELECT jsonb_array_elements_text(object_ids)::bigint FROM claimed))
      AND r.erroneous_at IS NULL
    ORDER BY r.id
"""

# Coalescing (dispatch.COALESCE_MAX) takes at most 30 other pending batches into a task: enough
# for what a bulk upload of 100-reading requests commits while the worker gathers (ADR 0013),
# few enough that a task of full 1,000-reading batches stays well under a second.


def _coalescing_since() -> datetime:
    """The oldest waiting batch a task takes besides its own. With one waiting task at a time
    (ADR 0011) batches committed while it waited did not send a task of their own: it takes them
    however long it waited (a worker restart, a long task before it). Otherwise the batches
    received in the last ALERTS_COALESCE_SECONDS, which most likely still wait for their own."""
    if one_waiting_task():
        return datetime(2000, 1, 1, tzinfo=UTC)
    return timezone.now() - timedelta(seconds=settings.ALERTS_COALESCE_SECONDS)


def _claim_readings(batch_ids: list[int]) -> Sequence[ReadingRow | Reading]:
    """Claim (delete) the given pending batches that are not being evaluated elsewhere right now
    (SKIP LOCKED) and return their readings that are not erroneous, in id order; also up to
    COALESCE_MAX other waiting batches, oldest first (_coalescing_since).

    On PostgreSQL one statement (DELETE … RETURNING feeding the SELECT); elsewhere (SQLite, no row locks) the
    ORM. Must run inside the evaluating transaction."""
    since = _coalescing_since()
    if connection.vendor == "postgresql":
        # psycopg's own (C) timestamptz loader: Django's per-connection loader is a Python
        # subclass that made reading the timestamps of a 1,000-reading batch cost more than the
        # query. The times come back aware, in UTC (Django sets the session's TimeZone).
        with connection.connection.cursor() as raw:
            raw.adapters.register_loader("timestamptz", TimestamptzLoader)
            raw.execute(_CLAIM_SQL, {
                "ids": list(batch_ids),
                "since": since,
                "extra": COALESCE_MAX if settings.ALERTS_COALESCE_SECONDS else 0,
            })
            return [ReadingRow(*row) for row in raw.fetchall()]
    waiting = PendingEvaluation.objects.select_for_update(skip_locked=True).filter(source=Source.READING)
    batches: list[tuple[int, list[int]]] = list(waiting.filter(id__in=batch_ids).values_list("id", "object_ids"))
    if settings.ALERTS_COALESCE_SECONDS:  # as on PostgreSQL: a task may come with no batch of its own
        batches += list(
            waiting.filter(created_at__gte=since).exclude(id__in=batch_ids).order_by("id")
            .values_list("id", "object_ids")[:COALESCE_MAX]
        )
    PendingEvaluation.objects.filter(id__in=[b for b, _ in batches]).delete()
    return list(
        Reading.objects.filter(id__in=[i for _, ids in batches for i in ids], erroneous_at=None).order_by("id")
    )


