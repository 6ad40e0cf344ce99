"""The checks after every OMOP export (issue 25, ADR 0019), run inside the export's transaction
before it commits: a failed check fails the job and rolls the whole run back.

One scan per table answers all of its checks (person exists, inside the observation period,
concept ids inside the concept table, a unit per measurement) and gives its row count: at 12 M
measurement rows, a scan per check and per concept column cost more than the checks are worth.
"""

from typing import Any, Protocol

from exports.omop import concepts
from monitoring.models import Reading
from patients.models import TreatmentEpisode
from questionnaires.models import QuestionnaireResponse, ResponseStatus

# The tables the export fills, with the date an event row must have inside its person's period.
TABLES = ("person", "observation_period", "condition_occurrence", "episode", "measurement", "observation",
          "cdm_source", "metadata")
DATED = {"measurement": "measurement_date", "observation": "observation_date",
         "condition_occurrence": "condition_start_date", "episode": "episode_start_date"}


class Run(Protocol):
    s: str  # the quoted schema name

    def scalar(self, sql: str, params: Any = None) -> Any: ...

    def rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]: ...


def export_checks(run: Run, *, slots: int) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """(rows per table, checks). Each check: name, ok, bad_rows, detail."""
    s, out = run.s, []

    def check(name: str, bad: int, detail: str = "") -> None:
        out.append({"name": name, "ok": bad == 0, "bad_rows": bad, "detail": detail})

    known = sorted({c.concept_id for c in concepts.concepts()})
    known_sql = "ARRAY[" + ",".join(str(int(k)) for k in known) + "]::integer[]"  # ints from our own CSV
    columns: dict[str, list[str]] = {t: [] for t in TABLES}
    for table, column in run.rows(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %s "
            "AND column_name LIKE '%%concept_id' AND table_name = ANY(%s) ORDER BY 1, ordinal_position",
            [s.strip('"'), list(TABLES)]):
        columns[table].append(column)

    counts: dict[str, int] = {}
    outside = 0
    responses = 0
    for table in TABLES:
        outside_sql = " + ".join(f"count(*) FILTER (WHERE t.{c} IS NOT NULL AND NOT t.{c} = ANY({known_sql}))"
                                 for c in columns[table]) or "0"
        if table not in DATED:
            counts[table], bad = run.rows(f"SELECT count(*), {outside_sql} FROM {s}.{table} t")[0]  # noqa: S608
            outside += bad
            continue
        day = DATED[table]
        extra = {"measurement": "count(*) FILTER (WHERE t.unit_source_value IS NULL OR t.unit_concept_id IS NULL)",
                 "observation": f"count(*) FILTER (WHERE t.observation_id % {slots} = 0)"}.get(table, "0")
        # observation_period has one row per person (checked below), so the join adds no rows.
        total, no_person, outside_period, bad, extra_count = run.rows(f"""
            SELECT count(*), count(*) FILTER (WHERE p.person_id IS NULL),
                count(*) FILTER (WHERE o.person_id IS NULL OR t.{day} < o.observation_period_start_date
                                 OR t.{day} > o.observation_period_end_date),
                {outside_sql}, {extra}
            FROM {s}.{table} t LEFT JOIN {s}.person p ON p.person_id = t.person_id
            LEFT JOIN {s}.observation_period o ON o.person_id = t.person_id""")[0]  # noqa: S608
        counts[table] = total
        outside += bad
        check(f"{table}: every row's person exists", no_person)
        check(f"{table}: every event inside an observation period", outside_period)
        if table == "measurement":
            check("measurement: every row has a unit", extra_count)
        elif table == "observation":
            responses = extra_count
    check("observation_period: one per person", run.scalar(
        f"SELECT count(*) FROM (SELECT person_id FROM {s}.observation_period GROUP BY person_id "
        "HAVING count(*) > 1) x"))
    check("no concept id outside the repository's concept table", outside)
    _source_counts(run, check, counts, responses)
    return counts, out


def _source_counts(run: Run, check: Any, counts: dict[str, int], responses: int) -> None:
    reading, response = Reading._meta.db_table, QuestionnaireResponse._meta.db_table
    episode = TreatmentEpisode._meta.db_table
    episodes = run.scalar(f"SELECT count(*) FROM {episode} e JOIN _scope s ON s.patient_id = e.patient_id")
    expected = {
        "person": run.scalar("SELECT count(*) FROM _scope"),
        "condition_occurrence": episodes,
        "episode": episodes,
        "measurement": run.scalar(
            f"SELECT count(*) + count(r.value2) FROM {reading} r JOIN _scope s ON s.patient_id = r.patient_id "
            "JOIN (SELECT DISTINCT measure FROM _measure) m ON m.measure = r.measure "
            "WHERE r.erroneous_at IS NULL"),
        "observation (responses)": run.scalar(
            f"SELECT count(*) FROM {response} r JOIN _scope s ON s.patient_id = r.patient_id "
            f"WHERE r.status = '{ResponseStatus.COMPLETED.value}'"),
    }
    actual = {**counts, "observation (responses)": responses}
    for table, want in expected.items():
        got = actual[table]
        check(f"{table}: count against the source", abs(got - want), f"{got} exported, {want} in the source")
