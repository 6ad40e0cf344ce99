"""The SQL twins of the indicators' unit definitions (outcomes.indicator_units), for PostgreSQL:
the refresh and the live pages group units into cells in the database instead of loading a
million responses and ten million readings into Python.

Each builder returns the body of a ``units`` query: one row per unit (``episode_id``, ``num``,
``den``, ``value``, ``category``), reading the episodes in scope from the ``ep`` CTE that
``cells_query`` puts in front of it. The Python definitions stay the reference: they run on
SQLite, and tests/test_indicator_sql.py checks on hand-made data sets that both give the same
cells (ties, withdrawn consent, missing baselines, patients who changed team).

Same rules as the Python side: Danish calendar days (``AT TIME ZONE 'Europe/Copenhagen'``), an
event belongs to the patient's in-scope episode covering its day (the latest started; of two
started the same day, the lower id), a patient who withdrew is never read.

Every string spliced into the SQL is the code's own (table names, enum values, timepoint days,
MID thresholds); filter values travel as parameters.
"""
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from django.db import connections
from django.db.backends.utils import CursorWrapper

from alerts.models import Alert, EscalationPolicy, Outcome, Rule, Severity
from monitoring.models import DeviceLending, Reading
from outcomes.indicator_core import AGE_BANDS, DANISH_TIME, DEFAULT_RED_ACK_PROMISE, Filters, Kind
from outcomes.models import ReadingDay
from outcomes.timepoints import DEFAULT_TIMEPOINTS, Timepoint
from patients.models import Patient, TreatmentEpisode
from questionnaires.library.mid import MinimalImportantDifference
from questionnaires.models import QuestionnaireResponse, ResponseReview, ResponseStatus
from schedules.models import Occurrence, OccurrenceStatus

UnitsSQL = Callable[..., str]

T_EPISODE = TreatmentEpisode._meta.db_table
T_PATIENT = Patient._meta.db_table
T_RESPONSE = QuestionnaireResponse._meta.db_table
T_REVIEW = ResponseReview._meta.db_table
T_ALERT = Alert._meta.db_table
T_RULE = Rule._meta.db_table
T_POLICY = EscalationPolicy._meta.db_table
T_LENDING = DeviceLending._meta.db_table
T_READING = Reading._meta.db_table
T_OCCURRENCE = Occurrence._meta.db_table
T_READING_DAY = ReadingDay._meta.db_table

LOCAL = "AT TIME ZONE 'Europe/Copenhagen'"


def _age_band_sql() -> str:
    age = "date_part('year', age(e.treatment_start, p.birth_date))"
    whens = " ".join(f"WHEN {age} <= {high} THEN '{code}'" for code, _low, high in AGE_BANDS if high is not None)
    return f"CASE {whens} ELSE '{AGE_BANDS[-1][0]}' END"


def episodes_cte(filters: Filters) -> str:
    """The episodes in scope (outcomes.indicator_core.episodes_in_scope), with the facts a cell
    is keyed by."""
    where = ["p.secondary_use_withdrawn_at IS NULL", "e.treatment_start <= %(today)s"]
    if filters.program_id:
        where.append("e.program_id = %(program_id)s")
    if filters.start_from:
        where.append("e.treatment_start >= %(start_from)s")
    if filters.start_to:
        where.append("e.treatment_start <= %(start_to)s")
    if filters.sex:
        where.append("p.sex = %(sex)s")
    inner = (f"SELECT e.id AS episode_id, e.patient_id, e.program_id, e.care_team_id AS team_id, "
             f"e.treatment_start AS start, e.\"end\" AS stop, p.sex, {_age_band_sql()} AS age_band, "
             f"to_char(e.treatment_start, 'YYYY-MM') AS month "
             f"FROM {T_EPISODE} e JOIN {T_PATIENT} p ON p.id = e.patient_id WHERE {' AND '.join(where)}")
    band = " WHERE age_band = %(age_band)s" if filters.age_band else ""
    return f"ep AS MATERIALIZED (SELECT * FROM ({inner}) x{band})"


