"""A web process's evaluation requests leave it from one thread (ADR 0016).

With a broker, a request that stored readings used to send their evaluation task itself, after
commit: Celery's publish cost ~0.4 ms of CPU, a third of a device's single-reading request. Now
the request hands the pending batch's id to this process's sender thread (a queue put) and
answers; the thread sends, and batches handed over while it waits or sends go out in one task
(an evaluation task claims every batch it is given, and others waiting: ADR 0011). The
one-waiting-task mark of ADR 0011 is checked by the thread too, so a request no longer talks to
Redis at all.

Nothing is lost that was not lost before: the batches are committed before they are handed
over, and a batch whose request the thread never sends (the broker is down, the process dies)
waits in the inbox (alerts_pendingevaluation) for the sweep, as when a broker loses a message. At a
normal exit the process sends what still waits in its queue (atexit). A thread that died for
any reason is started again by the next batch handed over.
"""

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable
from queue import Empty, SimpleQueue

logger = logging.getLogger(__name__)


class EvaluationSender:
    """Sends ``send(batch_ids)`` from one daemon thread per process (started on first use, and
    again in a forked child), each call with every batch id handed over meanwhile."""

    def __init__(self, send: Callable[[list[int]], None], *, interval_seconds: Callable[[], float]) -> None:
        self._send = send
        self._interval_seconds = interval_seconds
        self._queue: SimpleQueue[list[int]] = SimpleQueue()
        self._pid: int | None = None
        self._thread = threading.Thread()  # not started: the first put starts the real one
        self._holding: list[int] = []  # what the thread has taken from the queue and not yet sent
        self._lock = threading.Lock()

    def put(self, batch_ids: list[int]) -> None:
        if self._pid != os.getpid() or not self._thread.is_alive():
            self._start()
        self._queue.put(batch_ids)

    def flush(self) -> None:
        """Send what waits, and what the thread holds (waiting out its interval, or sending),
        from the calling thread: at exit, when the daemon thread is about to be stopped, and in
        tests. A batch sent twice is harmless: the second task finds it claimed."""
        batch_ids = self._drained(self._holding)
        if batch_ids:
            self._send_safely(batch_ids)

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid() and self._thread.is_alive():
                return
            if self._pid != os.getpid():
                self._queue = SimpleQueue()  # a forked child does not inherit its parent's waiting ids
            if self._pid is None:
                atexit.register(self.flush)
            self._thread = threading.Thread(target=self._run, name="evaluation-sender", daemon=True)
            self._thread.start()
            self._pid = os.getpid()

    def _run(self) -> None:
        last_sent = float("-inf")
        try:
            while True:
                self._holding = list(self._queue.get())
                try:
                    # At most one send per interval: alone, a batch goes at once; under load, the
                    # batches handed over within an interval go together.
                    if (wait := last_sent + self._interval_seconds() - time.monotonic()) > 0:
                        time.sleep(wait)
                    self._holding = self._drained(self._holding)
                except Exception:  # the thread outlives any failure (these batches wait for the sweep)
                    logger.exception("The evaluation sender failed; the sweep will find these batches")
                    self._holding = []
                    continue
                last_sent = time.monotonic()
                self._send_safely(self._holding)
                self._holding = []
        except BaseException:
            # Not an Exception (e.g. SystemExit): the thread stops; the next batch handed over
            # starts another, and the batches held here wait for the sweep.
            logger.exception("The evaluation sender stopped; %d batches wait for the sweep", len(self._holding))
            raise

    def _drained(self, first: list[int]) -> list[int]:
        """``first`` and every batch id waiting in the queue."""
        batch_ids = list(first)
        while True:
            try:
                batch_ids += self._queue.get_nowait()
            except Empty:
                return batch_ids

    def _send_safely(self, batch_ids: list[int]) -> None:
        try:
            self._send(batch_ids)
        except Exception:
            # The batches are committed and wait for the sweep (alerts.evaluation.sweep).
            logger.exception("Could not request the evaluation of %d pending batches; the sweep will", len(batch_ids))
