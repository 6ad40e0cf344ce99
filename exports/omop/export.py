"""The OMOP CDM 5.4 export (issue 25, ADR 0019).

Everything runs in one transaction, in SQL inside PostgreSQL (INSERT … SELECT from the source
tables, in the source rows' order: no sort of a big table), so memory stays flat whatever the size; Python only computes
the keyed pseudonyms of the persons and streams them in with COPY. A failed check rolls the whole
run back: the schema is either the previous export or the new one, never half of each.

Ids are stable per source row, so a re-run replaces rows instead of adding them:
  person_id               exports.OmopPerson (assigned once per patient)
  condition_occurrence_id, episode_id   the treatment episode's id
  measurement_id          reading id × 2 (+1 for the diastolic half of a blood pressure)
  observation_id          response id × 128 + the row's place in the response (0 = the response)
  observation_period_id   person_id
The CDM's ids are 32-bit integers; ids that would not fit are refused with the reason.
"""


from collections.abc import Callable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, connection, transaction
from django.db.backends.utils import CursorWrapper

from exports.models import OmopPerson
from exports.omop import concepts
from exports.omop.checks import export_checks
from exports.omop.items import LOINC, code_map, item_map
from exports.omop.limits import programme_ranges
from exports.omop.schema import OmopError, schema_ensure, schema_validate
from exports.privacy import Pseudonymiser, pseudonym_key
from monitoring.measures import MEASURES
from monitoring.models import Reading
from patients.models import Patient, TreatmentEpisode
from questionnaires.models import QuestionnaireResponse, ResponseStatus

if TYPE_CHECKING:
    from outcomes.models import Cohort

TIME_ZONE = "Europe/Copenhagen"  # CDM dates and datetimes are local wall-clock time
SLOTS = 128  # observation rows per response (the response, its answers, its scores)
MAX_INT = 2**31 - 1
CHUNK = 5000  # persons per round trip when their pseudonyms are computed
EVENT_TABLES = ("measurement", "observation", "condition_occurrence", "episode", "observation_period")
LIMITS = "programme limits"  # the metadata row with the fingerprint of the ranges' sources
WORK_MEM = "128MB"
MAINTENANCE_WORK_MEM = "256MB"  # the index builds after a full load: one sort per index in memory

Progress = Callable[[str, int], None]  # (step, percent)


def _local(column: str) -> str:
    return f"({column} AT TIME ZONE '{TIME_ZONE}')"


def _wall(column: str) -> str:
    """The same wall-clock time as _local, for the big inserts, which run with the session's
    time zone set to TIME_ZONE (_Run.local_time_zone): a cast converts with the zone already
    loaded, where AT TIME ZONE '…' looks its name up again for every row (18 % of the
    measurement step's CPU, measured with perf at 1/10 scale)."""
    return f"({column})::timestamp"


def omop_export(*, schema: str, since: datetime | None = None, cohort_id: int | None = None,
                release_date: date, progress: Progress | None = None) -> dict[str, Any]:
    """Export into ``schema`` (created from the official DDL when missing). Returns the result
    (counts per table, checks); raises OmopError for bad input and OmopCheckFailed, with the
    result, when a check fails — in both cases nothing of this run is kept."""
    postgres_required()
    schema_validate(schema)
    if since is not None and since.tzinfo is None:
        raise OmopError("--since needs a time zone, e.g. 2026-01-01T00:00:00Z.")
    cohort = cohort_resolve(cohort_id)
    key = pseudonym_key()
    step = progress or (lambda _s, _p: None)
    with transaction.atomic(), connection.cursor() as cursor:
        # One batch session: sorts (the ordered inserts, the window over each response's rows)
        # and the joins that re-check the foreign keys run in memory instead of spilling to disk.
        cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
        cursor.execute(f"SET LOCAL maintenance_work_mem = '{MAINTENANCE_WORK_MEM}'")
        # The planner's row guesses for the JSON functions are high, so it JIT-compiles the
        # observation insert: ~2 s of compiling (measured, 1,000-patient bench) for a query that
        # then runs no faster. Off for this transaction only.
        cursor.execute("SET LOCAL jit = off")
        step("schema", 2)
        created = schema_ensure(cursor, schema)
        run = _Run(cursor, schema, since)
        step("persons", 10)
        run.scope(cohort, key)
        run.remove_outside_scope()
        run.person()
        step("episodes", 20)
        run.conditions_and_episodes()
        step("measurements", 30)
        keys = run.foreign_keys_drop(("measurement", "observation"))  # added back below, same transaction
        indexes = run.indexes_drop(("measurement", "observation")) if since is None else []
        zone = run.local_time_zone()
        run.measurement()
        step("observations", 55)
        run.observation()
        run.local_time_zone(zone)
        step("indices and foreign keys", 75)
        run.indexes_add(indexes)
        run.foreign_keys_add(keys)
        step("observation periods", 85)
        run.observation_period()
        run.source_and_metadata(release_date=release_date, cohort_id=cohort_id)
        step("checks", 90)
        counts, checks = export_checks(run, slots=SLOTS)
        result: dict[str, Any] = {"schema": schema, "created": created, "since": since.isoformat() if since else None,
                  "cohort": cohort_id, "tables": counts, "checks": checks}
        if not all(c["ok"] for c in result["checks"]):
            raise OmopCheckFailed(result)
    step("done", 100)
    return result