def params(filters: Filters, today: date, now: datetime | None = None) -> dict[str, Any]:
    return {"today": today, "now": now or datetime.combine(today, datetime.min.time(), tzinfo=DANISH_TIME),
            "program_id": filters.program_id, "start_from": filters.start_from, "start_to": filters.start_to,
            "sex": filters.sex, "age_band": filters.age_band,
            "default_promise": DEFAULT_RED_ACK_PROMISE}


# --- the units of each indicator ----------------------------------------------------------------

def response_rate_sql(t: Timepoint) -> UnitsSQL:
    def sql(shared: bool = False) -> str:
        return (f"SELECT ep.episode_id, CASE WHEN EXISTS (SELECT 1 FROM {T_RESPONSE} r "
                f"WHERE r.patient_id = ep.patient_id AND r.status = '{ResponseStatus.COMPLETED}' "
                f"AND (r.authored_at {LOCAL})::date - ep.start BETWEEN {t.start_day} AND {t.end_day}) "
                f"THEN 1 ELSE 0 END AS num, 1 AS den, NULL::float AS value, '' AS category "
                f"FROM ep WHERE ep.start + {t.end_day} < %(today)s")
    return sql


def _scored(code: str) -> str:
    """Completed responses of patients in scope with the score ``code`` (the first such entry of
    the response's scores, as outcomes.indicator_units._score reads it)."""
    return (f"SELECT r.id, r.patient_id, r.authored_at, (r.authored_at {LOCAL})::date AS day, sc.v "
            f"FROM {T_RESPONSE} r CROSS JOIN LATERAL (SELECT (s.elem->>'value')::float AS v "
            f"FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.scores) = 'array' THEN r.scores ELSE '[]' END) "
            f"WITH ORDINALITY AS s(elem, i) "
            f"WHERE s.elem->'code'->>'code' = '{code}' AND s.elem->>'value' IS NOT NULL ORDER BY s.i LIMIT 1) sc "
            f"WHERE r.status = '{ResponseStatus.COMPLETED}' AND r.patient_id IN (SELECT patient_id FROM ep)")


def _scored_shared(code: str) -> str:
    """``_scored`` from the refresh's temporary table of every MID score (``scores_table_sql``)."""
    return f"SELECT id, patient_id, authored_at, day, v FROM {SHARED_SCORES} WHERE code = '{code}'"


def scores_table_sql(codes: list[str]) -> str:
    """Each completed response's first entry of each score ``codes`` names, as ``_scored`` reads
    one: for the refresh, so that the responses' scores are unpacked once, not once per indicator."""
    wanted = ", ".join(f"'{c}'" for c in sorted(codes)) or "NULL"
    # The first entry per code is chosen within each response (a sort of a few entries), not by
    # one sort of every response's entries.
    return (f"SELECT r.id, r.patient_id, r.authored_at, (r.authored_at {LOCAL})::date AS day, sc.code, sc.v "
            f"FROM {T_RESPONSE} r CROSS JOIN LATERAL (SELECT DISTINCT ON (s.elem->'code'->>'code') "
            f"s.elem->'code'->>'code' AS code, (s.elem->>'value')::float AS v "
            f"FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.scores) = 'array' THEN r.scores ELSE '[]' END) "
            f"WITH ORDINALITY AS s(elem, i) "
            f"WHERE s.elem->'code'->>'code' IN ({wanted}) AND s.elem->>'value' IS NOT NULL "
            f"ORDER BY s.elem->'code'->>'code', s.i) sc "
            f"WHERE r.status = '{ResponseStatus.COMPLETED}' AND r.patient_id IN (SELECT patient_id FROM ep)")


