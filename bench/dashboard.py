"""Indicator pages against one raw SQL query of the same aggregate, on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/proplatform \\
        .venv/bin/python bench/dashboard.py [PATIENTS] [READINGS_PER_PATIENT]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/proplatform_bench \
        .venv/bin/python bench/dashboard.py --seeded   # a database seed_outcomes already filled

Seeds a throw-away test database with ``manage.py seed_outcomes`` (COPY) — or, with ``--seeded``,
uses the database as it is (the 100,000-patient set takes ~15 minutes to seed) — then measures:

- full refresh: outcomes.services.indicator_cells_refresh for every indicator (what the Celery
  beat task runs), with the seconds of each step;
- page, precomputed: GET of an indicator page through Django's test client as quality staff,
  warm (two requests first), N times: p50 and p95 — the first request sums the precomputed cells
  and suppresses the drill-down tree and the breakdowns, and keeps that view for this refresh,
  filters and position (outcomes.dashboard.view_cache_key); its time is printed as "first
  request", and the warm ones read the kept view (unless ``--no-view-cache``);
- page, live: the same page with a period not in whole months, which computes from the rows;
- reference: one raw SQL query of the same aggregate (response rate at 3 months per team:
  episodes whose window has closed and those with a completed response in it) — the database's
  own floor for this figure, without suppression, tables or HTML.

Prints the figures and the ratio page p95 / reference p95.

Options: ``--skip-refresh`` (the cells of an earlier run), ``--refresh-twice`` (the second run
is the steady state: the reading days kept since the first), ``--rebuild-reading-days`` (time
what the first refresh after the migration does: every reading read once), ``--no-view-cache``
(every page request sums and suppresses its figures again: the cost of a view not yet kept),
``--no-live``.
"""

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proplatform.settings")
os.environ.pop("REDIS_URL", None)

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

RUNS = 20
PAGES = ["response-rate-3m", "prom-change-phq-9-6m", "alert-rate-all", "red-ack-hours", "reading-adherence"]

REFERENCE_SQL = """
SELECT e.care_team_id,
       COUNT(*) FILTER (WHERE e.treatment_start + 121 < CURRENT_DATE) AS expected,
       COUNT(*) FILTER (WHERE e.treatment_start + 121 < CURRENT_DATE AND EXISTS (
           SELECT 1 FROM questionnaires_questionnaireresponse r
           WHERE r.patient_id = e.patient_id AND r.status = 'completed'
             AND (r.authored_at AT TIME ZONE 'Europe/Copenhagen')::date - e.treatment_start BETWEEN 61 AND 121
       )) AS responded
FROM patients_treatmentepisode e JOIN patients_patient p ON p.id = e.patient_id
WHERE p.secondary_use_withdrawn_at IS NULL AND e.treatment_start <= CURRENT_DATE
GROUP BY e.care_team_id
"""


CPU: list[float] = []


def timed(fn, runs: int = RUNS) -> list[float]:
    """Wall-clock ms per call; the process's own CPU ms per call go to CPU (the machine is shared:
    wall time includes waiting for other sessions' work, CPU time does not)."""
    out = []
    CPU.clear()
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        fn()
        out.append((time.perf_counter() - t) * 1000)
        CPU.append((time.process_time() - c) * 1000)
    return out


def now() -> str:
    """UTC time and the load average: the machine is shared, every figure goes with them."""
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return f"[{time.strftime('%H:%M:%S', time.gmtime())} UTC, load {load}]"


def p95(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=20, method="inclusive")[18]


