"""Evaluating rules and turning their findings into alerts.

One alert per (patient, rule) while it is unresolved: a new finding is added to the open alert
as evidence (and makes it red if the finding is red) instead of raising a second one. After an
alert is resolved, the rule's ``cooldown`` keeps findings of the same or a lower colour on the
resolved alert. Findings a clinician's snooze covers are dropped. A rule that raises an
exception is recorded as a RuleError and the other rules still run.

Clinicians' changes to alerts (acknowledge, assign, resolve, ...) live in alerts.lifecycle."""

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext
from psycopg.types.datetime import TimestamptzLoader

from alerts.live import alerts_broadcast
from alerts.models import (
    Alert,
    AlertEvent,
    AlertFinding,
    EventKind,
    Rule,
    RuleError,
    RuleOverride,
    Severity,
    Snooze,
    Status,
)
from alerts.rules import KINDS, Finding, kinds_for, merged_params, parse_params
from alerts.rules.context import Context
from alerts.safety import safety_rules_ensure
from alerts.selectors import rules_running_for
from monitoring.ingest import one_waiting_task
from monitoring.models import PendingEvaluation, Reading
from patients.access import episodes_in_care
from patients.models import TreatmentEpisode
from questionnaires.models import QuestionnaireResponse, ResponseStatus
from questionnaires.review import response_colour_raise
from schedules.models import MissedOccurrence

log = logging.getLogger(__name__)

_RANK = {Severity.YELLOW: 1, Severity.RED: 2}
# Pauses and programme episodes are Danish calendar days (as in schedules.services).
_TZ = ZoneInfo("Europe/Copenhagen")


def _rules_for(patient_id: Any, on_date: Any, kinds: list[str]) -> list[Rule]:
    return list(rules_running_for(patient_id, on_date).filter(kind__in=kinds).distinct())


def _reading_rules(readings: list[Reading], kinds: list[str], patient_ids: set[Any]) -> dict[int, list[Rule]]:
    """The rules that apply to each reading, with two queries for the whole batch.

    Same semantics as ``_rules_for`` per reading: the active rules of every programme in which
    the patient has an episode covering the reading's date (a late upload is judged by the day
    it was measured, not the day it arrived). ``patient_ids``: the readings' patients.
    Readings with the same rules share one list object (run_readings relies on it)."""
    episodes = list(
        TreatmentEpisode.objects.filter(patient_id__in=patient_ids)
        .values_list("patient_id", "program_id", "treatment_start", "end")
    )
    rules_by_program: dict[Any, list[Rule]] = {}
    for rule in Rule.objects.filter(
        active=True, kind__in=kinds, program_id__in={e[1] for e in episodes}
    ).order_by("id"):
        rules_by_program.setdefault(rule.program_id, []).append(rule)
    # Episodes run on Danish calendar days: 00:30 in Copenhagen is already the start day. Each
    # episode becomes an instant range once, so a reading is placed by comparing instants.
    by_patient: dict[Any, list[tuple[Any, datetime, datetime | None]]] = {}
    for patient_id, program_id, start, end in episodes:
        if program_id in rules_by_program:
            by_patient.setdefault(patient_id, []).append((
                program_id, datetime.combine(start, time.min, _TZ),
                None if end is None else datetime.combine(end + timedelta(days=1), time.min, _TZ),
            ))
    combined: dict[tuple[Any, ...], list[Rule]] = {}  # one list per set of programmes

    def rules_at(patient_id: Any, at: datetime) -> list[Rule]:
        programs = tuple(sorted({
            program_id
            for program_id, starts, ends in by_patient.get(patient_id, ())
            if starts <= at and (ends is None or at < ends)
        }))
        if programs not in combined:
            combined[programs] = [rule for p in programs for rule in rules_by_program[p]]
        return combined[programs]

    grouped: dict[Any, list[Reading]] = defaultdict(list)
    for reading in readings:
        grouped[reading.patient_id].append(reading)
    found: dict[int, list[Rule]] = {}
    for patient_id, theirs in grouped.items():
        first = min(r.effective_at for r in theirs)
        last = max(r.effective_at for r in theirs)
        bounds = [b for _, starts, ends in by_patient.get(patient_id, ()) for b in (starts, ends) if b is not None]
        if not any(first < b <= last for b in bounds):
            # No episode starts or ends between the patient's first and last reading (the usual
            # batch): the same rules apply to all of them.
            same = rules_at(patient_id, first)
            for reading in theirs:
                found[reading.pk] = same
        else:
            for reading in theirs:
                found[reading.pk] = rules_at(patient_id, reading.effective_at)
    return found


