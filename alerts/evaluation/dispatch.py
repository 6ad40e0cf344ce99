"""Asking for evaluation tasks: after commit, from one sender thread per web process (ADR 0016);
each reading batch asks for a task, and a task coalesces the batches waiting beside its own
(ADR 0011).

Everything here is a hint to the worker: the inbox row is committed before any of it runs, and
what a lost message, a dead thread or a Redis outage leaves behind the sweep finds
(alerts.evaluation.sweep)."""

from collections.abc import Callable

from django.conf import settings

from alerts.evaluation.sender import EvaluationSender

# The most reading batches one claim takes: its own and up to this many others (coalescing).
COALESCE_MAX = 30


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
    """Queue a task for these just-committed reading batches. Each batch asks for its own (the
    sender thread sends what a process committed in one interval as one task, ADR 0016); a task
    that finds its batches already claimed by another's coalescing claim (ADR 0011) ends at once.
    Until issue 22 a Redis mark let a batch skip sending while a task waited; in paired runs it
    bought 2 % on bulk ingest and nothing on latency, and it made every batch rely on another
    task's claim — it is gone (ADR 0011's addendum)."""
    _send(inbox_ids)


def request_now(inbox_ids: list[int], *, readings: bool = True) -> None:
    """A task of their own for these rows. ``readings=False`` for rows of answers and misses
    only: their task runs no reading claim (every reading batch has a task of its own)."""
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

