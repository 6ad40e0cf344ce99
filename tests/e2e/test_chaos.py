"""Nothing lost, nothing doubled, when the parts fail: thousands of readings go in over HTTP
while the Celery worker is killed with SIGKILL again and again and Redis (broker and channel
layer) is stopped for a while. Afterwards every reading the server accepted is stored once,
every reading has been evaluated, every low reading is exactly one finding, and each patient has
exactly one unresolved alert for the rule.

The test runs its own redis-server, so stopping it cannot disturb anything else on the machine.
It needs the production shape (PostgreSQL, a real worker); CI runs it there."""

import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from alerts.evaluation import PendingEvaluation
from alerts.models import Alert, AlertEvent, AlertFinding, Rule
from alerts.selectors_readings import readings_unevaluated_ids
from monitoring.models import Device, DeviceKind, DeviceToken, Reading
from tests.factories import Cast, make_patient
from tests.live import LiveStack, _free_port, celery_sender, start_live_stack

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

PATIENTS = 20
READINGS_EACH = 100  # 2,000 readings
BATCH = 10
LOW = 88  # below the programme's SpO2 limit of 92: every low reading must be one finding


class PrivateRedis:
    def __init__(self, tmp_path: Path) -> None:
        self.port = _free_port()
        self.log = tmp_path / "redis.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - a fixed binary and arguments
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no"],
            stdout=self.log.open("a"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()  # SIGKILL: whatever was queued in it is gone
            self.proc.wait()


def _patients(cast: Cast) -> list[tuple[Any, str]]:
    out = []
    for i in range(PATIENTS):
        patient = make_patient(f"chaos-{i}", f"0101{50 + i:02d}-{4000 + i}", cast.team_a, cast.program_a)
        device = Device.objects.create(kind=DeviceKind.PULSE_OXIMETER, serial=f"CHAOS-{i}", patient=patient,
                                       lent_from=timezone.localdate() - timedelta(days=30))
        out.append((patient, DeviceToken.issue(device)[1]))
    return out


def _items(p: int) -> list[dict[str, Any]]:
    start = timezone.now().replace(microsecond=0) - timedelta(days=2)
    return [
        {"measure": "spo2", "value": LOW if k % 3 == 0 else 97, "unit": "%",
         "effective_at": (start + timedelta(minutes=k)).isoformat(), "client_id": f"chaos-{p}-{k}"}
        for k in range(READINGS_EACH)
    ]


def _send_all(stack: LiveStack, patients: list[tuple[Any, str]], accepted: dict[str, int],
              failures: Counter) -> None:
    """A gateway that retries: every batch is sent until the server answers it (a 5xx or a
    dropped connection means "try again", which the client_ids make safe)."""
    batches = [(token, items[i:i + BATCH]) for p, (_, token) in enumerate(patients)
               for items in [_items(p)] for i in range(0, READINGS_EACH, BATCH)]
    for token, batch in batches:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body = stack.request("POST", "/api/v1/readings", batch,
                                             {"Authorization": f"Bearer {token}"})
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                status, body = 0, None
            if status in (200, 201, 207):
                for item, result in zip(batch, body["results"], strict=True):
                    assert result["status"] in (200, 201), result
                    accepted[item["client_id"]] = result["id"]
                break
            failures[status] += 1
            assert time.monotonic() < deadline, f"batch never accepted: last status {status} {body}"
            time.sleep(0.2)
        time.sleep(0.01)


def _wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_killed_worker_and_stopped_redis_lose_and_double_nothing(live_cast: Cast, tmp_path: Path) -> None:
    from django.db import connection

    from tests.conftest import production_shape_required

    if not (os.environ.get("REDIS_URL") and connection.vendor == "postgresql"):
        if production_shape_required():
            pytest.fail("PROPLATFORM_REQUIRE_PRODUCTION_SHAPE=1 but not on PostgreSQL and Redis")
        pytest.skip("needs a real worker: run with DATABASE_URL (PostgreSQL) and REDIS_URL")
    patients = _patients(live_cast)
    redis = PrivateRedis(tmp_path)
    redis.start()
    try:
        with start_live_stack(tmp_path, env_overrides={"REDIS_URL": redis.url}) as stack:
            accepted: dict[str, int] = {}
            failures: Counter = Counter()
            sender = threading.Thread(target=_send_all, args=(stack, patients, accepted, failures))
            sender.start()
            kills = 0
            while sender.is_alive() and kills < 6:
                time.sleep(0.8)
                stack.processes["worker"].kill()  # SIGKILL mid-evaluation: no cleanup, no ack
                stack.processes["worker"].wait()
                kills += 1
                if kills == 3:
                    redis.kill()
                    time.sleep(2.5)
                    redis.start()
                stack.start("worker")
            sender.join(timeout=180)
            assert not sender.is_alive()
            assert kills >= 3, "ingest finished before the chaos did: raise READINGS_EACH"

            # The broker lost whatever it held; the database still knows what is unevaluated.
            # The sweep (the beat job) finds it and the worker evaluates it.
            left = len(readings_unevaluated_ids())
            broker = celery_sender(stack)

            def evaluated() -> bool:
                if not PendingEvaluation.objects.exists():
                    return True
                broker.send_task("alerts.evaluation.sweep", kwargs={"older_than_seconds": 0})
                return False

            _wait_until(evaluated, 120, "every reading evaluated")
    finally:
        redis.kill()

    sent = {item["client_id"] for p in range(PATIENTS) for item in _items(p)}
    assert set(accepted) == sent
    stored = dict(Reading.objects.filter(client_id__startswith="chaos-").values_list("client_id", "id"))
    assert stored == accepted  # each accepted reading stored exactly once, under the id we were given

    rule = Rule.objects.get(program=live_cast.program_a, kind="threshold")
    low_ids = set(Reading.objects.filter(client_id__startswith="chaos-", value=LOW).values_list("id", flat=True))
    findings = Counter(AlertFinding.objects.filter(rule=rule).values_list("source_key", flat=True))
    assert set(findings) == {f"reading:{i}" for i in low_ids}  # none missing, none for normal readings
    assert max(findings.values()) == 1  # none doubled

    alerts = Alert.objects.filter(rule=rule, patient__in=[p for p, _ in patients])
    assert Counter(alerts.values_list("patient_id", flat=True)) == {p.pk: 1 for p, _ in patients}
    for alert in alerts:
        assert alert.findings.count() == READINGS_EACH // 3 + 1
        assert AlertEvent.objects.filter(alert=alert, kind="raised").count() == 1
        added = AlertEvent.objects.filter(alert=alert, kind="evidence-added").values_list("data", flat=True)
        sources = [s for data in added for s in data["sources"]]  # one event per batch evaluated
        assert len(sources) == len(set(sources)) == READINGS_EACH // 3
    print(f"worker killed {kills} times, Redis stopped once; {left} readings left unevaluated by the chaos "
          f"were found by the sweep; retried requests by status: {dict(failures)}")