def postgres_required() -> None:
    if connection.vendor != "postgresql":
        raise OmopError("The OMOP export writes into a PostgreSQL schema; this installation runs on "
                        f"{connection.vendor}. Run it against the production (PostgreSQL) database.")


class OmopCheckFailed(Exception):
    def __init__(self, result: dict[str, Any]) -> None:
        failed = [c["name"] for c in result["checks"] if not c["ok"]]
        super().__init__(f"Checks failed: {', '.join(failed)}; nothing of this export was kept.")
        self.result = result


def cohort_resolve(cohort_id: int | None) -> Any:
    if cohort_id is None:
        return None
    from outcomes.models import Cohort  # outcomes sits beside exports; imported late as selectors.py does

    cohort = Cohort.objects.filter(pk=cohort_id).first()
    if cohort is None:
        raise OmopError(f"There is no cohort {cohort_id}.")
    return cohort


class _Run:
    def __init__(self, cursor: CursorWrapper, schema: str, since: datetime | None) -> None:
        self.c = cursor
        self.name = schema
        self.s = f'"{schema}"'
        self.since = since
        self.limits = ""  # the fingerprint of the programme limits (programme_limits)
        # Temporary tables go at commit; dropped here too, for a second run in one transaction.
        self.x("DROP TABLE IF EXISTS _scope, _measure, _range, _span")

    def x(self, sql: str, params: Any = None) -> None:
        self.c.execute(sql, params)

    def scalar(self, sql: str, params: Any = None) -> Any:
        self.c.execute(sql, params)
        return self.c.fetchone()[0]

    def rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        self.c.execute(sql, params)
        return list(self.c.fetchall())

    def local_time_zone(self, zone: str = TIME_ZONE) -> str:
        """Sets the session's time zone for the rest of the transaction (_wall) and returns the
        one it replaces, to be put back with this call: nothing else runs under it. A failed
        run rolls the setting back with everything else."""
        old = str(self.scalar("SELECT current_setting('TimeZone')"))
        self.x("SELECT set_config('TimeZone', %s, true)", [zone])
        return old

    def foreign_keys_drop(self, tables: tuple[str, ...]) -> list[tuple[str, str, str]]:
        """The big tables' foreign keys are dropped and added back (foreign_keys_add) in this
        transaction: a foreign key checks each inserted row with a trigger (ten keys per
        measurement row, most of the cost), adding it back checks all rows with one join. Nobody
        sees the tables without them (DDL is transactional in PostgreSQL), and a row that breaks
        one fails the export."""
        self.x("SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
               "WHERE contype = 'f' AND connamespace = %s::regnamespace AND conrelid::regclass::text = ANY(%s) "
               "ORDER BY 1, 2", [self.s, [f"{self.name}.{t}" for t in tables]])
        keys = self.c.fetchall()
        for table, name, _definition in keys:
            self.x(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        return keys

    def foreign_keys_add(self, keys: list[tuple[str, str, str]]) -> None:
        for table, name, definition in keys:
            self.x(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')

    def indexes_drop(self, tables: tuple[str, ...]) -> list[tuple[str, str, str, bool]]:
        """A full run empties the big tables and fills them again; their primary keys and
        secondary indices (the DDL's person, concept and visit indices) are dropped first and built
        again afterwards (indexes_add), one sort each instead of a b-tree insert per row: the load
        order of OHDSI's own ETLs (ETL-Synthea loads the event tables, then creates the indices)
        and of PostgreSQL's "Populating a Database". No foreign key points at these two tables.
        An incremental run keeps them: it touches few rows, and finds them by primary key."""
        self.x("SELECT t.relname, coalesce(c.conname, i.relname), "
               "coalesce(pg_get_constraintdef(c.oid), pg_get_indexdef(x.indexrelid)), x.indisclustered "
               "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
               "LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.contype = 'p' "
               "WHERE t.relnamespace = %s::regnamespace AND t.relname = ANY(%s) "
               "ORDER BY 1, c.conname IS NULL, 2", [self.s, list(tables)])  # primary keys first
        indexes = self.c.fetchall()
        for table, name, definition, _clustered in indexes:
            if definition.startswith("PRIMARY KEY"):
                self.x(f'ALTER TABLE {self.s}."{table}" DROP CONSTRAINT "{name}"')
            else:
                self.x(f'DROP INDEX {self.s}."{name}"')
        return indexes

    def indexes_add(self, indexes: list[tuple[str, str, str, bool]]) -> None:
        for table, name, definition, clustered in indexes:
            if definition.startswith("PRIMARY KEY"):
                # A duplicate id (a bug) fails here, and with it the whole export.
                self.x(f'ALTER TABLE {self.s}."{table}" ADD CONSTRAINT "{name}" {definition}')
                continue
            self.x(definition)
            if clustered:  # the DDL's CLUSTER … USING marks the person index; the mark goes with a drop
                self.x(f'ALTER TABLE {self.s}."{table}" CLUSTER ON "{name}"')

    # --- persons -------------------------------------------------------------------------

    def scope(self, cohort: "Cohort | None", key: bytes) -> None:
        """_scope: the patients this export holds — with an episode, not withdrawn from secondary
        use, in the cohort if one is given — with their person_id and pseudonym."""
        patients = Patient.objects.filter(secondary_use_withdrawn_at__isnull=True,
                                          pk__in=TreatmentEpisode.objects.values("patient_id"))
        if cohort is not None:
            from outcomes.selectors import cohort_patient_ids_query

            patients = patients.filter(pk__in=cohort_patient_ids_query(cohort=cohort))
        scope_sql, scope_params = patients.values("id").query.sql_with_params()
        person = OmopPerson._meta.db_table
        # New patients get their person_id in the order of their random id (reveals nothing).
        self.x(f"INSERT INTO {person} (patient_id) SELECT s.id FROM ({scope_sql}) s "
               f"WHERE NOT EXISTS (SELECT 1 FROM {person} o WHERE o.patient_id = s.id) ORDER BY s.id",
               scope_params)
        if self.scalar(f"SELECT coalesce(max(id), 0) FROM {person}") > MAX_INT:
            raise OmopError("More persons than OMOP's 32-bit person_id holds.")
        self.x("CREATE TEMP TABLE _scope (patient_id uuid PRIMARY KEY, person_id integer UNIQUE NOT NULL, "
               "pseudonym varchar(50) NOT NULL, sex varchar(8) NOT NULL, year_of_birth integer NOT NULL, "
               "enrolment date NOT NULL, is_new boolean NOT NULL DEFAULT false) ON COMMIT DROP")
        episode = TreatmentEpisode._meta.db_table
        # In chunks of CHUNK persons (keyset on person_id), each with its own pseudonymiser (it
        # caches per patient): Python holds one chunk, not one row per person, whatever the size.
        last = 0
        while True:
            self.x(f"SELECT p.id, o.id, p.sex, extract(year FROM p.birth_date)::int, "
                   f"least({_local('p.created_at')}::date, (SELECT min(e.treatment_start) FROM {episode} e "
                   f"WHERE e.patient_id = p.id)) "
                   f"FROM {Patient._meta.db_table} p JOIN {person} o ON o.patient_id = p.id "
                   f"WHERE p.id IN ({scope_sql}) AND o.id > %s ORDER BY o.id LIMIT {CHUNK}",
                   [*scope_params, last])
            rows = self.c.fetchall()
            if not rows:
                break
            pseudonyms = Pseudonymiser(key, shift_dates=False)
            with self.c.cursor.copy("COPY _scope (patient_id, person_id, pseudonym, sex, year_of_birth, "
                                    "enrolment) FROM STDIN") as copy:
                for patient_id, person_id, sex, year, enrolment in rows:
                    # The pseudonymised FHIR export's patient pseudonym (ADR 0007), cut to the CDM's
                    # varchar(50): its first 50 hex digits (200 bits), still unique and linkable.
                    copy.write_row((patient_id, person_id, pseudonyms.patient(patient_id)[:50], sex, year,
                                    enrolment))
            last = rows[-1][1]
        self.x(f"UPDATE _scope s SET is_new = NOT EXISTS (SELECT 1 FROM {self.s}.person p "
               "WHERE p.person_id = s.person_id)")
        self.x("ANALYZE _scope")

    def remove_outside_scope(self) -> None:
        """Consent withdrawn (or out of the cohort): the person and all their rows go."""
        for table in (*EVENT_TABLES, "person"):
            self.x(f"DELETE FROM {self.s}.{table} t WHERE NOT EXISTS "
                   "(SELECT 1 FROM _scope s WHERE s.person_id = t.person_id)")

    def person(self) -> None:
        male, female = concepts.concept_id("Gender", "male"), concepts.concept_id("Gender", "female")
        self.x(f"""
            INSERT INTO {self.s}.person (person_id, gender_concept_id, year_of_birth, month_of_birth,
                day_of_birth, birth_datetime, race_concept_id, ethnicity_concept_id, person_source_value,
                gender_source_value, gender_source_concept_id)
            SELECT person_id, CASE sex WHEN 'male' THEN %s WHEN 'female' THEN %s ELSE 0 END, year_of_birth,
                NULL, NULL, NULL, 0, 0, pseudonym, sex, 0
            FROM _scope ORDER BY person_id
            ON CONFLICT (person_id) DO UPDATE SET gender_concept_id = EXCLUDED.gender_concept_id,
                year_of_birth = EXCLUDED.year_of_birth, person_source_value = EXCLUDED.person_source_value,
                gender_source_value = EXCLUDED.gender_source_value""", [male, female])

    # --- episodes --------------------------------------------------------------------------

    def conditions_and_episodes(self) -> None:
        """Small tables: rebuilt whole on every run. The SKS diagnosis code is "D" + ICD-10
        (DC341 → C34.1); ICD-10 has no standard concept here (no Athena mapping shipped), so
        condition_concept_id is 0 with the ICD-10 code as the source value."""
        episode = TreatmentEpisode._meta.db_table
        ehr = concepts.concept_id("Type Concept", "ehr")
        icd10 = ("CASE WHEN length(e.condition_code) > 4 THEN substr(e.condition_code, 2, 3) || '.' || "
                 "substr(e.condition_code, 5) ELSE substr(e.condition_code, 2) END")
        self.x(f"DELETE FROM {self.s}.condition_occurrence")
        self.x(f"DELETE FROM {self.s}.episode")
        if self.scalar(f"SELECT coalesce(max(id), 0) FROM {episode}") > MAX_INT:
            raise OmopError("A treatment episode id exceeds OMOP's 32-bit ids.")
        self.x(f"""
            INSERT INTO {self.s}.condition_occurrence (condition_occurrence_id, person_id, condition_concept_id,
                condition_start_date, condition_start_datetime, condition_end_date, condition_end_datetime,
                condition_type_concept_id, condition_source_value, condition_source_concept_id)
            SELECT e.id, s.person_id, 0, e.treatment_start, e.treatment_start::timestamp, e."end",
                e."end"::timestamp, %s, {icd10}, 0
            FROM {episode} e JOIN _scope s ON s.patient_id = e.patient_id ORDER BY e.id""", [ehr])
        self.x(f"""
            INSERT INTO {self.s}.episode (episode_id, person_id, episode_concept_id, episode_start_date,
                episode_start_datetime, episode_end_date, episode_end_datetime, episode_parent_id, episode_number,
                episode_object_concept_id, episode_type_concept_id, episode_source_value,
                episode_source_concept_id)
            SELECT e.id, s.person_id, %s, e.treatment_start, e.treatment_start::timestamp, e."end",
                e."end"::timestamp, NULL,
                row_number() OVER (PARTITION BY e.patient_id ORDER BY e.treatment_start, e.id),
                0, %s, {icd10}, 0
            FROM {episode} e JOIN _scope s ON s.patient_id = e.patient_id ORDER BY e.id""",
               [concepts.concept_id("Episode", "episode-of-care"), ehr])  # 32533 "Episode of Care"

    # --- measurements ----------------------------------------------------------------------

    def measurement(self) -> None:
        """Home readings: one row per value (blood pressure: systolic n=0, diastolic n=1);
        erroneous readings left out (and removed when marked after an earlier run)."""
        self.x("CREATE TEMP TABLE _measure (measure varchar(32), n int, loinc varchar(20), concept_id int, "
               "unit varchar(16), unit_concept_id int, PRIMARY KEY (measure, n)) ON COMMIT DROP")
        for m in MEASURES.values():
            parts = [(0, m.value_loinc or m.loinc)] + ([(1, m.second.loinc)] if m.second else [])
            for n, loinc in parts:
                self.x("INSERT INTO _measure VALUES (%s, %s, %s, %s, %s, %s)",
                       [m.code, n, loinc, concepts.concept_id("LOINC", loinc), m.unit,
                        concepts.concept_id("UCUM", m.unit)])
        self.x("ANALYZE _measure")  # its true size, not the planner's guess for an unread table
        limits = self.limits = self.programme_limits()
        reading = Reading._meta.db_table
        # Readings are recorded in the platform, the patients' clinical record of them: "EHR".
        type_concept = int(concepts.concept_id("Type Concept", "ehr"))
        if self.scalar(f"SELECT coalesce(max(id), 0) FROM {reading}") * 2 + 1 > MAX_INT:
            raise OmopError("Reading ids have outgrown OMOP's 32-bit measurement_id (reading id × 2).")
        changed, params = "true", []
        if self.since is not None:
            # Rows of readings received or marked erroneous since then go and come back.
            self.x(f"DELETE FROM {self.s}.measurement WHERE measurement_id IN (SELECT r.id * 2 + n "
                   f"FROM {reading} r, (VALUES (0), (1)) v(n) "
                   "WHERE r.received_at >= %s OR r.erroneous_at >= %s)", [self.since, self.since])
            changed, params = "(r.received_at >= %s OR s.is_new)", [self.since]
        else:
            self.x(f"TRUNCATE {self.s}.measurement")
        self.x(f"""
            INSERT INTO {self.s}.measurement (measurement_id, person_id, measurement_concept_id, measurement_date,
                measurement_datetime, measurement_type_concept_id, value_as_number, unit_concept_id, range_low,
                range_high, measurement_source_value, measurement_source_concept_id, unit_source_value,
                value_source_value)
            {self._measurement_rows(changed, type_concept)}""", params)
        # No ORDER BY: the rows go in as the readings are read (their id order, as they are stored;
        # the hash joins keep it), where sorting 12 M rows by their id spilled to disk at the full
        # scale. The table's content is the same set of rows; its primary key is built afterwards.
        if self.since is not None and self.previous_limits() != limits:
            # A rule or an episode changed since the last run: the rows kept from it may carry
            # ranges of the old limits. One pass puts the current ones on the rows that differ,
            # so an incremental run ends where a full run would.
            self.x(f"""
                UPDATE {self.s}.measurement t SET range_low = x.range_low, range_high = x.range_high
                FROM ({self._measurement_rows("true", type_concept)}) x
                WHERE t.measurement_id = x.id AND (t.range_low IS DISTINCT FROM x.range_low
                    OR t.range_high IS DISTINCT FROM x.range_high)""")

    def _measurement_rows(self, changed: str, type_concept: int) -> str:
        """The SELECT of the measurement rows (the insert's column order). range_low/high: the
        programme's limits for the measure and part on the reading's local date (_span); NULL
        when no episode covers it, when the covering programmes' ranges differ, or for a side
        no rule limits. One hash join: a patient's spans do not overlap."""
        reading = Reading._meta.db_table
        day = f"{_wall('r.effective_at')}::date"
        return f"""
            SELECT r.id * 2 + v.n AS id, s.person_id, m.concept_id, {day},
                date_trunc('second', {_wall('r.effective_at')}), {type_concept}, v.value, m.unit_concept_id,
                g.low AS range_low, g.high AS range_high, m.loinc, m.concept_id, r.unit, v.value::text
            FROM {reading} r
            JOIN _scope s ON s.patient_id = r.patient_id
            CROSS JOIN LATERAL (VALUES (0, r.value), (1, r.value2)) v(n, value)
            JOIN _measure m ON m.measure = r.measure AND m.n = v.n
            LEFT JOIN _span g ON g.patient_id = r.patient_id AND g.measure = r.measure AND g.n = v.n
                AND {day} >= g.from_day AND (g.to_day IS NULL OR {day} <= g.to_day)
            WHERE v.value IS NOT NULL AND r.erroneous_at IS NULL AND {changed}"""

    def programme_limits(self) -> str:
        """_span: per patient, the stretches of days covered by the same set of programmes
        (cut at every episode's start and the day after its end), and per measure and part the
        range those programmes agree on (exports.omop.limits; a programme without a rule on it
        has no range, which differs from one that has). Only stretches with a range. Returns a
        fingerprint of the spans, kept in metadata, by which a --since run sees that the ranges
        of earlier rows may have changed."""
        self.x("CREATE TEMP TABLE _range (program_id bigint, measure varchar(32), n int, low numeric, "
               "high numeric, PRIMARY KEY (program_id, measure, n)) ON COMMIT DROP")
        for row in programme_ranges():
            self.x("INSERT INTO _range VALUES (%s, %s, %s, %s, %s)", list(row))
        self.x("ANALYZE _range")
        key = "coalesce(g.low::text, '') || '|' || coalesce(g.high::text, '')"
        self.x(f"""
            CREATE TEMP TABLE _span ON COMMIT DROP AS
            WITH ep AS (
                SELECT e.patient_id, e.program_id, e.treatment_start AS first, e."end" AS last
                FROM {TreatmentEpisode._meta.db_table} e JOIN _scope s ON s.patient_id = e.patient_id
            ), cut AS (
                SELECT patient_id, first AS day FROM ep UNION SELECT patient_id, last + 1 FROM ep WHERE last IS NOT NULL
            ), stretch AS (
                SELECT patient_id, day AS from_day,
                    lead(day) OVER (PARTITION BY patient_id ORDER BY day) - 1 AS to_day FROM cut
            ), covered AS (  -- a stretch no episode covers drops out here
                SELECT DISTINCT t.patient_id, t.from_day, t.to_day, ep.program_id FROM stretch t
                JOIN ep ON ep.patient_id = t.patient_id AND ep.first <= t.from_day
                    AND (ep.last IS NULL OR ep.last >= t.from_day)
            )
            SELECT c.patient_id, c.from_day, c.to_day, k.measure, k.n, max(g.low) AS low, max(g.high) AS high
            FROM covered c CROSS JOIN (SELECT DISTINCT measure, n FROM _range) k
            LEFT JOIN _range g ON g.program_id = c.program_id AND g.measure = k.measure AND g.n = k.n
            GROUP BY c.patient_id, c.from_day, c.to_day, k.measure, k.n
            HAVING count(DISTINCT {key}) = 1 AND (max(g.low) IS NOT NULL OR max(g.high) IS NOT NULL)""")
        self.x("ANALYZE _span")
        # A row's text keeps its NULLs apart ("(…,92,)" is not "(…,,92)").
        return str(self.scalar("SELECT md5(coalesce(string_agg(t::text, ';' ORDER BY patient_id, from_day, "
                               "measure, n), '')) FROM _span t"))

    def previous_limits(self) -> str | None:
        return self.scalar(f"SELECT max(value_as_string) FROM {self.s}.metadata WHERE name = %s", [LIMITS])

    # --- questionnaire answers ------------------------------------------------------------

    def observation(self) -> None:
        """Each completed response: one row for the response (the questionnaire's panel code),
        one per coded, numeric or yes/no answer (free text never), one per score."""
        response = QuestionnaireResponse._meta.db_table
        if self.scalar(f"SELECT coalesce(max(id), 0) FROM {response}") >= (MAX_INT + 1) // SLOTS:
            raise OmopError(f"Response ids have outgrown OMOP's 32-bit observation_id (response id × {SLOTS}).")
        changed, params = "true", []
        if self.since is not None:
            # A range per changed response, so the primary key's index finds the rows.
            self.x(f"DELETE FROM {self.s}.observation o USING {response} r WHERE r.updated_at >= %s "
                   f"AND o.observation_id >= r.id * {SLOTS} AND o.observation_id < (r.id + 1) * {SLOTS}",
                   [self.since])
            changed, params = "(r.updated_at >= %s OR s.is_new)", [self.since]
        else:
            self.x(f"TRUNCATE {self.s}.observation")
        items, codes = item_map(), code_map()
        answer_value = ("CASE WHEN a.v ? 'valueCoding' THEN NULL WHEN a.v ? 'valueBoolean' THEN "
                        "CASE WHEN (a.v->>'valueBoolean')::boolean THEN 1 ELSE 0 END "
                        "ELSE coalesce(a.v->>'valueInteger', a.v->>'valueDecimal')::numeric END")
        survey = int(concepts.concept_id("Type Concept", "patient-reported"))  # "Patient filled survey"
        # Answer and score rows point at their response's row (CDM 5.4 has no survey_conduct):
        # observation_event_id = that row's id; the field concept for observation.observation_id
        # was not found in a citable source, so 0 (ADR 0019).
        event_field = int(concepts.concept_id("CDM field", "observation.observation_id"))
        # One statement, straight into the table. The responses are read in id order (the primary
        # key's index) and each one's rows come from a lateral subquery, so the window that numbers
        # a response's rows gets them already grouped by response: PostgreSQL sorts each small
        # group (incremental sort), where one sort of all 13 M rows spilled to disk at the full
        # scale, and the insert's order is the window's (no second sort). The questionnaires'
        # items (source value, concept, place in the definition) and the answer codes' concepts
        # come from two small JSON maps in the query, not from joins: a hash join under the
        # per-response loop would build its hash once per response, and one above it would lose
        # the order. Per response once (OFFSET 0 keeps the subquery from being folded into every
        # row): its questionnaire's map and its local date and time. A response with more rows
        # than SLOTS gets a NULL id, which the NOT NULL of observation_id refuses; that is said in
        # words below. The jsonpath filter runs in PostgreSQL's C code: only the items that have
        # answers come out as rows.
        try:
            self.x(f"""
                INSERT INTO {self.s}.observation (observation_id, person_id, observation_concept_id,
                    observation_date, observation_datetime, observation_type_concept_id, value_as_number,
                    value_as_concept_id, observation_source_value, observation_source_concept_id, value_source_value,
                    observation_event_id, obs_event_field_concept_id)
                SELECT CASE WHEN place < {SLOTS} THEN id * {SLOTS} + place END, person_id, concept_id, day, at,
                    {survey}, number, value_concept, left(source, 50), concept_id, left(value_source, 50),
                    CASE WHEN kind > 0 THEN id * {SLOTS} END, CASE WHEN kind > 0 THEN {event_field} END
                FROM (
                    SELECT r.id, s.person_id, m.day, m.at, x.*,
                        row_number() OVER (PARTITION BY r.id ORDER BY x.kind, x.seq, x.ord) - 1 AS place
                    FROM {response} r
                    CROSS JOIN LATERAL (SELECT person_id, is_new FROM _scope WHERE patient_id = r.patient_id) s
                    CROSS JOIN LATERAL (SELECT %s::jsonb -> r.questionnaire_id::text AS q,
                        {_wall('r.authored_at')}::date AS day, date_trunc('second', {_wall('r.authored_at')}) AS at
                        OFFSET 0) m
                    CROSS JOIN LATERAL (
                        SELECT 0 AS kind, 0 AS seq, 0::bigint AS ord, (m.q->''->>1)::int AS concept_id,
                            m.q->''->>0 AS source, NULL::numeric AS number, NULL::int AS value_concept,
                            NULL::text AS value_source
                        UNION ALL
                        SELECT 1, (it.i->>2)::int, a.ord, (it.i->>1)::int, it.i->>0, {answer_value},
                            CASE WHEN a.v ? 'valueCoding' THEN CASE WHEN a.v->'valueCoding'->>'system' = '{LOINC}'
                                THEN coalesce((%s::jsonb->>(a.v->'valueCoding'->>'code'))::int, 0) ELSE 0 END END,
                            coalesce(a.v->'valueCoding'->>'code', a.v->>'valueBoolean', a.v->>'valueInteger',
                                     a.v->>'valueDecimal')
                        FROM jsonb_path_query(r.items, 'strict $.** ? (exists(@.answer))') node
                        CROSS JOIN LATERAL (SELECT m.q->(node->>'linkId') AS i OFFSET 0) it  -- looked up once
                        CROSS JOIN LATERAL jsonb_array_elements(node->'answer') WITH ORDINALITY a(v, ord)
                        WHERE it.i IS NOT NULL
                            AND a.v ?| array['valueCoding', 'valueBoolean', 'valueInteger', 'valueDecimal']
                        UNION ALL
                        SELECT 2, 0, sc.ord, coalesce((%s::jsonb->>(sc.v->'code'->>'code'))::int, 0),
                            sc.v->'code'->>'code', (sc.v->>'value')::numeric, NULL, NULL
                        FROM jsonb_array_elements(r.scores) WITH ORDINALITY sc(v, ord)
                        WHERE sc.v->>'value' IS NOT NULL
                    ) x
                    WHERE r.status = '{ResponseStatus.COMPLETED.value}' AND {changed}
                ) numbered
                ORDER BY id, kind, seq, ord""", [items, codes, codes, *params])  # = the window's order
        except IntegrityError as exc:
            if "observation_id" not in str(exc):
                raise
            raise OmopError(f"A response has more than {SLOTS} answers and scores; OMOP's 32-bit "
                            "observation ids cannot hold it.") from exc

    # --- periods, source, metadata --------------------------------------------------------

    def observation_period(self) -> None:
        """From enrolment (or the first event, if earlier) to the last data; rebuilt whole."""
        s = self.s
        self.x(f"TRUNCATE {s}.observation_period")
        self.x(f"""
            INSERT INTO {s}.observation_period (observation_period_id, person_id, observation_period_start_date,
                observation_period_end_date, period_type_concept_id)
            SELECT sc.person_id, sc.person_id, least(sc.enrolment, min(ev.first)),
                greatest(sc.enrolment, max(ev.last)), {int(concepts.concept_id("Type Concept", "ehr"))}
            FROM _scope sc LEFT JOIN (
                SELECT person_id, min(measurement_date) AS first, max(measurement_date) AS last
                    FROM {s}.measurement GROUP BY person_id
                UNION ALL SELECT person_id, min(observation_date), max(observation_date)
                    FROM {s}.observation GROUP BY person_id
                UNION ALL SELECT person_id, min(condition_start_date),
                    max(greatest(condition_start_date, condition_end_date)) FROM {s}.condition_occurrence
                    GROUP BY person_id
                UNION ALL SELECT person_id, min(episode_start_date),
                    max(greatest(episode_start_date, episode_end_date)) FROM {s}.episode GROUP BY person_id
            ) ev ON ev.person_id = sc.person_id
            GROUP BY sc.person_id, sc.enrolment ORDER BY sc.person_id""")

    def source_and_metadata(self, *, release_date: date, cohort_id: int | None) -> None:
        s = self.s
        self.x(f"DELETE FROM {s}.cdm_source")
        self.x(f"""INSERT INTO {s}.cdm_source (cdm_source_name, cdm_source_abbreviation, cdm_holder,
                source_description, source_documentation_reference, cdm_etl_reference, source_release_date,
                cdm_release_date, cdm_version, cdm_version_concept_id, vocabulary_version)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, '5.4', %s, %s)""",
               ["proplatform patient-reported outcomes and home monitoring", "proplatform",
                "The region running proplatform (data controller)",
                "Pseudonymised patient-reported outcomes (questionnaire answers and scores), home readings and "
                "treatment episodes. Persons by keyed pseudonym; birth year only; no free text.",
                "docs/architecture.md (OMOP export)", "docs/adr/0019-omop-cdm-export-mapping.md",
                release_date, release_date, concepts.concept_id("CDM", "5.4"), concepts.version()])
        self.x(f"DELETE FROM {s}.metadata")
        rows = [
            ("pseudonym scheme", "HMAC-SHA256(EXPORT_PSEUDONYM_KEY, Patient/<id>), first 50 hex digits (ADR 0007)"),
            ("time zone of dates", TIME_ZONE),
            ("incremental since", self.since.isoformat() if self.since else "full export"),
            ("cohort", str(cohort_id) if cohort_id is not None else "all patients with a treatment episode"),
            ("concept table", concepts.version()),
            (LIMITS, self.limits),
        ]
        for i, (name, value) in enumerate(rows, start=1):
            self.x(f"INSERT INTO {s}.metadata (metadata_id, metadata_concept_id, metadata_type_concept_id, name, "
                   "value_as_string, metadata_date) VALUES (%s, 0, 0, %s, %s, %s)", [i, name, value, release_date])