def readings_evaluate(*, batch_ids: list[int]) -> int:
    """Run the reading rules on the readings of the given pending batches
    (monitoring.models.PendingEvaluation). Returns how many readings it evaluated.

    Each batch is claimed (its row deleted) in the same transaction that raises its alerts: if
    the worker dies half-way, both roll back and the re-delivered task does the work; if the
    task runs twice, the second finds nothing to claim. SKIP LOCKED lets a concurrent sweep
    pass over batches another worker is evaluating right now. Readings a clinician marked
    erroneous are not evaluated at all."""
    kinds = kinds_for("reading")
    now = timezone.now()
    with transaction.atomic():
        _commit_asynchronously()
        readings = _claim_readings(batch_ids)
        if not readings:
            return 0
        patient_ids = {r.patient_id for r in readings}
        rules = _reading_rules(readings, kinds, patient_ids)
        evaluator = _Evaluator(Context(now=now), patient_ids, rules)
        evaluator.run_readings(readings, rules)
        findings_apply(evaluator.pending, now=now)
        _record_errors(evaluator.errors)
    return len(readings)


def _commit_asynchronously() -> None:
    """Let this transaction's commit return before its WAL reaches the disk (ADR 0009).

    Safe for an evaluation because it is all-or-nothing: a database crash in the next fraction
    of a second can lose the whole transaction — the claim with the alerts — never part of it,
    and the pending batch is then there again for the sweep. The readings themselves were
    committed durably by ingest. Any later ordinary commit flushes this one too."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


_CLAIM_SQL = """
    WITH asked AS (
        SELECT id FROM monitoring_pendingevaluation WHERE id = ANY(%(ids)s)
        FOR UPDATE SKIP LOCKED
    ), waiting AS (
        -- Coalescing: other waiting batches created since %(since)s, oldest first. When the
        -- worker falls behind (a burst of single readings, a bulk upload) one task evaluates
        -- the backlog together and pays the fixed cost of a task once. At most 30 more batches
        -- (≤ 30,000 readings). With one waiting task (ADR 0011) batches rely on it however old.
        SELECT id FROM monitoring_pendingevaluation
        WHERE created_at >= %(since)s AND NOT (id = ANY(%(ids)s))
        ORDER BY id LIMIT %(extra)s FOR UPDATE SKIP LOCKED
    ), claimed AS (
        DELETE FROM monitoring_pendingevaluation AS p
        USING (SELECT id FROM asked UNION SELECT id FROM waiting) AS c WHERE p.id = c.id
        RETURNING p.reading_ids
    )
    SELECT r.id, r.patient_id, r.device_id, r.measure, r.value, r.value2, r.unit, r.effective_at,
           r.received_at, r.unusual
    FROM monitoring_reading AS r
    -- ARRAY(...) is computed once, then an index scan on the ids (IN (SELECT ...) was planned
    -- as a scan of the whole table: the planner cannot see how many ids the jsonb holds).
    WHERE r.id = ANY(ARRAY(SELECT jsonb_array_elements_text(reading_ids)::bigint FROM claimed))
      AND r.erroneous_at IS NULL
    ORDER BY r.id
