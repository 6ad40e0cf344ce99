"""The patient's questionnaire form: page render and submission latency (p50/p95), beside a
no-op request through the same middleware in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/proplatform .venv/bin/python bench/questionnaire_form.py [N]

Uses PHQ-9 (two pages + review, scored) on a throw-away test database. Tasks run in-process,
so "submit" includes scoring, the occurrence lookup and rule evaluation after commit.
Targets (issue #3): render p95 <= 100 ms, submit p95 <= 150 ms.
"""

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proplatform.settings")
os.environ["HTTPS_ONLY"] = "0"  # the test client speaks plain HTTP
os.environ["MANIFEST_STATIC"] = "0"  # pages render without collectstatic
os.environ.pop("REDIS_URL", None)

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings, setup_test_environment  # noqa: E402


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def report(label: str, samples: list[float], reference: float | None = None) -> float:
    p50, p95 = percentiles(samples)
    ratio = f"  p50 = {p50 / reference:5.1f}x no-op" if reference else ""
    print(f"{label:<40} p50 {p50:7.2f} ms   p95 {p95:7.2f} ms{ratio}")
    return p50


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    setup_test_environment()
    old_name = settings.DATABASES["default"]["NAME"]
    connection.creation.create_test_db(verbosity=0)
    try:
        from questionnaires.library import load, load_scoring
        from questionnaires.models import Questionnaire
        from questionnaires.services import questionnaire_import
        from tests.factories import make_cast

        cast = make_cast()
        phq9 = questionnaire_import(resource=load("phq-9"))
        Questionnaire.objects.filter(pk=phq9.pk).update(scoring=load_scoring("phq-9"))
        cast.program_a.questionnaires.add(phq9)
        client = Client()
        client.force_login(cast.patient_a.user)
        base = f"/me/questionnaires/{phq9.pk}"
        page1 = {f"q-phq9-{i}": "LA6569-3" for i in range(1, 10)} | {"action": "next"}
        page2 = {"q-phq9-difficulty": "LA6572-7", "q-contact": "false", "action": "next"}
        noop, render, save, submit = [], [], [], []

        def timed(bucket: list[float], call):  # type: ignore[no-untyped-def]
            started = time.perf_counter()
            response = call()
            bucket.append((time.perf_counter() - started) * 1000)
            return response

        with override_settings(ROOT_URLCONF="bench.urls"):
            for i in range(n + 20):  # the first 20 warm up
                keep = i >= 20
                timed(noop if keep else [], lambda: client.post("/bench/noop"))
                r = timed(render if keep else [], lambda: client.get(f"{base}/page/1/"))
                assert r.status_code == 200, r.status_code
                r = timed(save if keep else [], lambda: client.post(f"{base}/page/1/", page1))
                assert r.status_code == 302, r.content[:500]
                assert client.post(f"{base}/page/2/", page2).status_code == 302
                r = timed(submit if keep else [], lambda: client.post(f"{base}/review/", {"identifier": ""}))
                assert r.status_code == 302 and "thanks" in r["Location"], r.status_code
        print(f"database: {connection.vendor}; {n} iterations; PHQ-9 (2 pages + review)")
        ref = report("no-op request (same middleware)", noop)
        report("render page 1 (GET)", render, ref)
        report("save page 1 (POST, draft)", save, ref)
        report("submit (POST review: validate, score, store)", submit, ref)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