def prom_change_sql(mid: MinimalImportantDifference, t: Timepoint) -> UnitsSQL:
    base = DEFAULT_TIMEPOINTS.get("baseline")
    better = "-(f.v - b.v)" if mid.lower_is_better else "(f.v - b.v)"

    def sql(shared: bool = False) -> str:
        scored = _scored_shared(mid.score_code) if shared else _scored(mid.score_code)
        return (
            f"WITH pairs AS (SELECT ep.episode_id, s.id, s.authored_at, s.v, s.day - ep.start AS d "
            f"FROM ep JOIN ({scored}) s ON s.patient_id = ep.patient_id), "
            # baseline: the last score in the baseline window
            f"b AS (SELECT DISTINCT ON (episode_id) episode_id, v FROM pairs "
            f"WHERE d BETWEEN {base.start_day} AND {base.end_day} ORDER BY episode_id, authored_at DESC, id DESC), "
            # follow-up: nearest the target day; of two equally near, the earlier
            f"f AS (SELECT DISTINCT ON (episode_id) episode_id, v FROM pairs "
            f"WHERE d BETWEEN {t.start_day} AND {t.end_day} "
            f"ORDER BY episode_id, abs(d - {t.target_day}), authored_at, id) "
            f"SELECT b.episode_id, 0 AS num, 1 AS den, f.v - b.v AS value, "
            f"CASE WHEN {better} >= {float(mid.improvement)} THEN 'improved' "
            f"WHEN -({better}) >= {float(mid.worsening)} THEN 'worse' ELSE 'unchanged' END AS category "
            f"FROM b JOIN f USING (episode_id)")
    return sql


def _patient_days() -> str:
    last = "LEAST(COALESCE(ep.stop, %(today)s::date - 1), %(today)s::date - 1)"
    return f"GREATEST(0, {last} - ep.start + 1)"


def alerts_base() -> str:
    """Every alert of a patient in scope, with the in-scope episode covering its Danish day (the
    ``al_all`` CTE, or the refresh's temporary table of it: sixteen indicators read it)."""
    return (
        f"SELECT DISTINCT ON (a.id) a.id, a.severity, ru.kind, a.raised_at, a.acknowledged_at, a.resolved_at, "
        f"a.outcome, a.day, ep.episode_id, ep.team_id "
        f"FROM (SELECT a.*, (a.raised_at {LOCAL})::date AS day FROM {T_ALERT} a "
        f"WHERE a.patient_id IN (SELECT patient_id FROM ep)) a "
        f"LEFT JOIN {T_RULE} ru ON ru.id = a.rule_id "
        f"JOIN ep ON ep.patient_id = a.patient_id AND ep.start <= a.day AND (ep.stop IS NULL OR a.day <= ep.stop) "
        f"ORDER BY a.id, ep.start DESC, ep.episode_id")


def _alerts_attributed(where: str = "TRUE") -> str:
    return f"SELECT * FROM al_all a WHERE {where}"


def alert_rate_sql(severity: str | None, kind: str | None = None) -> UnitsSQL:
    def sql(shared: bool = False) -> str:
        keep = ["a.day < %(today)s"]
        if severity:
            keep.append(f"a.severity = '{severity}'")
        if kind:
            keep.append(f"a.kind = '{kind}'")
        return (f"WITH al AS ({_alerts_attributed(' AND '.join(keep))}), "
                f"n AS (SELECT episode_id, count(*) AS k FROM al GROUP BY episode_id) "
                f"SELECT ep.episode_id, COALESCE(n.k, 0) AS num, {_patient_days()} AS den, NULL::float AS value, "
                f"'' AS category FROM ep LEFT JOIN n USING (episode_id) WHERE {_patient_days()} > 0")
    return sql


def no_action_sql(shared: bool = False) -> str:
    return (f"SELECT episode_id, CASE WHEN outcome = '{Outcome.NO_ACTION}' THEN 1 ELSE 0 END AS num, 1 AS den, "
            f"NULL::float AS value, '' AS category FROM ({_alerts_attributed('a.resolved_at IS NOT NULL')}) al")


def red_hours_sql(field_name: str) -> UnitsSQL:
    if field_name not in ("acknowledged_at", "resolved_at"):
        raise ValueError(field_name)

    def sql(shared: bool = False) -> str:
        keep = f"a.severity = '{Severity.RED}' AND a.{field_name} IS NOT NULL"
        return (f"SELECT episode_id, 0 AS num, 1 AS den, "
                f"extract(epoch FROM ({field_name} - raised_at))::float / 3600 AS value, '' AS category "
                f"FROM ({_alerts_attributed(keep)}) al")
    return sql


