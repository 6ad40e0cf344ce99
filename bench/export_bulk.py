"""Bulk $export against a raw dump of the same rows, from PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/proplatform \\
        .venv/bin/python bench/export_bulk.py [PATIENTS] [OBSERVATIONS] [RESPONSES] [--identified]

Defaults: 10,000 patients, 1,000,000 Observations (home readings), 100,000 QuestionnaireResponses
(each with one score, which the export also writes as a survey Observation). The rows are made
in the database with generate_series (seconds, not minutes) on a throw-away test database.

export: exports.services.export_job_run, the code the Celery task runs — scope query, COUNTs for
progress, server-side cursors, the pure mappers of interop.mapping, pseudonyms (HMAC-SHA256 per
patient and per resource id; --identified skips them), free-text removal, orjson, one NDJSON file
per type, heartbeats.
raw: the same rows (readings, responses and their scores) through a named server-side cursor,
each row a dict of its columns dumped with the standard library's json — no FHIR shape, no
pseudonyms — into one file per table.

Prints resources/s for both, the ratio, and the peak RSS of the process after each phase
(resource.getrusage; the export runs first, so the first figure is the export's own peak).
"""

import json
import logging
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proplatform.settings")
os.environ.pop("REDIS_URL", None)  # nothing is enqueued: the export runs in this process
os.environ.setdefault("EXPORT_PSEUDONYM_KEY", "benchmark-key")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def generate(n_patients: int, n_observations: int, n_responses: int) -> None:
    from accounts.models import Role, User
    from patients.models import CareTeam, Program, Region
    from questionnaires.library import load
    from questionnaires.services import questionnaire_import

    team = CareTeam.objects.create(name="Bench", department="Lunge", region=Region.MIDTJYLLAND)
    program = Program.objects.create(slug="bench", name="Bench", condition_code="DC34",
                                     condition_display="Lung cancer")
    questionnaire = questionnaire_import(resource=load("hf-daily"))
    User.objects.create_user(username="bench-quality", password="x" * 12, role=Role.QUALITY)  # noqa: S106
    items = json.dumps([
        {"linkId": "breath", "answer": [{"valueCoding": {"system": "urn:bench", "code": "2", "display": "Some"}}]},
        {"linkId": "contact", "answer": [{"valueBoolean": False}]},
        {"linkId": "comment", "answer": [{"valueString": "free text that a pseudonymised export drops"}]}])
    scores = json.dumps([{"code": {"system": "urn:bench", "code": "sum", "display": "Sum"}, "value": 7}])
    with connection.cursor() as c:
        c.execute("""
            CREATE TEMP TABLE bench_p AS
            SELECT g AS n, gen_random_uuid() AS id FROM generate_series(0, %s - 1) g""", [n_patients])
        c.execute("""
            INSERT INTO patients_patient (id, cpr, given_name, family_name, birth_date, sex, phone, created_at,
                                          updated_at)
            SELECT id, lpad((n %% 28 + 1)::text, 2, '0') || lpad((n / 10000 %% 12 + 1)::text, 2, '0') || '50-'
                       || lpad((n %% 10000)::text, 4, '0'),
                   'Given' || n, 'Family' || n, date '1940-01-01' + n %% 10000, 'female', '+45 1234 5678', now(),
                   now()
            FROM bench_p""", [])
        c.execute("""
            INSERT INTO patients_treatmentepisode (patient_id, program_id, care_team_id, condition_code,
                                                   treatment_start, updated_at)
            SELECT id, %s, %s, 'DC34', date '2026-01-01' + n %% 300, now() FROM bench_p""", [program.pk, team.pk])
        c.execute("""
            INSERT INTO monitoring_reading (patient_id, measure, value, unit, unusual, erroneous_reason,
                                            effective_at, received_at, source)
            SELECT p.id, 'spo2', 90 + g %% 10, '%%', false, '', now() - g * interval '1 minute',
                   now() - g * interval '1 minute' + interval '5 seconds', 'device'
            FROM generate_series(0, %s - 1) g JOIN bench_p p ON p.n = g %% %s""",
                  [n_observations, n_patients])
        c.execute("""
            INSERT INTO questionnaires_questionnaireresponse (patient_id, questionnaire_id, status, items, scores,
                                                             current_page, authored_at, received_at,
                                                             updated_at, review_colour)
            SELECT p.id, %s, 'completed', %s::jsonb, %s::jsonb, 0, now() - g * interval '1 hour',
                   now() - g * interval '1 hour', now(), 'green'
            FROM generate_series(0, %s - 1) g JOIN bench_p p ON p.n = g %% %s""",
                  [questionnaire.pk, items, scores, n_responses, n_patients])
        c.execute("ANALYZE")


