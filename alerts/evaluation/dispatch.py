"""Asking for evaluation tasks: after commit, from one sender thread per web process (ADR 0016).
Each reading batch asks for a task; a task claims its own batches and, coalesced, others waiting
(ADR 0011); after a bulk upload's claim a worker process gathers before the next (ADR 0013).

Everything here is a hint to the worker: the inbox row is committed before any of it runs, and
what a lost message, a dead thread or a Redis outage leaves behind the sweep finds
(alerts.evaluation.sweep)."""

import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db.models import QuerySet

from alerts.evaluation.models import PendingEvaluation, Source
from alerts.evaluation.sender import EvaluationSender

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


def request(inbox_ids: list[int]) -> None:
    """Queue a task for these just-committed reading batches. Every batch asks for one (the
    sender thread sends what a process committed within one interval as one task, ADR 0016). A
    task claims its own batches and, coalesced, others waiting: under load one task's claim takes
    the batches of several, whose tasks then find theirs gone (ADR 0011, 0013).

    Until issue 22 a Redis mark let a batch send nothing while a task waited in the queue, and
    rely on that task's claim (and on the successor it queued when its claim was full). In
    paired runs the mark bought about 2 % on bulk ingest and nothing on latency: it is gone
    (ADR 0011's addendum), and with it every batch that relied on another's task."""
    _send(inbox_ids)


def request_now(inbox_ids: list[int], *, readings: bool = True) -> None:
    """A task of their own for these rows (the sweep). ``readings=False`` for rows of answers
    and misses only: their task runs no reading claim."""
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


def _gathers() -> bool:
    """Whether a worker gathers: a real broker (with tasks run in-process, the embedded shape,
    every batch is evaluated at its own commit, in its request), coalescing on (without it a claim
    takes only its own batches: there is nothing to gather for), EVALUATION_GATHER_MS > 0."""
    return (not _tasks_run_in_process() and settings.ALERTS_COALESCE_SECONDS > 0
            and settings.EVALUATION_GATHER_MS > 0)


def gather(inbox_ids: list[int]) -> bool:
    """Called by an evaluation task before it claims reading batches (ADR 0013); whether it
    should claim at all.

    Alone or after a small claim it claims at once: the latency of a single reading's alert is
    unchanged. Within EVALUATION_GATHER_MS after this worker process's previous task claimed a
    backlog of GATHER_AFTER_READINGS or more (a bulk upload is arriving):
    - a task whose batches that claim (or another since) already took ends without a claim
      (False). Under a bulk upload many do: the tasks of the batches a claim coalesced. A claim
      of theirs would take the batches committed since, a few at a time; those batches have
      tasks of their own, and the first of those to run gathers them into one claim.
    - a task whose batch still waits waits until EVALUATION_GATHER_MS have passed since that
      claim, or until a full claim waits (the worker is behind: waiting longer would only grow
      the backlog), then claims (True): its own batch and, coalesced, what came in meanwhile.
    Later than that every task claims at once."""
    if _last_claim.readings < GATHER_AFTER_READINGS or not _gathers():
        return True
    until = _last_claim.at + float(settings.EVALUATION_GATHER_MS) / 1000
    if until <= time.monotonic():
        return True  # the worker is behind: any task claims a full backlog at once
    if not _reading_batches().filter(id__in=inbox_ids).exists():
        return False
    while (wait := until - time.monotonic()) > 0:
        if _reading_batches()[:CLAIM_MAX_BATCHES].count() >= CLAIM_MAX_BATCHES:
            break
        time.sleep(min(wait, _GATHER_STEP_SECONDS))
    return True


def taken() -> None:
    """Called by an evaluation task as it claims: the time gathering counts from."""
    _last_claim.at, _last_claim.readings = time.monotonic(), 0


def claimed(*, readings: int) -> None:
    """Remember how many readings this worker process's latest claim took (gather)."""
    _last_claim.readings = readings
