"""OMOP CDM export against a raw COPY of the same rows into the same tables, on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/proplatform_h25 BENCH_DB=proplatform_h25_bench \\
        .venv/bin/python bench/export_omop.py [PATIENTS] [READINGS] [RESPONSES] [--work-mem=4MB] \\
        [--keep] [--reuse] [--seed-only] [--skip-keys-on]

--keep leaves the bench database (BENCH_DB, default test_<name>) in place after the run; --reuse runs
against a database a --keep run left (no generating again: the full scale takes many minutes to
seed on this machine). --seed-only generates and keeps it. Without --keep the database is dropped at the end.

Defaults are 1/10 of the target (100,000 patients, 10 M readings, 1 M responses): 10,000
patients, 1,000,000 readings (one in five a blood pressure, i.e. two measurement rows), 100,000
PHQ-9 responses (ten coded answers, a yes/no and a score: 13 observation rows each). The source
rows are made inside the database with INSERT … SELECT generate_series on a throw-away test
database (the same server-side bulk path as COPY, without shipping the bytes through Python).

export: exports.omop.export.omop_export into a new schema made from the official DDL (primary
keys, foreign keys and indices on), checks included — what manage.py export_omop runs.
raw COPY: the export's own output, dumped with COPY TO beforehand (not timed), then the six
filled tables truncated and the rows loaded again with COPY FROM STDIN, table by table, into
the same tables, three ways: (1) the big tables' foreign keys, primary keys and indices dropped and
built again after the COPY — the same tricks the export's full run uses, the strictest
reference; (2) only their foreign keys dropped and added back; (3) with every key and index on
as the DDL makes them (skipped with --skip-keys-on: ~20 min at the full scale here).

Prints the export's time, rows, steps, RSS (at the start, after each step, and the process's peak
before and after), then each reference as it finishes with the ratio export/COPY (target ≤ 2×).
The work is SQL inside PostgreSQL; Python holds one small row per person.
"""

import logging
import os
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proplatform.settings")
os.environ.pop("REDIS_URL", None)
os.environ.setdefault("EXPORT_PSEUDONYM_KEY", "benchmark-key")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