def red_ack_on_time_sql(shared: bool = False) -> str:
    red = f"a.severity = '{Severity.RED}'"
    return (f"SELECT episode_id, CASE WHEN acknowledged_at IS NOT NULL AND acknowledged_at <= deadline "
            f"THEN 1 ELSE 0 END AS num, 1 AS den, NULL::float AS value, '' AS category "
            f"FROM (SELECT al.*, al.raised_at + COALESCE(pol.after, %(default_promise)s) AS deadline "
            f"FROM ({_alerts_attributed(red)}) al "
            f"LEFT JOIN {T_POLICY} pol ON pol.care_team_id = al.team_id) x WHERE deadline <= %(now)s")


def review_on_time_sql(shared: bool = False) -> str:
    return (
        f"SELECT DISTINCT ON (r.id) ep.episode_id, CASE WHEN rv.reviewed_at IS NOT NULL "
        f"AND rv.reviewed_at <= r.review_due_at THEN 1 ELSE 0 END AS num, 1 AS den, NULL::float AS value, "
        f"'' AS category "
        f"FROM (SELECT r.*, (r.authored_at {LOCAL})::date AS day FROM {T_RESPONSE} r "
        f"WHERE r.status = '{ResponseStatus.COMPLETED}' AND r.review_due_at IS NOT NULL "
        f"AND r.patient_id IN (SELECT patient_id FROM ep)) r "
        f"LEFT JOIN {T_REVIEW} rv ON rv.response_id = r.id "
        f"JOIN ep ON ep.patient_id = r.patient_id AND ep.start <= r.day AND (ep.stop IS NULL OR r.day <= ep.stop) "
        f"WHERE NOT (r.review_due_at > %(now)s AND rv.reviewed_at IS NULL) "
        f"ORDER BY r.id, ep.start DESC, ep.episode_id")


def reading_adherence_sql(shared: bool = False) -> str:
    """Expected days: the union of the patient's lendings clipped to the episode up to yesterday
    (overlapping lendings merged as islands); kept days: distinct Danish days with a reading
    that is not marked erroneous, inside one of those lendings. ``shared``: the refresh's, whose
    reading days are kept in outcomes.models.ReadingDay."""
    last = "LEAST(COALESCE(ep.stop, %(today)s::date), %(today)s::date - 1)"
    scope = "patient_id IN (SELECT patient_id FROM has JOIN ep USING (episode_id))"
    if shared:
        # The refresh has brought the kept reading days up to date (outcomes.reading_days): the
        # same days, without reading every reading; every patient is in the refresh's scope, so
        # the whole table is joined (a hash join, where a look-up per patient read 8 M scattered
        # rows one page at a time). A patient's days are distinct and the islands do not overlap:
        # the days inside the islands, counted, are the distinct days inside the lendings.
        rd = f"SELECT patient_id, day FROM {T_READING_DAY}"
        kept = ("kept AS (SELECT m.episode_id, count(*) AS days FROM m "
                "JOIN rd ON rd.patient_id = m.patient_id AND rd.day BETWEEN m.lo AND m.hi GROUP BY m.episode_id) ")
    else:
        rd = (f"SELECT DISTINCT patient_id, (effective_at {LOCAL})::date AS day FROM {T_READING} "
              f"WHERE erroneous_at IS NULL AND {scope}")
        kept = ("kept AS (SELECT ivs.episode_id, count(DISTINCT rd.day) AS days FROM ivs "
                "JOIN rd ON rd.patient_id = ivs.patient_id AND rd.day BETWEEN ivs.a AND ivs.b "
                "GROUP BY ivs.episode_id) ")
    return (
        f"WITH iv AS (SELECT ep.episode_id, ep.patient_id, GREATEST(l.lent_from, ep.start) AS a, "
        f"LEAST(COALESCE(l.returned_on, l.lent_to, {last}), {last}) AS b "
        f"FROM ep JOIN {T_LENDING} l ON l.patient_id = ep.patient_id), "
        f"has AS (SELECT DISTINCT episode_id FROM iv), "
        f"ivs AS (SELECT * FROM iv WHERE a <= b), "
        f"marks AS (SELECT episode_id, patient_id, a, b, CASE WHEN a <= max(b) OVER (PARTITION BY episode_id "
        f"ORDER BY a, b ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) + 1 THEN 0 ELSE 1 END AS fresh FROM ivs), "
        f"isl AS (SELECT episode_id, patient_id, a, b, sum(fresh) OVER (PARTITION BY episode_id ORDER BY a, b) AS k "
        f"FROM marks), "
        f"m AS (SELECT episode_id, patient_id, min(a) AS lo, max(b) AS hi FROM isl "
        f"GROUP BY episode_id, patient_id, k), "
        f"den AS (SELECT episode_id, sum(hi - lo + 1) AS days FROM m GROUP BY episode_id), "
        f"rd AS ({rd}), "
        f"{kept}"
        f"SELECT den.episode_id, COALESCE(kept.days, 0) AS num, den.days AS den, NULL::float AS value, "
        f"'' AS category FROM den LEFT JOIN kept USING (episode_id) WHERE den.days > 0")


