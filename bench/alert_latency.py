"""From a reading's HTTP submission to the alert on a clinician's websocket, with the real
processes: the ASGI server and a Celery worker over Redis, on PostgreSQL (issue #5).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/proplatform REDIS_URL=redis://127.0.0.1:6379/6 \\
        .venv/bin/python bench/alert_latency.py [IDLE_READINGS] [RATE_PER_S] [SECONDS] [WORKER_CONCURRENCY]

1. Idle: readings one at a time (50 ms apart); p50/p95/p99 of submit → alert received.
   Target p50 <= 50 ms, p95 <= 150 ms.
2. Sustained: RATE readings/s for SECONDS (open loop: sent on schedule whatever the answers),
   spread over 10 patients; p50/p95/p99 and how many never arrived. Target at 100/s:
   p95 <= 500 ms, 0 lost.
3. Evaluation throughput in-process: readings_evaluate over 10,000 pending readings in
   batches of 500 (as the ingest enqueues them), readings/s.
The no-op reference: a POST to a no-op endpoint behind the same device-token authentication
(bench/urls.py), in the same run.
Runs on a throw-away test database.
"""

import http.client
import json
import os
import queue
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proplatform.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from bench.reading_concurrency import command_lines, cpu_seconds, process_tree  # noqa: E402


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def line(label: str, values: list[float]) -> str:
    if not values:
        return f"{label:<34} no samples"
    return (f"{label:<34} p50 {statistics.median(values):7.1f} ms  p95 {pct(values, 95):7.1f} ms  "
            f"p99 {pct(values, 99):7.1f} ms  n={len(values)}")


class Feed:
    """A clinician's websocket. A reading counts as arrived with the first message about its
    patient's alert whose latest evidence is that reading or a later one: findings evaluated
    together in one batch update the one alert once, showing the newest."""

    def __init__(self, url: str, origin: str, cookie: str) -> None:
        self.messages: dict[str, list[tuple[int, float]]] = {}
        self.lock = threading.Lock()
        self.ws = connect(f"{url}/ws/alerts/", origin=origin, additional_headers={"Cookie": cookie},
                          open_timeout=10, max_size=None)
        self.ws.recv(timeout=10)  # the snapshot
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                message = json.loads(self.ws.recv())
            except Exception:  # noqa: BLE001 - closed at the end of the run
                return
            now = time.perf_counter()
            alert = message.get("alert") or {}
            reading_id = (alert.get("evidence") or {}).get("reading_id")
            if reading_id is not None:
                with self.lock:
                    self.messages.setdefault(alert["patient"]["id"], []).append((reading_id, now))

    def arrived(self, patient_id: str, reading_id: int, sent: float) -> float | None:
        with self.lock:
            for shown, at in self.messages.get(patient_id, ()):
                if shown >= reading_id and at >= sent:
                    return at
        return None

    def wait_for(self, patient_id: str, reading_id: int, sent: float, timeout: float) -> float | None:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if (at := self.arrived(patient_id, reading_id, sent)) is not None:
                return at
            time.sleep(0.0005)
        return None


def _cpu_groups(stack: Any) -> dict[str, list[int]]:
    """The processes whose CPU time the sustained run reports: the web and worker process trees,
    every PostgreSQL process and Redis (whoever else uses them counts too: run on a quiet machine)."""
    running = command_lines()
    postgres = [pid for pid, cmdline in running.items() if cmdline.startswith(b"postgres")]
    redis = [pid for pid, cmdline in running.items() if cmdline.startswith(b"redis-server")]
    groups = {f"{name} (process tree)": process_tree(proc.pid) for name, proc in stack.processes.items()
              if name != "worker"}
    worker = stack.processes["worker"].pid  # the consumer; the pool's processes run the tasks
    groups["worker: main process (broker, acks)"] = [worker]
    groups["worker: pool processes (the tasks)"] = [p for p in process_tree(worker) if p != worker]
    return {**groups, "PostgreSQL (all its processes)": postgres, "Redis": redis}