"""

# Coalescing takes at most this many other pending batches into a task: enough for what a bulk
# upload of 100-reading requests commits while the worker gathers (ADR 0013), few enough that a
# task of full 1,000-reading batches stays well under a second.
_COALESCE_MAX = 30
# The most batches one claim takes: its own (when it has one) and _COALESCE_MAX others.
CLAIM_MAX_BATCHES = 1 + _COALESCE_MAX


@dataclass(slots=True)
class ClaimedReading:
    """What a rule sees of a claimed reading (the fields a Reading has, without building a
    model instance per row — at 1,000 rows a batch that is most of the claim's cost)."""

    id: int
    patient_id: Any
    device_id: int | None
    measure: str
    value: Decimal
    value2: Decimal | None
    unit: str
    effective_at: datetime
    received_at: datetime
    unusual: bool

    @property
    def pk(self) -> int:
        return self.id


def _coalescing_since() -> datetime:
    """The oldest waiting batch a task takes besides its own. With one waiting task at a time
    (ADR 0011) batches committed while it waited did not send a task of their own: it takes them
    however long it waited (a worker restart, a long task before it). Otherwise the batches
    received in the last ALERTS_COALESCE_SECONDS, which most likely still wait for their own."""
    if one_waiting_task():
        return datetime(2000, 1, 1, tzinfo=UTC)
    return timezone.now() - timedelta(seconds=settings.ALERTS_COALESCE_SECONDS)


def _claim_readings(batch_ids: list[int]) -> list[Any]:
    """Claim (delete) the given pending batches that are not being evaluated elsewhere right now
    (SKIP LOCKED) and return their readings that are not erroneous, in id order; also up to
    _COALESCE_MAX other waiting batches, oldest first (_coalescing_since).

    On PostgreSQL one statement (DELETE … RETURNING feeding the SELECT); elsewhere (SQLite, no row locks) the
    ORM. Must run inside the evaluating transaction."""
    since = _coalescing_since()
    if connection.vendor == "postgresql":
        # psycopg's own (C) timestamptz loader: Django's per-connection loader is a Python
        # subclass that made reading the timestamps of a 1,000-reading batch cost more than the
        # query. The times come back aware, in UTC (Django sets the session's TimeZone).
        with connection.connection.cursor() as raw:
            raw.adapters.register_loader("timestamptz", TimestamptzLoader)
            raw.execute(_CLAIM_SQL, {
                "ids": list(batch_ids),
                "since": since,
                "extra": _COALESCE_MAX if settings.ALERTS_COALESCE_SECONDS else 0,
            })
            return [ClaimedReading(*row) for row in raw.fetchall()]
    batches = list(
        PendingEvaluation.objects.select_for_update(skip_locked=True).filter(id__in=batch_ids)
        .values_list("id", "reading_ids")
    )
    if settings.ALERTS_COALESCE_SECONDS:  # as on PostgreSQL: a task may come with no batch of its own
        batches += list(
            PendingEvaluation.objects.select_for_update(skip_locked=True).filter(created_at__gte=since)
            .exclude(id__in=batch_ids).order_by("id").values_list("id", "reading_ids")[:_COALESCE_MAX]
        )
    PendingEvaluation.objects.filter(id__in=[b for b, _ in batches]).delete()
    return list(
        Reading.objects.filter(id__in=[i for _, ids in batches for i in ids], erroneous_at=None).order_by("id")
    )


@dataclass(slots=True)
class Pending:
    """A finding on its way to becoming (part of) an alert."""

    rule: Rule
    rule_version: int
    patient_id: Any
    source_key: str
    finding: Finding

    @property
    def severity(self) -> str:
        return self.finding.severity or self.rule.severity


class _Evaluator:
    """Runs kinds with each patient's effective parameters (rule params merged with the
    patient's current override, each parsed once per batch) and collects findings and errors."""

    def __init__(self, ctx: Context, patient_ids: set[Any], rules: dict[Any, list[Rule]]) -> None:
        self.ctx = ctx
        self.pending: list[Pending] = []
        self.errors: list[RuleError] = []
        rule_ids = {rule.pk for group in rules.values() for rule in group}
        self._overrides = {
            (o.rule_id, o.patient_id): o.params
            for o in RuleOverride.objects.filter(rule_id__in=rule_ids, patient_id__in=patient_ids, ended_at=None)
        }
        self._parsed: dict[tuple[Any, Any], Any] = {}

    def params(self, rule: Rule, patient_id: Any) -> Any:
        override = self._overrides.get((rule.pk, patient_id))
        key = (rule.pk, patient_id if override is not None else None)
        if key not in self._parsed:
            self._parsed[key] = parse_params(rule.kind, merged_params(rule.params, override))
        return self._parsed[key]

    def run_readings(self, readings: list[Any], rules: dict[int, list[Rule]]) -> None:
        """Run each reading's rules (``rules``: reading id -> its rules, as _reading_rules
        gives them). The same as ``run`` per reading and rule, with the kind function and the
        effective parameters looked up once per patient and set of rules instead of per reading:
        on a bulk upload's claim of thousands of readings that lookup was most of the loop."""
        ctx = self.ctx
        # (rule, kind function, parameters or None, why the parameters did not parse or None)
        plans: dict[tuple[int, Any], list[tuple[Rule, Any, Any, Exception | None]]] = {}
        for reading in readings:
            theirs = rules[reading.id]
            if not theirs:
                continue
            key = (id(theirs), reading.patient_id)
            plan = plans.get(key)
            if plan is None:
                plan = plans[key] = []
                for rule in theirs:
                    try:
                        plan.append((rule, KINDS[rule.kind].evaluate_reading, self.params(rule, reading.patient_id),
                                     None))
                    except Exception as exc:  # noqa: BLE001 - recorded below for every reading, as run does
                        plan.append((rule, None, None, exc))
            for rule, evaluate, params, invalid in plan:
                if invalid is not None:
                    self._failed(rule, f"reading:{reading.id}", invalid)
                    continue
                try:
                    finding = evaluate(params, reading, ctx)
                except DatabaseError:
                    raise  # the database, not the rule: roll the batch back and let the task retry
                except Exception as exc:  # noqa: BLE001 - any rule bug is recorded, never blocks the others
                    self._failed(rule, f"reading:{reading.id}", exc)
                    continue
                if finding is not None:
                    self.pending.append(
                        Pending(rule, rule.version, reading.patient_id, f"reading:{reading.id}", finding))

    def run(self, rule: Rule, patient_id: Any, source_key: str, method: str, subject: Any) -> None:
        try:
            finding = getattr(KINDS[rule.kind], method)(self.params(rule, patient_id), subject, self.ctx)
        except DatabaseError:
            raise  # the database, not the rule: roll the batch back and let the task retry
        except Exception as exc:  # noqa: BLE001 - any rule bug is recorded, never blocks the others
            self._failed(rule, source_key, exc)
            return
        if finding is not None:
            self.pending.append(Pending(rule, rule.version, patient_id, source_key, finding))

    def _failed(self, rule: Rule, source_key: str, exc: Exception) -> None:
        log.exception("rule %s (v%s) failed on %s", rule.pk, rule.version, source_key, exc_info=exc)
        self.errors.append(RuleError(rule=rule, rule_version=rule.version, source_key=source_key,
                                     error=f"{type(exc).__name__}: {exc}"))


def _record_errors(errors: list[RuleError]) -> None:
    if errors:
        RuleError.objects.bulk_create(errors)


def alerts_lock_patients(patient_ids: set[Any]) -> None:
    """Serialise alert changes per patient across workers (the partial unique constraint on
    unresolved alerts backs this up). Taken in a fixed order, so two batches cannot deadlock."""
    if connection.vendor != "postgresql" or not patient_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext('alerts:' || k)) FROM unnest(%s::text[]) AS k ORDER BY k",
            [sorted(str(p) for p in patient_ids)],
        )