def missed_questionnaire_sql(shared: bool = False) -> str:
    return (f"SELECT o.episode_id, count(*) FILTER (WHERE o.status = '{OccurrenceStatus.MISSED}') AS num, "
            f"count(*) AS den, NULL::float AS value, '' AS category FROM {T_OCCURRENCE} o "
            f"WHERE o.episode_id IN (SELECT episode_id FROM ep) "
            f"AND o.status IN ('{OccurrenceStatus.COMPLETED}', '{OccurrenceStatus.MISSED}') GROUP BY o.episode_id")


# --- the refresh's batches: several indicators in one pass ----------------------------------------

CELL_KEYS = ("program_id", "team_id", "sex", "age_band", "month")


def alert_rates_cells_sql(specs: list[tuple[str, str | None, str | None]]) -> str:
    """The cells of several alert-rate indicators — (code, severity or None, rule kind or None)
    each — in one pass over the refresh's shared alerts: one count per indicator and episode,
    summed per cell once for all of them (their units are the same episodes, so the patients,
    units and patient-days of a cell are too; only the numerators differ), then one row per
    indicator and cell. The units of ``alert_rate_sql``, grouped as ``cells_query`` groups them.
    Columns: the indicator's code, then ``cells_query``'s."""
    counts, sums, pairs = [], [], []
    for k, (code, severity, kind) in enumerate(specs):
        keep = ["TRUE"]
        if severity:
            keep.append(f"a.severity = '{severity}'")
        if kind:
            keep.append(f"a.kind = '{kind}'")
        counts.append(f"count(*) FILTER (WHERE {' AND '.join(keep)}) AS k{k}")
        sums.append(f"COALESCE(sum(n.k{k}), 0) AS s{k}")
        pairs.append(f"('{code}', g.s{k})")
    keys = ", ".join(f"u.{c}" for c in CELL_KEYS)
    return (
        f"WITH n AS (SELECT episode_id, {', '.join(counts)} FROM {SHARED_ALERTS} a WHERE a.day < %(today)s "
        f"GROUP BY episode_id), "
        f"u AS (SELECT ep.*, {_patient_days()} AS days FROM {SHARED_EPISODES} ep), "
        f"g AS (SELECT {keys}, count(DISTINCT u.patient_id) AS patients, count(*) AS units, sum(u.days) AS days, "
        f"{', '.join(sums)} FROM u LEFT JOIN n USING (episode_id) WHERE u.days > 0 GROUP BY {keys}) "
        f"SELECT v.code, {', '.join(f'g.{c}' for c in CELL_KEYS)}, g.patients, g.units, v.num::float, "
        f"g.days::float, '[]'::jsonb, '{{}}'::jsonb FROM g CROSS JOIN LATERAL (VALUES {', '.join(pairs)}) v(code, num)")


