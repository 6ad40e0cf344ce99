"""The one evaluation task's work and the one sweep: whatever the source, a task is given inbox
row ids, and the sweep finds the rows no task claimed."""

from datetime import timedelta

from django.utils import timezone

from alerts.evaluation import dispatch
from alerts.evaluation.missed import missed_inbox_evaluate
from alerts.evaluation.models import PendingEvaluation, Source
from alerts.evaluation.readings import readings_evaluate
from alerts.evaluation.responses import response_inbox_evaluate

# A task of the sweep takes reading batches up to about this many readings together.
_SWEEP_TASK_READINGS = 1000


def pending_evaluate(*, inbox_ids: list[int], readings: bool = True) -> int:
    """Evaluate the given inbox rows that are due and not claimed yet (and, coalesced, other
    reading batches waiting: ADR 0011, 0013). Returns how many source rows it evaluated.

    Reading batches are claimed together in one transaction with their alerts; an answer or a
    miss each in a transaction of its own, so that one that fails leaves the others done.
    ``readings=False`` (a task for answers or misses): no reading claim — four statements and a
    transaction on the path of every answer — and the waiting-task mark is not this task's."""
    evaluated = 0
    if readings:
        dispatch.gather()
        dispatch.taken()
        evaluated = readings_evaluate(batch_ids=inbox_ids)
        dispatch.claimed(readings=evaluated)
    # A successor (ADR 0011) comes with no rows of its own (under a bulk upload most tasks do):
    # it need not look for answers and misses among none, a query per task.
    others: list[tuple[int, str]] = list(
        PendingEvaluation.objects.filter(id__in=inbox_ids).exclude(source=Source.READING)
        .order_by("id").values_list("id", "source")) if inbox_ids else []
    for inbox_id, source in others:
        if source == Source.RESPONSE:
            evaluated += response_inbox_evaluate(inbox_id=inbox_id)
        elif source == Source.MISSED:
            evaluated += missed_inbox_evaluate(inbox_id=inbox_id, now=timezone.now())
    if readings and dispatch.left_waiting():
        dispatch.request([])  # the successor claims what this task's claim left
    return evaluated


def pending_sweep(*, older_than_seconds: int = 30, limit: int = 500) -> int:
    """Ask for the evaluation of inbox rows due for a while that no task has claimed: their
    message was lost (broker down, worker killed, web process gone before its sender thread
    sent), or, for a miss, its grace period has just passed. Returns how many rows it asked for.

    Rows due less than ``older_than_seconds`` ago are left alone: their task (or the one waiting
    task they rely on, ADR 0011) is most likely still queued. Every evaluation claims its row,
    so a row asked for twice is evaluated once."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    rows = list(PendingEvaluation.objects.filter(not_before__lt=cutoff).order_by("not_before", "id")
                .values_list("id", "source", "size")[:limit])
    # Small reading batches (single readings) travel together, up to about 1,000 readings a task;
    # an answer or a miss takes a task of its own.
    group: list[int] = []
    readings = 0
    for inbox_id, source, size in rows:
        if source != Source.READING:
            dispatch.request_now([inbox_id], readings=False)
            continue
        if group and readings + size > _SWEEP_TASK_READINGS:
            dispatch.request_now(group)
            group, readings = [], 0
        group.append(inbox_id)
        readings += size
    if group:
        dispatch.request_now(group)
    return len(rows)