def _snoozed(pending: Pending, snoozes: dict[Any, list[Snooze]], now: datetime) -> bool:
    if pending.finding.snooze is None:
        return False
    measure, component, value = pending.finding.snooze
    return any(s.covers(measure, component, value, now) for s in snoozes.get(pending.patient_id, ()))


def findings_apply(pending: list[Pending], *, now: datetime) -> list[int]:
    """Turn findings into alerts; returns the ids of the alerts raised or changed. A fixed
    number of queries per batch, not per finding. Must run inside the evaluating transaction."""
    if not pending:
        return []
    patient_ids = {p.patient_id for p in pending}
    rule_ids = {p.rule.pk for p in pending}
    alerts_lock_patients(patient_ids)
    seen = set(
        AlertFinding.objects.filter(rule_id__in=rule_ids, source_key__in={p.source_key for p in pending})
        .values_list("rule_id", "source_key")
    )
    snoozes: dict[Any, list[Snooze]] = defaultdict(list)
    for snooze in Snooze.objects.filter(patient_id__in=patient_ids, ended_at=None, until__gt=now):
        snoozes[snooze.patient_id].append(snooze)
    unresolved = {
        (a.patient_id, a.rule_id): a
        for a in Alert.objects.filter(patient_id__in=patient_ids, rule_id__in=rule_ids).exclude(
            status=Status.RESOLVED)
    }
    cooling: dict[tuple[Any, Any], Alert] = {}
    rules_cooling = {p.rule.pk: p.rule.cooldown for p in pending if p.rule.cooldown}
    if rules_cooling:
        for alert in Alert.objects.filter(
            patient_id__in=patient_ids, rule_id__in=rules_cooling, status=Status.RESOLVED,
            resolved_at__gte=now - max(rules_cooling.values()),
        ).order_by("resolved_at"):
            if alert.resolved_at >= now - rules_cooling[alert.rule_id]:
                cooling[(alert.patient_id, alert.rule_id)] = alert  # the latest wins

    new: list[Alert] = []
    changed: dict[int, Alert] = {}
    findings: list[tuple[Alert, Pending]] = []
    events: list[tuple[Alert, str, dict[str, Any]]] = []
    # One evidence-added event per alert and batch, listing its sources: a batch of a thousand
    # readings adds its findings to the alert in one change, not a thousand.
    added: dict[int, dict[str, Any]] = {}  # id(alert) -> that event's data
    for p in pending:
        if (p.rule.pk, p.source_key) in seen or _snoozed(p, snoozes, now):
            continue
        seen.add((p.rule.pk, p.source_key))
        key = (p.patient_id, p.rule.pk)
        alert = unresolved.get(key)
        cooled = alert is None and key in cooling and _RANK[p.severity] <= _RANK[cooling[key].severity]
        if alert is None and cooled:
            alert = cooling[key]
        if alert is None:
            alert = Alert(patient_id=p.patient_id, rule=p.rule, rule_version=p.rule_version, severity=p.severity,
                          reason=p.finding.reason, evidence=p.finding.evidence, source_key=p.source_key,
                          raised_at=now, updated_at=now)
            new.append(alert)
            unresolved[key] = alert
            events.append((alert, EventKind.RAISED, {"source": p.source_key}))
        else:
            data = added.get(id(alert))
            if data is None:
                data = added[id(alert)] = {"sources": [], "severity": p.severity}
                events.append((alert, EventKind.EVIDENCE_ADDED, data))
            data["sources"].append(p.source_key)
            if _RANK[p.severity] > _RANK[data["severity"]]:
                data["severity"] = p.severity
            if cooled:
                data["cooldown"] = True
            else:
                alert.reason, alert.evidence, alert.updated_at = p.finding.reason, p.finding.evidence, now
                if _RANK[p.severity] > _RANK[alert.severity]:
                    data.setdefault("from_severity", alert.severity)
                    alert.severity = p.severity
                    if alert.status == Status.ACKNOWLEDGED:
                        # A worse sign after someone looked: it needs looking at again.
                        alert.status = Status.OPEN
                        data["reopened"] = True
                if alert.pk is not None:
                    changed[alert.pk] = alert
        findings.append((alert, p))

    Alert.objects.bulk_create(new)
    if changed:
        Alert.objects.bulk_update(list(changed.values()), ["reason", "evidence", "severity", "status", "updated_at"])
    _findings_insert(findings, now)
    AlertEvent.objects.bulk_create([AlertEvent(alert=a, kind=k, at=now, data=d) for a, k, d in events])
    ids = sorted({a.pk for a in new} | {a.pk for a, _, d in events if not d.get("cooldown")})
    if ids:
        transaction.on_commit(lambda: alerts_broadcast(ids))
    return ids