def response_rates_cells_sql(specs: list[tuple[str, Timepoint]]) -> str:
    """The cells of several response-rate indicators — (code, timepoint) each — in one pass over
    the responses of the episodes in scope: per episode, whether a completed response falls in
    each timepoint's window (the EXISTS of ``response_rate_sql``); per cell, for each indicator
    the episodes whose window has closed (its units) and those of them with a response; then
    one row per indicator and cell that has units, as ``cells_query`` groups them."""
    flags, aggs, rows = [], [], []
    for k, (code, t) in enumerate(specs):
        flags.append(f"bool_or(x.d BETWEEN {t.start_day} AND {t.end_day}) AS f{k}")
        closed = f"ep.start + {t.end_day} < %(today)s"
        aggs.append(f"count(DISTINCT ep.patient_id) FILTER (WHERE {closed}) AS p{k}, "
                    f"count(*) FILTER (WHERE {closed}) AS u{k}, "
                    f"count(*) FILTER (WHERE {closed} AND f.f{k}) AS h{k}")
        rows.append(f"('{code}', g.p{k}, g.u{k}, g.h{k})")
    keys = ", ".join(f"ep.{c}" for c in CELL_KEYS)
    return (
        f"WITH ep AS (SELECT * FROM {SHARED_EPISODES}), "
        # OFFSET 0 keeps each subquery whole, so that a response's Danish day (a time-zone
        # conversion) and its distance from the start are computed once, not once per timepoint.
        f"f AS (SELECT x.episode_id, {', '.join(flags)} FROM (SELECT ep.episode_id, r.day - ep.start AS d "
        f"FROM ep JOIN (SELECT r.patient_id, (r.authored_at {LOCAL})::date AS day FROM {T_RESPONSE} r "
        f"WHERE r.status = '{ResponseStatus.COMPLETED}' AND r.patient_id IN (SELECT patient_id FROM ep) OFFSET 0) r "
        f"ON r.patient_id = ep.patient_id OFFSET 0) x GROUP BY x.episode_id), "
        f"g AS (SELECT {keys}, {', '.join(aggs)} FROM ep LEFT JOIN f USING (episode_id) GROUP BY {keys}) "
        f"SELECT v.code, {', '.join(f'g.{c}' for c in CELL_KEYS)}, v.patients, v.units, v.hits::float, "
        f"v.units::float, '[]'::jsonb, '{{}}'::jsonb "
        f"FROM g CROSS JOIN LATERAL (VALUES {', '.join(rows)}) v(code, patients, units, hits) WHERE v.units > 0")


# One function per batch name (Indicator.batch): the indicators' (code, *batch_args) → the SQL.
BATCHES: dict[str, Callable[[list[tuple[Any, ...]]], str]] = {
    "alert-rate": alert_rates_cells_sql,
    "response-rate": response_rates_cells_sql,
}


# --- cells ---------------------------------------------------------------------------------------

SHARED_EPISODES, SHARED_ALERTS, SHARED_SCORES = "tmp_outcomes_ep", "tmp_outcomes_alerts", "tmp_outcomes_scores"


def shared_tables_create(cursor: CursorWrapper, today: date, score_codes: list[str] | None = None) -> None:
    """The refresh's shared rows, once for all indicators: the episodes in scope, the alerts
    attributed to them and the responses' scores (``score_codes``), as temporary tables (this
    connection only, dropped by ``shared_tables_drop``)."""
    inner = episodes_cte(Filters()).removeprefix("ep AS MATERIALIZED (").removesuffix(")")
    cursor.execute(f"CREATE TEMP TABLE {SHARED_EPISODES} AS {inner}", params(Filters(), today))
    # Analysed before the tables made from it: without its size the planner looked up each
    # patient's responses by index, one patient at a time (3 s of the scores' 6 s).
    cursor.execute(f"ANALYZE {SHARED_EPISODES}")
    cursor.execute(f"CREATE TEMP TABLE {SHARED_ALERTS} AS WITH ep AS (SELECT * FROM {SHARED_EPISODES}) "
                   f"{alerts_base()}")
    cursor.execute(f"CREATE TEMP TABLE {SHARED_SCORES} AS WITH ep AS (SELECT * FROM {SHARED_EPISODES}) "
                   f"{scores_table_sql(score_codes or [])}")
    cursor.execute(f"ANALYZE {SHARED_ALERTS}; ANALYZE {SHARED_SCORES}")