SCHEMA = "omop_bench"
TABLES = ("person", "observation_period", "condition_occurrence", "episode", "measurement", "observation")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """The process's resident set now (Linux), to show memory over the export, not just its peak."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def generate(n_patients: int, n_readings: int, n_responses: int) -> None:
    import orjson

    from patients.models import CareTeam, Program, Region
    from questionnaires.library import load, load_scoring
    from questionnaires.scoring import score_response
    from questionnaires.services import questionnaire_import

    team = CareTeam.objects.create(name="Bench", department="Lunge", region=Region.MIDTJYLLAND)
    program = Program.objects.create(slug="bench", name="Bench", condition_code="DC34",
                                     condition_display="Lung cancer")
    # The programme's limits become the measurements' ranges (ADR 0019): a SpO2 threshold and
    # blood pressure bands, as a COPD/heart programme has them.
    from alerts.models import Rule, Severity

    Rule.objects.create(program=program, kind="threshold", name="SpO2", severity=Severity.RED,
                        params={"measure": "spo2", "low": 92})
    Rule.objects.create(program=program, kind="bands", name="Blood pressure", severity=Severity.RED,
                        params={"measure": "blood-pressure",
                                "bands": {"alert_low": 80, "warning_low": 90, "warning_high": 140, "alert_high": 180},
                                "bands2": {"warning_high": 90, "alert_high": 110}})
    phq9 = questionnaire_import(resource=load("phq-9"))
    phq9.scoring = load_scoring("phq-9")
    phq9.save()
    answers = ["LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9"]
    group = [{"linkId": f"phq9-{i}", "answer": [{"valueCoding": {"system": "http://loinc.org",
                                                                 "code": answers[i % 4]}}]} for i in range(1, 10)]
    group.append({"linkId": "phq9-difficulty",
                  "answer": [{"valueCoding": {"system": "http://loinc.org", "code": "LA6573-5"}}]})
    items = [{"linkId": "phq9", "item": group}, {"linkId": "contact", "answer": [{"valueBoolean": False}]}]
    scores = score_response(questionnaire=phq9, items=items)
    with connection.cursor() as c:
        c.execute("CREATE TEMP TABLE bench_p AS SELECT g AS n, gen_random_uuid() AS id "
                  "FROM generate_series(0, %s - 1) g", [n_patients])
        c.execute("""
            INSERT INTO patients_patient (id, cpr, given_name, family_name, birth_date, sex, phone, created_at,
                                          updated_at)
            SELECT id, lpad((n %% 28 + 1)::text, 2, '0') || lpad((n / 10000 %% 12 + 1)::text, 2, '0') || '50-'
                       || lpad((n %% 10000)::text, 4, '0'),
                   'Given' || n, 'Family' || n, date '1940-01-01' + n %% 10000,
                   CASE WHEN n %% 2 = 0 THEN 'female' ELSE 'male' END, '', timestamptz '2026-01-01 08:00+00',
                   timestamptz '2026-01-01 08:00+00'
            FROM bench_p""", [])
        c.execute("""
            INSERT INTO patients_treatmentepisode (patient_id, program_id, care_team_id, condition_code,
                                                   treatment_start, updated_at)
            SELECT id, %s, %s, 'DC341', date '2026-01-01' + n %% 300, timestamptz '2026-01-01 08:00+00'
            FROM bench_p""", [program.pk, team.pk])
        c.execute("""
            INSERT INTO monitoring_reading (patient_id, measure, value, value2, unit, unusual, erroneous_reason,
                                            effective_at, received_at, source)
            SELECT p.id, CASE WHEN g %% 5 = 0 THEN 'blood-pressure' ELSE 'spo2' END,
                   CASE WHEN g %% 5 = 0 THEN 120 + g %% 30 ELSE 90 + g %% 10 END,
                   CASE WHEN g %% 5 = 0 THEN 70 + g %% 20 END,
                   CASE WHEN g %% 5 = 0 THEN 'mm[Hg]' ELSE '%%' END, false, '',
                   timestamptz '2026-11-30 12:00+00' - g * interval '20 seconds',
                   timestamptz '2026-11-30 12:00+00' - g * interval '20 seconds' + interval '5 seconds', 'device'
            FROM generate_series(0, %s - 1) g JOIN bench_p p ON p.n = g %% %s""", [n_readings, n_patients])
        c.execute("""
            INSERT INTO questionnaires_questionnaireresponse (patient_id, questionnaire_id, status, items, scores,
                current_page, authored_at, received_at, updated_at, review_colour)
            SELECT p.id, %s, 'completed', %s::jsonb, %s::jsonb, 0,
                   timestamptz '2026-11-30 12:00+00' - g * interval '3 minutes',
                   timestamptz '2026-11-30 12:00+00' - g * interval '3 minutes',
                   timestamptz '2026-11-30 12:00+00' - g * interval '3 minutes', ''
            FROM generate_series(0, %s - 1) g JOIN bench_p p ON p.n = g %% %s""",
                  [phq9.pk, orjson.dumps(items).decode(), orjson.dumps(scores, default=str).decode(),
                   n_responses, n_patients])
        c.execute("ANALYZE")


def raw_copy(directory: Path, *, drop: str, maintenance_work_mem: str) -> tuple[float, int]:
    """Dump the export's rows (untimed), empty the tables, COPY them back in (timed). ``drop``:
    "nothing" (the keys and indices as the DDL makes them), "foreign keys" (the big tables'
    foreign keys dropped and added back around the COPY) or "foreign keys and indices" (also
    their primary keys and secondary indices dropped and built again: the same tricks the
    export's full run uses)."""
    pg = connection.connection
    for table in TABLES:
        with pg.cursor() as cur, (directory / table).open("wb") as out, \
                cur.copy(f"COPY {SCHEMA}.{table} TO STDOUT") as copy:
            for chunk in copy:
                out.write(chunk)
    with pg.cursor() as cur:
        cur.execute(f"TRUNCATE {', '.join(f'{SCHEMA}.{t}' for t in TABLES)} CASCADE")  # the rest are empty
        cur.execute("CHECKPOINT")
    pg.commit()
    rows = 0
    big = [f"{SCHEMA}.measurement", f"{SCHEMA}.observation"]
    started = time.perf_counter()
    with pg.transaction(), pg.cursor() as cur:
        cur.execute(f"SET LOCAL maintenance_work_mem = '{maintenance_work_mem}'")  # as the export has it
        keys, indexes = [], []
        if drop != "nothing":
            cur.execute("SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                        "WHERE contype = 'f' AND conrelid::regclass::text = ANY(%s)", [big])
            keys = cur.fetchall()
            for table, name, _ in keys:
                cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        if drop == "foreign keys and indices":
            cur.execute("SELECT x.indrelid::regclass::text, coalesce(c.conname, x.indexrelid::regclass::text), "
                        "coalesce(pg_get_constraintdef(c.oid), pg_get_indexdef(x.indexrelid)), x.indisclustered "
                        "FROM pg_index x LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.contype = 'p' "
                        "WHERE x.indrelid::regclass::text = ANY(%s) ORDER BY 1, c.conname IS NULL, 2", [big])
            indexes = cur.fetchall()
            for table, name, definition, _clustered in indexes:
                if definition.startswith("PRIMARY KEY"):
                    cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
                else:
                    cur.execute(f"DROP INDEX {name}")
        for table in TABLES:
            with (directory / table).open("rb") as src, cur.copy(f"COPY {SCHEMA}.{table} FROM STDIN") as copy:
                while chunk := src.read(1 << 20):
                    copy.write(chunk)
            rows += cur.rowcount
        for table, name, definition, clustered in indexes:
            if definition.startswith("PRIMARY KEY"):
                cur.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
                continue
            cur.execute(definition)
            if clustered:
                cur.execute(f"ALTER TABLE {table} CLUSTER ON {name.split('.')[-1]}")
        for table, name, definition in keys:
            cur.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    return time.perf_counter() - started, rows


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n_patients = int(args[0]) if len(args) > 0 else 10_000
    n_readings = int(args[1]) if len(args) > 1 else 1_000_000
    n_responses = int(args[2]) if len(args) > 2 else 100_000
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL server: the OMOP export is PostgreSQL-only.")
    seed_only = "--seed-only" in sys.argv
    keep, reuse = "--keep" in sys.argv or seed_only, "--reuse" in sys.argv
    logging.disable(logging.INFO)
    setup_test_environment()
    old_name = settings.DATABASES["default"]["NAME"]
    if os.environ.get("BENCH_DB"):
        settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = os.environ["BENCH_DB"]
    connection.creation.create_test_db(verbosity=0, keepdb=reuse, serialize=False)  # no copy of the data in memory
    try:
        from exports.omop import export as export_module
        from exports.omop.export import omop_export

        for a in sys.argv[1:]:  # --work-mem=4MB: the export as it was before it set its own
            if a.startswith("--work-mem="):
                export_module.WORK_MEM = a.split("=", 1)[1]
        print(f"export work_mem {export_module.WORK_MEM}")

        started = time.perf_counter()
        if reuse:
            with connection.cursor() as c:
                c.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
                c.execute("SELECT count(*) FROM monitoring_reading")
                n_readings = c.fetchone()[0]
                c.execute("SELECT count(*) FROM questionnaires_questionnaireresponse")
                n_responses = c.fetchone()[0]
                c.execute("SELECT count(*) FROM patients_patient")
                n_patients = c.fetchone()[0]
            print(f"reusing {settings.DATABASES['default']['NAME']}: {n_readings:,} readings + "
                  f"{n_responses:,} responses for {n_patients:,} patients")
        else:
            generate(n_patients, n_readings, n_responses)
            print(f"generated {n_readings:,} readings + {n_responses:,} responses for {n_patients:,} patients "
                  f"in {time.perf_counter() - started:.1f} s")
            if seed_only:
                return
        with connection.cursor() as c:
            c.execute("CHECKPOINT")
        before = peak_rss_mb()
        started = time.perf_counter()
        steps: list[tuple[str, float]] = []
        rss: list[tuple[str, float]] = [("start", rss_mb())]

        def progress(step: str, _percent: int) -> None:
            steps.append((step, time.perf_counter()))
            rss.append((step, rss_mb()))

        result = omop_export(schema=SCHEMA, release_date=date(2026, 12, 7), progress=progress)
        export_s = time.perf_counter() - started
        after = peak_rss_mb()
        assert all(c["ok"] for c in result["checks"]), result["checks"]
        exported = sum(result["tables"][t] for t in TABLES)
        print("rows: " + ", ".join(f"{t} {result['tables'][t]:,}" for t in TABLES))
        print(f"export (schema from DDL, all tables, checks) {exported:>10,} rows {export_s:7.2f} s")
        pairs = zip(steps, steps[1:], strict=False)
        print("export steps (s): " + ", ".join(f"{a} {t2 - t1:.2f}" for (a, t1), (_, t2) in pairs))
        print(f"peak RSS: {before:.0f} MB before the export, {after:.0f} MB after it")
        print("RSS during the export (MB): " + ", ".join(f"{step} {mb:.0f}" for step, mb in rss))
        references = ["foreign keys and indices", "foreign keys"]
        if "--skip-keys-on" not in sys.argv:  # the slowest reference: ~20 min at the full scale here
            references.append("nothing")
        with tempfile.TemporaryDirectory() as tmp:
            for drop in references:
                copy_s, copied = raw_copy(Path(tmp), drop=drop,
                                          maintenance_work_mem=export_module.MAINTENANCE_WORK_MEM)
                assert copied == exported, (copied, exported)
                label = {"nothing": "keys on", "foreign keys": "foreign keys re-added",
                         "foreign keys and indices": "all keys and indices re-added"}[drop]
                print(f"raw COPY of the same rows into the same tables, {label}: {copied:,} rows {copy_s:.2f} s "
                      f"-> export/COPY {export_s / copy_s:.2f}x (target <= 2x)", flush=True)
    finally:
        connection.close()
        if keep:
            print(f"kept {settings.DATABASES['default']['NAME']} (drop it when done)")
        else:
            connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