_FINDING_COLUMNS = ("alert_id", "rule_id", "rule_version", "source_key", "severity", "reason", "evidence", "found_at")


def _findings_insert(findings: list[tuple[Alert, Pending]], now: datetime) -> None:
    """Store the findings. On PostgreSQL with COPY: a batch with a few hundred low readings
    spent more in bulk_create's statement building than in the rules. The (rule, source_key)
    unique constraint still guards against doubles; the caller checked under the patient lock."""
    if connection.vendor != "postgresql":
        AlertFinding.objects.bulk_create([
            AlertFinding(alert=a, rule=p.rule, rule_version=p.rule_version, source_key=p.source_key,
                         severity=p.severity, reason=p.finding.reason, evidence=p.finding.evidence, found_at=now)
            for a, p in findings
        ])
        return
    if not findings:
        return
    with connection.cursor() as cursor:
        with cursor.cursor.copy(
                f"COPY {AlertFinding._meta.db_table} ({', '.join(_FINDING_COLUMNS)}) FROM STDIN") as copy:
            for a, p in findings:
                copy.write_row((a.pk, p.rule.pk, p.rule_version, p.source_key, p.severity, str(p.finding.reason),
                                orjson.dumps(p.finding.evidence, option=orjson.OPT_NON_STR_KEYS).decode(), now))


