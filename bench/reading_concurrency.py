"""Single-reading POST over HTTP with 20 concurrent clients against a real daphne server,
beside a no-op endpoint (same middleware and device-token authentication) in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/proplatform REDIS_URL=redis://127.0.0.1:6379/6 \\
        .venv/bin/python bench/reading_concurrency.py [CLIENTS] [REQUESTS_PER_CLIENT]

With REDIS_URL (the production shape) the request commits and enqueues the evaluation to Redis
— a worker would evaluate it; none runs here, so the measured time is the request's own.
Without it, the evaluation runs inside the request (embedded shape). Target (issue #4):
p95 <= 30 ms with 20 concurrent clients. Runs on a throw-away test database.
"""

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proplatform.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_clients(port: int, tokens: list[str], per_client: int, path: str, body) -> list[float]:  # type: ignore[no-untyped-def]
    latencies: list[float] = []
    lock = threading.Lock()
    start = timezone.now() - timedelta(days=1)

    def client(n: int, token: str) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        for i in range(per_client):
            payload = json.dumps(body(n, i, start)).encode()
            started = time.perf_counter()
            conn.request("POST", path, payload, {"Authorization": f"Bearer {token}",
                                                 "Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            mine.append((time.perf_counter() - started) * 1000)
            assert response.status in (200, 201), response.status
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(n, t)) for n, t in enumerate(tokens)]
    wall = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - wall
    return latencies + [wall]


def report(label: str, samples: list[float]) -> float:
    wall = samples.pop()
    ordered = sorted(samples)
    p50, p95 = statistics.median(ordered), ordered[int(len(ordered) * 0.95) - 1]
    print(f"{label:<36} p50 {p50:7.2f} ms  p95 {p95:7.2f} ms  {len(samples) / wall:7.0f} requests/s")
    return p95


def main() -> None:
    clients = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    per_client = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    setup_test_environment()
    old_name = settings.DATABASES["default"]["NAME"]
    connection.creation.create_test_db(verbosity=0)
    server = None
    try:
        from monitoring.models import Device, DeviceKind, DeviceToken
        from tests.factories import make_cast, make_patient

        cast = make_cast()
        tokens = []
        for n in range(clients):  # each client is its own patient's device, as in real life
            patient = make_patient(f"bench-{n}", f"0101{n % 100:02d}-{1000 + n:04d}", cast.team_a, cast.program_a)
            device = Device.objects.create(kind=DeviceKind.PULSE_OXIMETER, serial=f"B-{n}", patient=patient)
            tokens.append(DeviceToken.issue(device)[1])
        db = settings.DATABASES["default"]
        url = (f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
               if connection.vendor == "postgresql" else f"sqlite:///{db['NAME']}")
        port = free_port()
        env = {**os.environ, "DATABASE_URL": url, "HTTPS_ONLY": "0", "ROOT_URLCONF": "bench.urls",
               "REDIS_PREFIX": f"bench-{port}", "LOG_LEVEL": "WARNING", "SECRET_KEY": settings.SECRET_KEY}
        server = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                                   "proplatform.asgi:application"], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)

        def reading(n, i, start):  # type: ignore[no-untyped-def]
            return {"measure": "spo2", "value": 93 + i % 6, "unit": "%", "client_id": f"c{n}-{i}",
                    "effective_at": (start + timedelta(seconds=i)).isoformat()}

        shape = "production (Redis broker)" if os.environ.get("REDIS_URL") else "embedded (evaluation in-request)"
        print(f"daphne, {connection.vendor}, {shape}; {clients} clients x {per_client} requests")
        run_clients(port, tokens, 10, "/bench/noop", reading)  # warm-up
        report("no-op POST (same auth stack)", run_clients(port, tokens, per_client, "/bench/noop", reading))
        p95 = report("POST /api/v1/readings", run_clients(port, tokens, per_client, "/api/v1/readings",
                                                          reading))
        print(f"target p95 <= 30 ms: {'met' if p95 <= 30 else 'NOT met'}")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