def post(url: str, token: str, body: dict[str, Any]) -> int:
    request = urllib.request.Request(url + "/api/v1/readings", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["id"]


def main() -> None:
    idle_n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    rate = float(sys.argv[2]) if len(sys.argv) > 2 else 100
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 20
    concurrency = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    if connection.vendor != "postgresql" or not os.environ.get("REDIS_URL"):
        sys.exit("needs the production shape: DATABASE_URL (PostgreSQL) and REDIS_URL")

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, keepdb=False)
    try:
        from monitoring.models import Device, DeviceKind, DeviceToken
        from tests.factories import make_cast, make_patient
        from tests.live import start_live_stack

        cast = make_cast()
        tokens = [(cast.device_token_a, str(cast.patient_a.pk))]
        for i in range(9):
            patient = make_patient(f"bench-{i}", f"0202{60 + i:02d}-{5000 + i}", cast.team_a, cast.program_a)
            device = Device.objects.create(kind=DeviceKind.PULSE_OXIMETER, serial=f"LAT-{i}", patient=patient,
                                           lent_from=timezone.localdate() - timedelta(days=365))
            tokens.append((DeviceToken.issue(device)[1], str(patient.pk)))
        client = Client()
        client.force_login(cast.clinician_a)
        cookie = f"sessionid={client.cookies['sessionid'].value}"

        with tempfile.TemporaryDirectory() as tmp, start_live_stack(
                Path(tmp), env_overrides={"ROOT_URLCONF": "bench.urls"}, worker_concurrency=concurrency) as stack:
            feed = Feed(stack.ws_url, stack.url, cookie)
            start = timezone.now() - timedelta(days=1)
            counter = iter(range(10**9))

            def reading(token: str) -> tuple[float, int]:
                k = next(counter)
                body = {"measure": "spo2", "value": 85, "unit": "%", "client_id": f"lat-{k}",
                        "effective_at": (start + timedelta(seconds=k)).isoformat()}
                sent = time.perf_counter()
                return sent, post(stack.url, token, body)

            noop = []
            for _ in range(50):
                t = time.perf_counter()
                request = urllib.request.Request(stack.url + "/bench/noop", data=b"{}", method="POST", headers={
                    "Content-Type": "application/json", "Authorization": f"Bearer {tokens[0][0]}"})
                urllib.request.urlopen(request, timeout=10).read()
                noop.append((time.perf_counter() - t) * 1000)

            idle = []
            for i in range(idle_n):
                token, patient_id = tokens[i % len(tokens)]
                sent, reading_id = reading(token)
                arrived = feed.wait_for(patient_id, reading_id, sent, 10)
                if arrived is not None:
                    idle.append((arrived - sent) * 1000)
                time.sleep(0.05)

            sent_at: dict[int, tuple[str, float]] = {}
            lock = threading.Lock()
            total = int(rate * seconds)

            answered: list[float] = []  # submit -> HTTP answer: where a backlog builds up
            jobs: queue.Queue[tuple[int, float] | None] = queue.Queue()
            host, port = stack.url.removeprefix("http://").split(":")

            def sender() -> None:
                # Keep-alive connections, as a reverse proxy keeps them to the app server; each
                # reading's clock starts at its scheduled time, so time spent waiting for a free
                # sender counts too (an open loop: no coordinated omission).
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
                while (job := jobs.get()) is not None:
                    i, due = job
                    token, patient_id = tokens[i % len(tokens)]
                    k = next(counter)
                    body = json.dumps({"measure": "spo2", "value": 85, "unit": "%", "client_id": f"lat-{k}",
                                       "effective_at": (start + timedelta(seconds=k)).isoformat()})
                    conn.request("POST", "/api/v1/readings", body, {
                        "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
                    response = conn.getresponse()
                    reading_id = json.loads(response.read())["id"]
                    with lock:
                        sent_at[reading_id] = (patient_id, due)
                        answered.append((time.perf_counter() - due) * 1000)
                conn.close()

            senders = [threading.Thread(target=sender) for _ in range(32)]
            for th in senders:
                th.start()
            groups = _cpu_groups(stack)
            cpu_before = {name: cpu_seconds(pids) for name, pids in groups.items()}
            own_before = time.process_time()
            begin = time.perf_counter()
            for i in range(total):
                due = begin + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                jobs.put((i, due))
            for _ in senders:
                jobs.put(None)
            for th in senders:
                th.join()
            achieved = total / (time.perf_counter() - begin)
            deadline = time.perf_counter() + 15
            arrival: dict[int, float | None] = {}
            while time.perf_counter() < deadline:
                arrival = {r: feed.arrived(p, r, s) for r, (p, s) in sent_at.items()}
                if all(a is not None for a in arrival.values()):
                    break
                time.sleep(0.2)
            cpu_used = {name: cpu_seconds(pids) - cpu_before[name] for name, pids in groups.items()}
            cpu_used["load generator + websocket client (this process)"] = time.process_time() - own_before
            sustained = [(arrival[r] - s) * 1000 for r, (_, s) in sent_at.items() if arrival.get(r) is not None]
            lost = sum(1 for a in arrival.values() if a is None)
            feed.ws.close()
            # Where the time went: the finding's found_at is when the worker evaluated the reading.
            from alerts.models import AlertFinding

            wall_offset = time.time() - time.perf_counter()
            found = dict(AlertFinding.objects.filter(source_key__in=[f"reading:{r}" for r in sent_at])
                         .values_list("source_key", "found_at"))
            evaluated_after = [(found[f"reading:{r}"].timestamp() - wall_offset - s) * 1000
                         for r, (_, s) in sent_at.items() if f"reading:{r}" in found]

        from alerts.evaluation import Source as EvaluationSource
        from alerts.evaluation import enqueue
        from alerts.evaluation.readings import readings_evaluate
        from monitoring.models import Reading, Source

        created = Reading.objects.bulk_create([
            Reading(patient=cast.patient_a, measure="spo2", value=85 if i % 3 == 0 else 97, unit="%",
                    effective_at=start + timedelta(seconds=10**6 + i), source=Source.API)
            for i in range(10_000)
        ])
        ids = [r.pk for r in created]
        batches = [enqueue(source=EvaluationSource.READING, ids=ids[i:i + 500], after_commit=False)
                   for i in range(0, len(ids), 500)]
        t = time.perf_counter()
        evaluated = sum(readings_evaluate(batch_ids=[b]) for b in batches)
        throughput = evaluated / (time.perf_counter() - t)

        print(line("no-op HTTP round trip (POST)", noop))
        print(line("idle: submit → alert on websocket", idle) + f"  (missing {idle_n - len(idle)})")
        print(line(f"sustained {achieved:.0f}/s for {seconds:.0f} s", sustained) + f"  lost {lost} of {total}")
        print(line("  of which: submit → HTTP answer", answered))
        print(line("  submit → evaluated (found_at)", evaluated_after))
        print(f"{'evaluation throughput':<34} {throughput:9.0f} readings/s (in-process, batches of 500)")
        print(f"worker concurrency {concurrency}")
        print(f"CPU during the sustained run, per reading ({total} readings, {os.cpu_count()} CPUs):")
        for name, used in cpu_used.items():
            print(f"  {name:<52} {used / total * 1000:6.2f} ms")
        print(f"  {'all':<52} {sum(cpu_used.values()) / total * 1000:6.2f} ms"
              f" -> at most {(os.cpu_count() or 1) / (sum(cpu_used.values()) / total):.0f} readings/s")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