def response_evaluate(*, response_id: int) -> int:
    kinds = kinds_for("response")
    now = timezone.now()
    with transaction.atomic():
        response = (
            QuestionnaireResponse.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("questionnaire")
            .filter(id=response_id, evaluated_at=None, status=ResponseStatus.COMPLETED)
            .first()
        )
        if response is None:
            return 0
        QuestionnaireResponse.objects.filter(id=response_id).update(evaluated_at=now)
        day = timezone.localdate(response.authored_at, _TZ)
        # The instrument's safety net in each of the patient's programmes, created now if it is
        # missing (a programme set up before issue 19, a questionnaire answered outside its
        # programme's list): no red answer and no "contact me" reaches nobody.
        # The nets run in every programme whose episode a team still looks at on the day the
        # answer arrives — not started yet (a baseline), running, or in the grace period after it
        # ended — while the programme's own rules judge running episodes only.
        in_care = _programs_in_care(response.patient_id)
        safety_rules_ensure(program_ids=in_care, urls=[response.questionnaire.url])
        rules = _rules_for(response.patient_id, day, kinds)
        seen = {r.pk for r in rules}
        rules += [r for r in Rule.objects.filter(program_id__in=in_care, kind="safety", active=True,
                                                 safety_net_for=response.questionnaire.url)
                  if r.pk not in seen]
        evaluator = _Evaluator(Context(now=now), {response.patient_id}, {response.pk: rules})
        for rule in rules:
            evaluator.run(rule, response.patient_id, f"response:{response.pk}", "evaluate_response", response)
        findings_apply(_safety_stands_back(evaluator, response.patient_id), now=now)
        _record_errors(evaluator.errors)
        _missed_answered_late(response, now)
        # The review queue sorts the response at least as high as the colour any open alert gave
        # this response's finding (a score or combination rule may judge red what the answer
        # colours alone call green). The finding's colour, not the alert's: an alert that is red
        # from earlier evidence does not make today's answers red.
        worst = None
        for severity in AlertFinding.objects.filter(source_key=f"response:{response.pk}").exclude(
                alert__status=Status.RESOLVED).values_list("severity", flat=True):
            if worst is None or _RANK[severity] > _RANK[worst]:
                worst = severity
        if worst is not None:
            response_colour_raise(response_id=response.pk, colour=worst)
    return 1


