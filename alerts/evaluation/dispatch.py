"""Asking for evaluation tasks: after commit, from one sender thread per web process, with at
most one task waiting in the queue for reading batches (ADR 0011, 0013, 0016).

Everything here is a hint to the worker: the inbox row is committed before any of it runs, and
what a lost message, a dead thread or a Redis outage leaves behind the sweep finds
(alerts.evaluation.sweep)."""

import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import QuerySet

from alerts.evaluation.models import PendingEvaluation, Source
from alerts.evaluation.sender import EvaluationSender

# Set while an evaluation task waits in the queue and has not started claiming (ADR 0011).
EVALUATION_QUEUED_KEY = "readings:evaluation-queued"
# The most reading batches one claim takes: its own and up to this many others (coalescing).
COALESCE_MAX = 30
CLAIM_MAX_BATCHES = 1 + COALESCE_MAX


# How one evaluation task is queued, given by the task's own module when the alerts app is ready
# (alerts.apps → alerts.evaluation.tasks.evaluate_send). Not imported from here: the task runs the
# rules, which import the source apps' models, and this module is imported by those source apps
# (through ``enqueue``); the contract "enqueue-side" in pyproject.toml keeps it so.
_task_send: Callable[[list[int], bool], None] | None = None


def task_sender_set(send: Callable[[list[int], bool], None]) -> None:
    """Say how to queue one evaluation task for a list of inbox row ids, and whether it claims
    reading batches (alerts.apps, once)."""
    global _task_send
    _task_send = send


def _send(inbox_ids: list[int], readings: bool = True) -> None:
    """Queue one evaluation task for these inbox rows (and, coalesced, other waiting reading
    batches unless ``readings`` is False)."""
    if _task_send is None:  # Django not set up: nothing could have run the alerts app's ready()
        raise RuntimeError("alerts.evaluation: no task sender (the alerts app is not ready)")
    _task_send(inbox_ids, readings)


def _tasks_run_in_process() -> bool:
    from proplatform.celery import app

    return bool(app.conf.task_always_eager)


def one_waiting_task() -> bool:
    """Whether reading batches send a task only when none waits (a real broker, coalescing on,
    not switched off with EVALUATION_QUEUED_SECONDS=0). With tasks run in-process (the embedded
    shape) every batch is evaluated at its own commit."""
    return (not _tasks_run_in_process() and settings.ALERTS_COALESCE_SECONDS > 0
            and settings.EVALUATION_QUEUED_SECONDS > 0)


def request(inbox_ids: list[int]) -> None:
    """Make sure an evaluation task will claim these just-committed reading batches (ADR 0011).

    If a task is already queued and has not started claiming, it will claim them too (it
    coalesces waiting batches, oldest first and however old, and if it leaves some, queues its
    successor), so none is sent: under a bulk upload one task per round instead of one per
    request. Correct because the batch was committed before the mark was found set, and a task
    clears the mark before it claims. If the mark's task is lost the mark expires
    (EVALUATION_QUEUED_SECONDS) and the sweep evaluates what it left."""
    if not one_waiting_task():
        _send(inbox_ids)
        return
    if not cache.add(EVALUATION_QUEUED_KEY, 1, timeout=settings.EVALUATION_QUEUED_SECONDS):
        return
    try:
        _send(inbox_ids)
    except BaseException:
        cache.delete(EVALUATION_QUEUED_KEY)  # nothing was queued: the next batch sends a task
        raise


def request_now(inbox_ids: list[int], *, readings: bool = True) -> None:
    """A task of their own for these rows. ``readings=False`` for rows of answers and misses
    only: their task runs no reading claim (reading batches have a task of their own, or rely on
    the one waiting, ADR 0011) and leaves the waiting-task mark alone."""
    _send(inbox_ids, readings)


def _send_interval_seconds() -> float:
    return float(settings.EVALUATION_SEND_INTERVAL_MS) / 1000


_sender = EvaluationSender(request, interval_seconds=_send_interval_seconds)


def request_soon(inbox_id: int) -> None:
    """Ask for a just-committed reading batch's evaluation. With tasks run in-process (the
    embedded shape) it is evaluated now, in this request; with a broker the process's sender
    thread sends the request, together with the others waiting (ADR 0016), and the caller goes on."""
    if _tasks_run_in_process():
        request([inbox_id])
    else:
        _sender.put([inbox_id])


def sender_flush() -> None:
    """Send what this process's sender thread holds, from the calling thread (tests, shutdown)."""
    _sender.flush()


# --- the worker side: gathering a bulk upload (ADR 0013) ----------------------------------------

# A claim of at least this many readings counts as a bulk upload's backlog (gather).
GATHER_AFTER_READINGS = 200
# While gathering, how often a task looks whether a full claim is already waiting.
_GATHER_STEP_SECONDS = 0.025


@dataclass(slots=True)
class _LastClaim:
    at: float = float("-inf")  # time.monotonic() when it claimed
    readings: int = 0


_last_claim = _LastClaim()  # this worker process's latest evaluation task


def _reading_batches() -> QuerySet[PendingEvaluation]:
    return PendingEvaluation.objects.filter(source=Source.READING)


def gather() -> None:
    """Called by an evaluation task before it claims (ADR 0013): if this worker process's
    previous task claimed a backlog of GATHER_AFTER_READINGS or more (a bulk upload is arriving),
    wait until EVALUATION_GATHER_MS have passed since that claim, or until a full claim waits
    (the worker is behind: waiting longer would only grow the backlog). Batches committed
    meanwhile find the mark of ADR 0011 still set and rely on this task, so one claim takes
    them all. Alone or after a small claim it does not wait: the latency of a single reading's
    alert is unchanged."""
    gather_seconds = float(settings.EVALUATION_GATHER_MS) / 1000
    if gather_seconds <= 0 or _last_claim.readings < GATHER_AFTER_READINGS or not one_waiting_task():
        return
    until = _last_claim.at + gather_seconds
    while (wait := until - time.monotonic()) > 0:
        if _reading_batches()[:CLAIM_MAX_BATCHES].count() >= CLAIM_MAX_BATCHES:
            return
        time.sleep(min(wait, _GATHER_STEP_SECONDS))


def claimed(*, readings: int) -> None:
    """Remember how many readings this worker process's latest claim took (gather)."""
    _last_claim.readings = readings


def taken() -> None:
    """Called by an evaluation task before it claims: batches committed from now on need a
    task of their own (or the successor this one queues)."""
    _last_claim.at, _last_claim.readings = time.monotonic(), 0
    if one_waiting_task():
        cache.delete(EVALUATION_QUEUED_KEY)


def left_waiting() -> bool:
    """Whether a reading batch still waits, unclaimed and not being evaluated by another task
    right now (SKIP LOCKED): after a task's claim was full, more batches relied on it than it took."""
    if not one_waiting_task():
        return False
    with transaction.atomic():
        return _reading_batches().select_for_update(skip_locked=True).exists()