def shared_tables_drop(cursor: CursorWrapper) -> None:
    cursor.execute(f"DROP TABLE IF EXISTS {SHARED_EPISODES}; DROP TABLE IF EXISTS {SHARED_ALERTS}; "
                   f"DROP TABLE IF EXISTS {SHARED_SCORES}")


def cells_query(units_sql: str, filters: Filters, categories: tuple[str, ...], shared: bool = False,
                additive: bool = False) -> str:
    """One row per cell (outcomes.indicator_core.Cell): programme, team, sex, age band, month;
    patients, units, numerator, denominator, the values (a distribution's, sorted) and the count
    per category (zeros left out, as the Python side leaves them out).

    ``additive``: the units carry no value and no category (shares and rates), so they are
    summed per episode first and only the episodes' sums are joined to their facts and sorted
    into cells — the same sums, with one row per episode instead of one per unit (830,000
    responses to review at 100,000 patients)."""
    cats = ", ".join(f"'{c}', NULLIF(count(*) FILTER (WHERE u.category = '{c}'), 0)" for c in categories)
    cat_sql = f"jsonb_strip_nulls(jsonb_build_object({cats}))" if categories else "'{}'::jsonb"
    ctes = (f"ep AS (SELECT * FROM {SHARED_EPISODES}), al_all AS (SELECT * FROM {SHARED_ALERTS})" if shared
            else f"{episodes_cte(filters)}, al_all AS MATERIALIZED ({alerts_base()})")
    if additive and not categories:
        return (
            f"WITH {ctes}, u0 AS ({units_sql}), u AS (SELECT episode_id, count(*) AS n, sum(num) AS num, "
            f"sum(den) AS den FROM u0 GROUP BY episode_id) "
            f"SELECT ep.program_id, ep.team_id, ep.sex, ep.age_band, ep.month, count(DISTINCT ep.patient_id), "
            f"sum(u.n)::bigint, COALESCE(sum(u.num), 0)::float, COALESCE(sum(u.den), 0)::float, '[]'::jsonb, "
            f"'{{}}'::jsonb FROM u JOIN ep USING (episode_id) "
            f"GROUP BY ep.program_id, ep.team_id, ep.sex, ep.age_band, ep.month")
    return (
        f"WITH {ctes}, u AS ({units_sql}) "
        f"SELECT ep.program_id, ep.team_id, ep.sex, ep.age_band, ep.month, count(DISTINCT ep.patient_id), "
        f"count(*), COALESCE(sum(u.num), 0)::float, COALESCE(sum(u.den), 0)::float, "
        f"COALESCE(jsonb_agg(u.value ORDER BY u.value) FILTER (WHERE u.value IS NOT NULL), '[]'::jsonb), "
        f"{cat_sql} FROM u JOIN ep USING (episode_id) "
        f"GROUP BY ep.program_id, ep.team_id, ep.sex, ep.age_band, ep.month")


def additive(indicator: Any) -> bool:
    """Whether an indicator's units may be summed per episode before the cells (``cells_query``)."""
    return indicator.kind != Kind.DISTRIBUTION and not indicator.categories


def supported(using: str = "default") -> bool:
    return connections[using].vendor == "postgresql"


def cells_rows(indicator: Any, filters: Filters, today: date, now: datetime | None = None,
               using: str = "default") -> list[tuple[Any, ...]]:
    """The cells of one indicator over one scope, computed in PostgreSQL."""
    sql = cells_query(indicator.sql(), filters, tuple(c for c, _label in indicator.categories),
                      additive=additive(indicator))
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params(filters, today, now))
        return cursor.fetchall()


def as_timedelta(value: Any) -> timedelta:
    return value if isinstance(value, timedelta) else timedelta(seconds=float(value))