def _missed_answered_late(response: QuestionnaireResponse, now: datetime) -> None:
    """A late upload completed an occurrence whose miss the rules had already judged: every
    unresolved alert that holds that miss gets the answer as a finding of its own, and its
    reason (what the worklist shows) says so.

    The alert is left for the nurse to resolve rather than resolved here: she may already have
    acted on it (a call booked), a "missed N in a row" alert can rest on other misses that still
    stand, and a resolution records what a clinician judged — "No action needed" is one click.
    (Misses the rules had not judged yet were closed by schedules.services.occurrence_complete
    and raise nothing.)"""
    missed = list(MissedOccurrence.objects.filter(answered_late_by=response).select_related("occurrence"))
    if not missed:
        return
    by_key = {f"missed:{m.pk}": m for m in missed}
    found = (AlertFinding.objects.filter(source_key__in=by_key, alert__status__in=(Status.OPEN, Status.ACKNOWLEDGED))
             .select_related("alert"))
    alerts = {f.alert_id: (f.alert, by_key[f.source_key]) for f in found}
    if not alerts:
        return
    alerts_lock_patients({response.patient_id})
    source_key = f"late:{response.pk}"

    def shown(moment: datetime) -> str:
        return date_format(moment.astimezone(_TZ), "DATETIME_FORMAT")

    for alert, miss in alerts.values():
        reason = gettext("The questionnaire due %(due)s was answered on %(authored)s, within its window, "
                         "but the answer arrived only on %(received)s.") % {
            "due": shown(miss.occurrence.due_at), "authored": shown(response.authored_at),
            "received": shown(response.received_at)}
        evidence = {"answered_late": True, "response_id": response.pk, "missed_id": miss.pk,
                    "occurrence_id": miss.occurrence_id, "due_at": miss.occurrence.due_at.isoformat(),
                    "authored_at": response.authored_at.isoformat(),
                    "received_at": response.received_at.isoformat()}
        _, created = AlertFinding.objects.get_or_create(
            rule_id=alert.rule_id, source_key=source_key,
            defaults={"alert": alert, "rule_version": alert.rule_version, "severity": alert.severity,
                      "reason": reason, "evidence": evidence, "found_at": now})
        if not created:
            continue
        Alert.objects.filter(pk=alert.pk).update(reason=reason, evidence=evidence, updated_at=now)
        AlertEvent.objects.create(alert=alert, kind=EventKind.EVIDENCE_ADDED, at=now,
                                  data={"sources": [source_key], "severity": alert.severity, "answered_late": True})
    ids = sorted(alerts)
    transaction.on_commit(lambda: alerts_broadcast(ids))


def _programs_in_care(patient_id: Any) -> list[Any]:
    """Programmes with an episode of the patient's that a care team can see today
    (patients.access.episodes_in_care)."""
    return list(episodes_in_care().filter(patient_id=patient_id).values_list("program_id", flat=True).distinct())


def _safety_stands_back(evaluator: "_Evaluator", patient_id: Any) -> list[Pending]:
    """The findings, without an instrument safety net's finding that another rule of the same
    programme reports on the same response at least as red — one alert for the nurse, not two:
    an ``answer-severity`` rule asking about the same contact question covers it all; an
    ``answer`` rule on the contact question covers a finding that is only the contact request.

    Only where that other alert is sure to be seen: the other rule fired (so it is active) and
    keeps no cooldown (a cooled finding is filed on a resolved alert without telling anyone).
    Otherwise the safety net's finding stays, even if that makes two."""
    others = [p for p in evaluator.pending if p.rule.kind in ("answer-severity", "answer") and not p.rule.cooldown]
    if not others:
        return evaluator.pending

    def covered(net: Pending) -> bool:
        contact = evaluator.params(net.rule, patient_id).contact_link_id
        only_contact = all(a["link_id"] == contact for a in net.finding.evidence.get("answers", []))
        for other in others:
            if (other.rule.program_id, other.source_key) != (net.rule.program_id, net.source_key) \
                    or _RANK[other.severity] < _RANK[net.severity]:
                continue
            params = evaluator.params(other.rule, patient_id)
            if other.rule.kind == "answer-severity" and params.contact_link_id == contact:
                return True
            if other.rule.kind == "answer" and only_contact and params.link_id == contact:
                return True
        return False

    return [p for p in evaluator.pending if p.rule.kind != "safety" or not covered(p)]