def main() -> None:
    seeded = "--seeded" in sys.argv
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    patients = int(args[0]) if args else 2000
    readings = int(args[1]) if len(args) > 1 else 100
    if connection.vendor != "postgresql":
        sys.exit("Run against PostgreSQL: DATABASE_URL=postgres://...")
    setup_test_environment()
    settings.ALLOWED_HOSTS = ["*"]
    # As the tests do: plain HTTP, static files as they are, staff logged in without two-factor.
    settings.SECURE_SSL_REDIRECT = False
    settings.REQUIRE_STAFF_TWO_FACTOR = False
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    old = None if seeded else connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        if not seeded:
            t = time.perf_counter()
            call_command("seed_outcomes", patients=patients, readings_per_patient=readings,
                         confirmed=True, stdout=sys.stderr)
            print(f"seed: {patients} patients in {time.perf_counter() - t:.1f} s")
        with connection.cursor() as c:
            for table in ("patients_patient", "questionnaires_questionnaireresponse", "monitoring_reading",
                          "alerts_alert"):
                c.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 (the code's own names)
                print(f"{table}: {c.fetchone()[0]:,} rows")
        with connection.cursor() as c:
            c.execute("ANALYZE")

        from django.test import Client

        from accounts.models import Role, User
        from outcomes.services import indicator_cells_refresh

        if "--skip-refresh" in sys.argv:  # the cells of an earlier run are still there
            from outcomes.models import IndicatorRefresh
            cells = dict(IndicatorRefresh.objects.values_list("indicator", "cells"))
        else:
            if "--rebuild-reading-days" in sys.argv:  # what the first refresh after the migration does
                from outcomes.reading_days import reading_days_rebuild

                print(f"{now()} reading days: rebuild from every reading")
                t = time.perf_counter()
                built = reading_days_rebuild()
                print(f"{now()} reading days rebuilt: {built.days_added:,} days from readings up to id "
                      f"{built.scanned_to:,} in {time.perf_counter() - t:.1f} s")
            for attempt in range(2 if "--refresh-twice" in sys.argv else 1):
                print(f"{now()} refresh starts")
                t = time.perf_counter()
                steps: dict[str, float] = {}
                cells = indicator_cells_refresh(timings=steps)
                print(f"{now()} full refresh{' (again)' if attempt else ''} ({len(cells)} indicators, "
                      f"{sum(cells.values())} cells): {time.perf_counter() - t:.1f} s; per step:")
                for step, seconds in sorted(steps.items(), key=lambda kv: -kv[1]):
                    print(f"    {step:48s} {seconds:6.2f} s")
        if "--no-view-cache" in sys.argv:
            settings.OUTCOMES_VIEW_CACHE_SECONDS = 0
        cache.clear()

        User.objects.get_or_create(username="bench-quality", defaults={"role": Role.QUALITY})
        client = Client()
        client.force_login(User.objects.get(username="bench-quality"))

        def sql() -> None:
            with connection.cursor() as c:
                c.execute(REFERENCE_SQL)
                c.fetchall()

        print(f"{now()} pages (view cache {'off' if '--no-view-cache' in sys.argv else 'on'})")
        sql()
        ref = timed(sql)
        print(f"reference SQL (response rate at 3 months per team): p50 {statistics.median(ref):.0f} ms, "
              f"p95 {p95(ref):.0f} ms")
        for code in PAGES:
            live = ("?start_from=2025-01-03",) if code != "reading-adherence" or "--all-live" in sys.argv else ()
            live = () if "--no-live" in sys.argv else live
            for query in ("", "?region=1082", *live):
                url = f"/quality/indicators/{code}/{query}"
                runs = RUNS if "start_from" not in query else 3
                for k in range(2):
                    t = time.perf_counter()
                    answer = client.get(url)
                    if k == 0:
                        first = (time.perf_counter() - t) * 1000
                    assert answer.status_code == 200, (url, answer.status_code)
                xs = timed(lambda url=url: client.get(url), runs)
                kind = "live" if "start_from" in query else "precomputed"
                line = (f"{code}{query or ''} ({kind}): p50 {statistics.median(xs):.0f} ms, "
                        f"p95 {p95(xs) if len(xs) >= 20 else max(xs):.0f} ms")
                line += f", Python CPU p50 {statistics.median(CPU):.0f} ms, first request {first:.0f} ms"
                if kind == "precomputed":
                    line += f", ratio to SQL p95 {p95(xs) / p95(ref):.2f}"
                print(line)
        t = time.perf_counter()
        client.get("/quality/indicators/")
        first = (time.perf_counter() - t) * 1000
        home = timed(lambda: client.get("/quality/indicators/"), RUNS)
        print(f"front page ({len(cells)} indicators, precomputed): p50 {statistics.median(home):.0f} ms, "
              f"p95 {p95(home):.0f} ms, Python CPU p50 {statistics.median(CPU):.0f} ms, first request {first:.0f} ms")
        from patients.models import Program

        programme = f"/quality/indicators/?program={Program.objects.order_by('pk').values_list('pk', flat=True)[0]}"

        def first_request(url: str) -> float:
            t = time.perf_counter()
            assert client.get(url).status_code == 200, url
            return (time.perf_counter() - t) * 1000

        print(f"front page filtered to a programme, first request: {first_request(programme):.0f} ms")
        ref = timed(sql)
        print(f"reference SQL again: p50 {statistics.median(ref):.0f} ms, p95 {p95(ref):.0f} ms")
        if "--no-view-cache" not in sys.argv:
            from outcomes.services import indicator_views_warm

            cache.clear()
            t = time.perf_counter()
            made = indicator_views_warm()
            print(f"{now()} views made ahead after a refresh (the Celery task's second step): {made} in "
                  f"{time.perf_counter() - t:.1f} s")
            print(f"after that: the front page {first_request('/quality/indicators/'):.0f} ms, filtered to a "
                  f"programme {first_request(programme):.0f} ms (first requests)")
        print(f"{now()} done")
    finally:
        if old is not None:
            connection.creation.destroy_test_db(old, verbosity=0)


if __name__ == "__main__":
    main()