def raw_dump(directory: Path) -> int:
    """The comparison: the same rows through a named cursor, json.dumps per row."""
    rows = 0
    queries = {
        "reading": "SELECT id, patient_id, device_id, measure, value, value2, unit, erroneous_at, effective_at, "
                   "received_at FROM monitoring_reading ORDER BY id",
        "response": "SELECT id, patient_id, questionnaire_id, status, authored_at, items, scores "
                    "FROM questionnaires_questionnaireresponse WHERE status = 'completed' ORDER BY id",
    }
    connection.ensure_connection()
    pg = connection.connection
    for name, sql in queries.items():
        with pg.transaction(), pg.cursor(name=f"raw_{name}") as cursor, \
                (directory / f"{name}.ndjson").open("w", buffering=1 << 20) as out:
            cursor.itersize = 2000
            cursor.execute(sql)
            columns = None
            for row in cursor:
                if columns is None:
                    columns = [d.name for d in cursor.description]
                out.write(json.dumps(dict(zip(columns, row, strict=True)), default=str))
                out.write("\n")
                rows += 1
                if name == "response":  # its scores, as the export writes them as Observations
                    scores = row[-1]
                    rows += len(json.loads(scores) if isinstance(scores, str) else scores)
    return rows


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n_patients = int(args[0]) if len(args) > 0 else 10_000
    n_observations = int(args[1]) if len(args) > 1 else 1_000_000
    n_responses = int(args[2]) if len(args) > 2 else 100_000
    identified = "--identified" in sys.argv
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL server: the benchmark measures server-side cursors.")
    logging.disable(logging.INFO)
    setup_test_environment()
    old_name = settings.DATABASES["default"]["NAME"]
    connection.creation.create_test_db(verbosity=0)
    try:
        from accounts.models import User
        from exports.models import ExportKind
        from exports.services import export_job_create, export_job_run, export_parameters, job_dir

        started = time.perf_counter()
        generate(n_patients, n_observations, n_responses)
        print(f"generated {n_observations:,} readings + {n_responses:,} responses for {n_patients:,} patients "
              f"in {time.perf_counter() - started:.1f} s; RSS so far {peak_rss_mb():.0f} MB")

        with tempfile.TemporaryDirectory() as tmp:
            settings.EXPORT_ROOT = Path(tmp) / "export"
            user = User.objects.get(username="bench-quality")
            if identified:
                user.role = "admin"
                user.save()
            params = export_parameters(types=["Observation", "QuestionnaireResponse"], since=None,
                                       output_format=None, identified=identified,
                                       purpose="benchmark of the export pipeline" if identified else "",
                                       shift_dates=False)
            job = export_job_create(user=user, kind=ExportKind.SYSTEM, params=params, request_url="bench",
                                    enqueue=False)
            baseline = peak_rss_mb()
            started = time.perf_counter()
            job = export_job_run(job_id=job.pk)
            exported_s = time.perf_counter() - started
            export_peak = peak_rss_mb()
            assert job is not None and job.status == "completed", (job and job.failure)
            exported = sum(f["count"] for f in job.files)
            size = sum((job_dir(job) / f["name"]).stat().st_size for f in job.files)

            raw_dir = Path(tmp) / "raw"
            raw_dir.mkdir()
            started = time.perf_counter()
            raw_rows = raw_dump(raw_dir)
            raw_s = time.perf_counter() - started
            raw_peak = peak_rss_mb()
            raw_size = sum(p.stat().st_size for p in raw_dir.iterdir())

        shape = "identified" if identified else "pseudonymised"
        print(f"export ({shape}) {exported:>10,} resources {exported_s:7.2f} s {exported / exported_s:10,.0f} "
              f"resources/s  {size / 1e6:7.1f} MB NDJSON")
        print(f"raw cursor+json  {raw_rows:>10,} rows      {raw_s:7.2f} s {raw_rows / raw_s:10,.0f} rows/s"
              f"       {raw_size / 1e6:7.1f} MB")
        print(f"ratio export/raw: {exported_s / raw_s:.2f}x (target <= 2x)")
        print(f"peak RSS: {baseline:.0f} MB before the export, {export_peak:.0f} MB after it "
              f"(target < 150 MB), {raw_peak:.0f} MB after the raw dump")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
