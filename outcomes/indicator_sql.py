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
from outcomes.indicator_core import AGE_BANDS, DANISH_TIME, DEFAULT_RED_ACK_PROMISE, Filters
from outcomes.timepoints import DEFAULT_TIMEPOINTS, Timepoint
from patients.models import Patient, TreatmentEpisode
from questionnaires.library.mid import MinimalImportantDifference
from questionnaires.models import QuestionnaireResponse, ResponseReview, ResponseStatus
from schedules.models import Occurrence, OccurrenceStatus

UnitsSQL = Callable[[], str]

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
    def sql() -> str:
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


def prom_change_sql(mid: MinimalImportantDifference, t: Timepoint) -> UnitsSQL:
    base = DEFAULT_TIMEPOINTS.get("baseline")
    better = "-(f.v - b.v)" if mid.lower_is_better else "(f.v - b.v)"

    def sql() -> str:
        return (
            f"WITH pairs AS (SELECT ep.episode_id, s.id, s.authored_at, s.v, s.day - ep.start AS d "
            f"FROM ep JOIN ({_scored(mid.score_code)}) s ON s.patient_id = ep.patient_id), "
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
    def sql() -> str:
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


def no_action_sql() -> str:
    return (f"SELECT episode_id, CASE WHEN outcome = '{Outcome.NO_ACTION}' THEN 1 ELSE 0 END AS num, 1 AS den, "
            f"NULL::float AS value, '' AS category FROM ({_alerts_attributed('a.resolved_at IS NOT NULL')}) al")


def red_hours_sql(field_name: str) -> UnitsSQL:
    if field_name not in ("acknowledged_at", "resolved_at"):
        raise ValueError(field_name)

    def sql() -> str:
        keep = f"a.severity = '{Severity.RED}' AND a.{field_name} IS NOT NULL"
        return (f"SELECT episode_id, 0 AS num, 1 AS den, "
                f"extract(epoch FROM ({field_name} - raised_at))::float / 3600 AS value, '' AS category "
                f"FROM ({_alerts_attributed(keep)}) al")
    return sql


def red_ack_on_time_sql() -> str:
    red = f"a.severity = '{Severity.RED}'"
    return (f"SELECT episode_id, CASE WHEN acknowledged_at IS NOT NULL AND acknowledged_at <= deadline "
            f"THEN 1 ELSE 0 END AS num, 1 AS den, NULL::float AS value, '' AS category "
            f"FROM (SELECT al.*, al.raised_at + COALESCE(pol.after, %(default_promise)s) AS deadline "
            f"FROM ({_alerts_attributed(red)}) al "
            f"LEFT JOIN {T_POLICY} pol ON pol.care_team_id = al.team_id) x WHERE deadline <= %(now)s")


def review_on_time_sql() -> str:
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


def reading_adherence_sql() -> str:
    """Expected days: the union of the patient's lendings clipped to the episode up to yesterday
    (overlapping lendings merged as islands); kept days: distinct Danish days with a reading
    that is not marked erroneous, inside one of those lendings."""
    last = "LEAST(COALESCE(ep.stop, %(today)s::date), %(today)s::date - 1)"
    return (
        f"WITH iv AS (SELECT ep.episode_id, ep.patient_id, GREATEST(l.lent_from, ep.start) AS a, "
        f"LEAST(COALESCE(l.returned_on, l.lent_to, {last}), {last}) AS b "
        f"FROM ep JOIN {T_LENDING} l ON l.patient_id = ep.patient_id), "
        f"has AS (SELECT DISTINCT episode_id FROM iv), "
        f"ivs AS (SELECT * FROM iv WHERE a <= b), "
        f"marks AS (SELECT episode_id, a, b, CASE WHEN a <= max(b) OVER (PARTITION BY episode_id ORDER BY a, b "
        f"ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) + 1 THEN 0 ELSE 1 END AS fresh FROM ivs), "
        f"isl AS (SELECT episode_id, a, b, sum(fresh) OVER (PARTITION BY episode_id ORDER BY a, b) AS k FROM marks), "
        f"den AS (SELECT episode_id, sum(hi - lo + 1) AS days FROM (SELECT episode_id, min(a) AS lo, max(b) AS hi "
        f"FROM isl GROUP BY episode_id, k) m GROUP BY episode_id), "
        f"rd AS (SELECT DISTINCT patient_id, (effective_at {LOCAL})::date AS day FROM {T_READING} "
        f"WHERE erroneous_at IS NULL AND patient_id IN (SELECT patient_id FROM has JOIN ep USING (episode_id))), "
        f"kept AS (SELECT ivs.episode_id, count(DISTINCT rd.day) AS days FROM ivs "
        f"JOIN rd ON rd.patient_id = ivs.patient_id AND rd.day BETWEEN ivs.a AND ivs.b GROUP BY ivs.episode_id) "
        f"SELECT den.episode_id, COALESCE(kept.days, 0) AS num, den.days AS den, NULL::float AS value, "
        f"'' AS category FROM den LEFT JOIN kept USING (episode_id) WHERE den.days > 0")


def missed_questionnaire_sql() -> str:
    return (f"SELECT o.episode_id, count(*) FILTER (WHERE o.status = '{OccurrenceStatus.MISSED}') AS num, "
            f"count(*) AS den, NULL::float AS value, '' AS category FROM {T_OCCURRENCE} o "
            f"WHERE o.episode_id IN (SELECT episode_id FROM ep) "
            f"AND o.status IN ('{OccurrenceStatus.COMPLETED}', '{OccurrenceStatus.MISSED}') GROUP BY o.episode_id")


# --- cells ---------------------------------------------------------------------------------------

SHARED_EPISODES, SHARED_ALERTS = "tmp_outcomes_ep", "tmp_outcomes_alerts"


def shared_tables_create(cursor: CursorWrapper, today: date) -> None:
    """The refresh's shared rows, once for all indicators: the episodes in scope and the alerts
    attributed to them, as temporary tables (this connection only, dropped by
    ``shared_tables_drop``)."""
    inner = episodes_cte(Filters()).removeprefix("ep AS MATERIALIZED (").removesuffix(")")
    cursor.execute(f"CREATE TEMP TABLE {SHARED_EPISODES} AS {inner}", params(Filters(), today))
    cursor.execute(f"CREATE TEMP TABLE {SHARED_ALERTS} AS WITH ep AS (SELECT * FROM {SHARED_EPISODES}) "
                   f"{alerts_base()}")
    cursor.execute(f"ANALYZE {SHARED_EPISODES}; ANALYZE {SHARED_ALERTS}")


def shared_tables_drop(cursor: CursorWrapper) -> None:
    cursor.execute(f"DROP TABLE IF EXISTS {SHARED_EPISODES}; DROP TABLE IF EXISTS {SHARED_ALERTS}")


def cells_query(units_sql: str, filters: Filters, categories: tuple[str, ...], shared: bool = False) -> str:
    """One row per cell (outcomes.indicator_core.Cell): programme, team, sex, age band, month;
    patients, units, numerator, denominator, the values (a distribution's, sorted) and the count
    per category (zeros left out, as the Python side leaves them out)."""
    cats = ", ".join(f"'{c}', NULLIF(count(*) FILTER (WHERE u.category = '{c}'), 0)" for c in categories)
    cat_sql = f"jsonb_strip_nulls(jsonb_build_object({cats}))" if categories else "'{}'::jsonb"
    ctes = (f"ep AS (SELECT * FROM {SHARED_EPISODES}), al_all AS (SELECT * FROM {SHARED_ALERTS})" if shared
            else f"{episodes_cte(filters)}, al_all AS MATERIALIZED ({alerts_base()})")
    return (
        f"WITH {ctes}, u AS ({units_sql}) "
        f"SELECT ep.program_id, ep.team_id, ep.sex, ep.age_band, ep.month, count(DISTINCT ep.patient_id), "
        f"count(*), COALESCE(sum(u.num), 0)::float, COALESCE(sum(u.den), 0)::float, "
        f"COALESCE(jsonb_agg(u.value ORDER BY u.value) FILTER (WHERE u.value IS NOT NULL), '[]'::jsonb), "
        f"{cat_sql} FROM u JOIN ep USING (episode_id) "
        f"GROUP BY ep.program_id, ep.team_id, ep.sex, ep.age_band, ep.month")


def supported(using: str = "default") -> bool:
    return connections[using].vendor == "postgresql"


def cells_rows(indicator: Any, filters: Filters, today: date, now: datetime | None = None,
               using: str = "default") -> list[tuple[Any, ...]]:
    """The cells of one indicator over one scope, computed in PostgreSQL."""
    sql = cells_query(indicator.sql(), filters, tuple(c for c, _label in indicator.categories))
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params(filters, today, now))
        return cursor.fetchall()


def as_timedelta(value: Any) -> timedelta:
    return value if isinstance(value, timedelta) else timedelta(seconds=float(value))