def responses_sweep_unevaluated(*, older_than_seconds: int = 30, limit: int = 1000) -> int:
    from questionnaires.services import _enqueue_evaluation

    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    ids = list(
        QuestionnaireResponse.objects.filter(
            evaluated_at=None, status=ResponseStatus.COMPLETED, received_at__lt=cutoff
        )
        .order_by("received_at")
        .values_list("id", flat=True)[:limit]
    )
    for response_id in ids:
        _enqueue_evaluation(response_id)
    return len(ids)


# --- missed questionnaires -----------------------------------------------------------------------

def missed_evaluate(*, now: datetime | None = None, batch: int = 200) -> int:
    """Run the "missed" rules on missed occurrences (schedules.models.MissedOccurrence) whose
    grace has passed. Returns how many rows it claimed (finished with).

    Each rule waits for its own ``grace_hours`` after the deadline. A row is claimed
    (``processed_at`` set, in the transaction that raises its alerts) once every missed rule of
    the patient's programmes has had its grace period; a rule whose grace ended earlier already
    ran on an earlier sweep, and running it again is harmless — a finding already recorded for
    (rule, "missed:<id>") adds nothing. Beat runs this every few minutes, so a lost run only
    delays alerts."""
    now = now or timezone.now()
    kinds = kinds_for("missed")
    claimed, after = 0, 0
    while True:
        # Keyset pages over the unprocessed rows (index missed_unprocessed): rows still waiting
        # for a long grace period do not hide the ones behind them.
        ids = list(
            MissedOccurrence.objects.filter(processed_at=None, id__gt=after, occurrence__closes_at__lte=now)
            .order_by("id").values_list("id", flat=True)[:batch]
        )
        if not ids:
            return claimed
        after = ids[-1]
        claimed += sum(_missed_evaluate_one(missed_id, kinds, now) for missed_id in ids)


def _missed_grace(evaluator: "_Evaluator", rule: Rule, patient_id: Any) -> timedelta:
    try:
        return timedelta(hours=float(evaluator.params(rule, patient_id).grace_hours))
    except Exception:  # noqa: BLE001 - invalid params: evaluator.run records the error now
        return timedelta(0)


def _missed_evaluate_one(missed_id: int, kinds: list[str], now: datetime) -> int:
    with transaction.atomic():
        missed = (
            MissedOccurrence.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("occurrence", "occurrence__questionnaire")
            .filter(pk=missed_id, processed_at=None)
            .first()
        )
        if missed is None:
            return 0  # claimed meanwhile, or being evaluated by another worker right now
        occurrence = missed.occurrence
        patient_id = occurrence.patient_id
        rules = _rules_for(patient_id, occurrence.due_at.astimezone(_TZ).date(), kinds)
        evaluator = _Evaluator(Context(now=now), {patient_id}, {missed.pk: rules})
        source_key = f"missed:{missed.pk}"
        waiting = False
        for rule in rules:
            if occurrence.closes_at + _missed_grace(evaluator, rule, patient_id) > now:
                waiting = True
                continue
            evaluator.run(rule, patient_id, source_key, "evaluate_missed", missed)
        done = 0
        if not waiting:
            done = MissedOccurrence.objects.filter(pk=missed.pk, processed_at=None).update(processed_at=now)
        findings_apply(evaluator.pending, now=now)
        # A rule re-run while the row waits for a longer grace would record the same error again.
        known = set(RuleError.objects.filter(source_key=source_key).values_list("rule_id", flat=True))
        _record_errors([e for e in evaluator.errors if e.rule_id not in known])
    return done
