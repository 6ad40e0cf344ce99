"""A web process's evaluation requests leave it from one thread (alerts.evaluation.sender,
ADR 0016): alone a batch goes at once; under load the batches of an interval go together; a
failed send loses nothing the sweep would not find; what waits at exit is sent."""

import logging
import threading
import time
from unittest import mock

import pytest

from alerts.evaluation import dispatch
from alerts.evaluation.sender import EvaluationSender


class Recorder:
    def __init__(self, fail_first: int = 0) -> None:
        self.sent: list[list[int]] = []
        self.threads: set[str] = set()
        self.fail_first = fail_first
        self.event = threading.Event()

    def __call__(self, batch_ids: list[int]) -> None:
        self.threads.add(threading.current_thread().name)
        if self.fail_first:
            self.fail_first -= 1
            raise ConnectionError("broker down")
        self.sent.append(batch_ids)
        self.event.set()

    def wait_for(self, batch_ids: set[int], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not batch_ids <= {b for sent in self.sent for b in sent}:
            assert time.monotonic() < deadline, f"sent {self.sent}, waited for {sorted(batch_ids)}"
            time.sleep(0.005)


def test_a_batch_alone_is_sent_at_once_by_the_sender_thread():
    send = Recorder()
    sender = EvaluationSender(send, interval_seconds=lambda: 60.0)  # a long interval: only later sends wait

    started = time.monotonic()
    sender.put([1])
    send.wait_for({1})

    assert time.monotonic() - started < 2.0
    assert send.sent == [[1]] and send.threads == {"evaluation-sender"}


def test_batches_handed_over_within_an_interval_go_in_one_send():
    send = Recorder()
    sender = EvaluationSender(send, interval_seconds=lambda: 1.0)
    sender.put([1])
    send.wait_for({1})

    for batch in range(2, 12):
        sender.put([batch])
    send.wait_for(set(range(1, 12)))

    assert send.sent[0] == [1]
    assert sorted(b for sent in send.sent[1:] for b in sent) == list(range(2, 12))
    assert len(send.sent) == 2  # the ten that came within the interval went together


def test_a_failed_send_is_logged_and_the_thread_goes_on(caplog):
    send = Recorder(fail_first=1)
    sender = EvaluationSender(send, interval_seconds=lambda: 0.0)

    with caplog.at_level(logging.ERROR, logger="alerts.evaluation.sender"):
        sender.put([1])
        deadline = time.monotonic() + 5
        while "the sweep will" not in caplog.text:
            assert time.monotonic() < deadline
            time.sleep(0.005)
    sender.put([2])
    send.wait_for({2})

    assert send.sent == [[2]]  # batch 1 waits in the database for the sweep


def test_flush_sends_what_waits_from_the_calling_thread():
    release = threading.Event()
    sent: list[tuple[str, list[int]]] = []

    def slow_send(batch_ids: list[int]) -> None:
        sent.append((threading.current_thread().name, batch_ids))
        if threading.current_thread().name == "evaluation-sender":
            release.wait(5)  # busy until the test lets it go

    sender = EvaluationSender(slow_send, interval_seconds=lambda: 0.0)
    sender.put([1])
    deadline = time.monotonic() + 5
    while not sent:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    sender.put([2])
    sender.put([3])  # the thread is busy sending batch 1

    sender.flush()  # as at exit
    release.set()

    # What the thread held is sent again with what waited: a batch sent twice is claimed once.
    assert sent == [("evaluation-sender", [1]), (threading.current_thread().name, [1, 2, 3])]


def test_a_forked_process_starts_its_own_thread_and_queue():
    send = Recorder()
    sender = EvaluationSender(send, interval_seconds=lambda: 0.0)
    sender.put([1])
    send.wait_for({1})
    queue = sender._queue

    with mock.patch("alerts.evaluation.sender.os.getpid", return_value=-7):  # as in a child
        sender.put([2])
        send.wait_for({2})

    assert sender._queue is not queue and sender._pid == -7  # the parent's waiting ids stay behind


@pytest.mark.parametrize("eager", [True, False])
def test_committed_batches_are_sent_by_the_thread_with_a_broker_and_at_once_without(eager):
    from proplatform.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = eager
    try:
        with mock.patch.object(dispatch, "_sender") as sender, \
                mock.patch.object(dispatch, "request") as request_now:
            dispatch.request_soon(42)
    finally:
        app.conf.task_always_eager = previous

    if eager:  # the embedded shape: evaluated in the request, as before
        request_now.assert_called_once_with([42])
        sender.put.assert_not_called()
    else:
        sender.put.assert_called_once_with([42])
        request_now.assert_not_called()


def test_the_thread_outlives_a_failure_of_its_own(caplog):
    send = Recorder()
    intervals = iter([0.0])

    def interval() -> float:  # fails after the first send
        return next(intervals)

    sender = EvaluationSender(send, interval_seconds=interval)
    with caplog.at_level(logging.ERROR, logger="alerts.evaluation.sender"):
        sender.put([1])
        send.wait_for({1})
        sender.put([2])  # its interval cannot be worked out: logged, left to the sweep
        deadline = time.monotonic() + 5
        while "the sweep will find these batches" not in caplog.text:
            assert time.monotonic() < deadline
            time.sleep(0.005)
    assert sender._thread.is_alive()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # its end is the point
def test_a_thread_that_stopped_is_started_again_by_the_next_batch(caplog):
    sent: list[list[int]] = []

    def send(batch_ids: list[int]) -> None:
        if batch_ids == [1]:
            raise SystemExit  # not an Exception: it ends the thread
        sent.append(batch_ids)

    sender = EvaluationSender(send, interval_seconds=lambda: 0.0)
    with caplog.at_level(logging.ERROR, logger="alerts.evaluation.sender"):
        sender.put([1])
        first = sender._thread
        first.join(5)
    assert not first.is_alive() and "1 batches wait for the sweep" in caplog.text

    sender.put([2])
    deadline = time.monotonic() + 5
    while not sent:
        assert time.monotonic() < deadline, "no thread sent batch 2"
        time.sleep(0.005)
    assert sent == [[2]] and sender._thread is not first
