"""Single-reading ingest through the full HTTP stack (middleware, device-token auth, validation,
insert, rule evaluation after commit, live push) against a no-op request through the same stack.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/proplatform .venv/bin/python bench/reading_request.py [N]

Runs on a throw-away test database (created and dropped here). Tasks run in-process, so the
measured time includes rule evaluation, as a worker would spend it.
"""

import os
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proplatform.settings")
os.environ["HTTPS_ONLY"] = "0"  # the test client speaks plain HTTP
os.environ.pop("REDIS_URL", None)  # in-process tasks: the evaluation cost lands in the measurement

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings, setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402


def timed(label: str, n: int, call) -> float:  # type: ignore[no-untyped-def]
    for i in range(min(50, n)):  # warm-up
        call(-i - 1)
    started = time.perf_counter()
    for i in range(n):
        call(i)
    per = (time.perf_counter() - started) / n * 1000
    print(f"{label:<34} {per:8.3f} ms/request  {1000 / per:8.0f} requests/s")
    return per


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    setup_test_environment()
    old_name = settings.DATABASES["default"]["NAME"]
    connection.creation.create_test_db(verbosity=0)
    try:
        from tests.factories import make_cast

        cast = make_cast()
        client = Client()
        auth = {"HTTP_AUTHORIZATION": f"Bearer {cast.device_token_a}"}
        start = timezone.now() - timedelta(days=2)

        def body(i: int) -> dict:
            return {"measure": "spo2", "value": 90 + (i % 10), "unit": "%",
                    "effective_at": (start + timedelta(seconds=i + 100)).isoformat(), "client_id": f"b{i}"}

        def noop(i: int) -> None:
            r = client.post("/bench/noop", body(i), content_type="application/json", **auth)
            assert r.status_code == 201, (r.status_code, r.content[:300])

        def ingest(i: int) -> None:
            r = client.post("/api/v1/readings", body(i), content_type="application/json", **auth)
            assert r.status_code == 201, r.content

        with override_settings(ROOT_URLCONF="bench.urls"):
            print(f"database: {connection.vendor}, {n} requests each")
            ref = timed("no-op request (same auth stack)", n, noop)
            got = timed("POST /api/v1/readings + rules", n, ingest)
        print(f"ratio ingest / no-op: {got / ref:.2f}x")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
