"""Evaluating rules and turning their findings into alerts.

One alert per (patient, rule) while it is unresolved: a new finding is added to the open alert
as evidence (and makes it red if the finding is red) instead of raising a second one. After an
alert is resolved, the rule's ``cooldown`` keeps findings of the same or a lower colour on the
resolved alert. Findings a clinician's snooze covers are dropped. A rule that raises an
exception is recorded as a RuleError and the other rules still run.

Clinicians' changes to alerts (acknowledge, assign, resolve, ...) live in alerts.lifecycle."""

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID
from zoneinfo import ZoneInfo

import orjson
import pydantic
from django.db import DatabaseError, connection, transaction

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
from alerts.rules import KINDS, Finding, merged_params, parse_params
from alerts.rules.context import Context, patient_of
from alerts.selectors import rules_running_for
from patients.models import TreatmentEpisode

if TYPE_CHECKING:
    from monitoring.models import Reading
    from monitoring.rows import ReadingRow
    from questionnaires.models import QuestionnaireResponse
    from schedules.models import MissedOccurrence

log = logging.getLogger(__name__)

RANK: dict[str, int] = {Severity.YELLOW: 1, Severity.RED: 2}
# Pauses and programme episodes are Danish calendar days (as in schedules.services).
TZ = ZoneInfo("Europe/Copenhagen")


def rules_for(patient_id: UUID, on_date: date, kinds: list[str]) -> list[Rule]:
    return list(rules_running_for(patient_id, on_date).filter(kind__in=kinds).distinct())


class ReadingFacts(Protocol):
    """What evaluation needs of a reading: a Reading, or the plain row a claim reads
    (monitoring.rows.ReadingRow)."""

    @property
    def pk(self) -> int: ...
    @property
    def patient_id(self) -> UUID | None: ...
    @property
    def effective_at(self) -> datetime: ...


def reading_rules(readings: Sequence[ReadingFacts], kinds: list[str], patient_ids: set[UUID]) -> dict[int, list[Rule]]:
    """The rules that apply to each reading, with two queries for the whole batch.

    Same semantics as ``rules_for`` per reading: the active rules of every programme in which
    the patient has an episode covering the reading's date (a late upload is judged by the day
    it was measured, not the day it arrived). ``patient_ids``: the readings' patients.
    Readings with the same rules share one list object (run_readings relies on it)."""
    episodes = list(
        TreatmentEpisode.objects.filter(patient_id__in=patient_ids)
        .values_list("patient_id", "program_id", "treatment_start", "end")
    )
    rules_by_program: dict[int, list[Rule]] = {}
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
                program_id, datetime.combine(start, time.min, TZ),
                None if end is None else datetime.combine(end + timedelta(days=1), time.min, TZ),
            ))
    combined: dict[tuple[Any, ...], list[Rule]] = {}  # one list per set of programmes

    def rules_at(patient_id: UUID | None, at: datetime) -> list[Rule]:
        programs = tuple(sorted({
            program_id
            for program_id, starts, ends in by_patient.get(patient_id, ())
            if starts <= at and (ends is None or at < ends)
        }))
        if programs not in combined:
            combined[programs] = [rule for p in programs for rule in rules_by_program[p]]
        return combined[programs]

    grouped: dict[Any, list[ReadingFacts]] = defaultdict(list)
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


@dataclass(slots=True)
class Pending:
    """A finding on its way to becoming (part of) an alert."""

    rule: Rule
    rule_version: int
    patient_id: UUID
    source_key: str
    finding: Finding

    @property
    def severity(self) -> str:
        return self.finding.severity or self.rule.severity


class Evaluator:
    """Runs kinds with each patient's effective parameters (rule params merged with the
    patient's current override, each parsed once per batch) and collects findings and errors."""

    def __init__(self, ctx: Context, patient_ids: set[UUID], rules: dict[int, list[Rule]]) -> None:
        self.ctx = ctx
        self.pending: list[Pending] = []
        self.errors: list[RuleError] = []
        rule_ids = {rule.pk for group in rules.values() for rule in group}
        self._overrides = {
            (o.rule_id, o.patient_id): o.params
            for o in RuleOverride.objects.filter(rule_id__in=rule_ids, patient_id__in=patient_ids, ended_at=None)
        }
        self._parsed: dict[tuple[int, UUID | None], pydantic.BaseModel] = {}

    def params(self, rule: Rule, patient_id: UUID) -> Any:
        # Any: the kind's own Params model (alerts.rules.<kind>.Params), which rule.kind decides.
        override = self._overrides.get((rule.pk, patient_id))
        key = (rule.pk, patient_id if override is not None else None)
        if key not in self._parsed:
            self._parsed[key] = parse_params(rule.kind, merged_params(rule.params, override))
        return self._parsed[key]

    def run_readings(self, readings: Sequence["Reading | ReadingRow"], rules: dict[int, list[Rule]]) -> None:
        """Run each reading's rules (``rules``: reading id -> its rules, as reading_rules
        gives them). The same as ``run`` per reading and rule, with the kind function and the
        effective parameters looked up once per patient and set of rules instead of per reading:
        on a bulk upload's claim of thousands of readings that lookup was most of the loop."""
        ctx = self.ctx
        # (rule, kind function, parameters or None, why the parameters did not parse or None)
        plans: dict[tuple[int, Any], list[tuple[Rule, Any, Any, Exception | None]]] = {}
        for reading in readings:
            theirs = rules[reading.pk]
            if not theirs:
                continue
            patient_id = patient_of(reading)  # claimed readings are stored: both ids are set
            key = (id(theirs), patient_id)
            plan = plans.get(key)
            if plan is None:
                plan = plans[key] = []
                for rule in theirs:
                    try:
                        plan.append((rule, KINDS[rule.kind].evaluate_reading, self.params(rule, patient_id),
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
                        Pending(rule, rule.version, patient_id, f"reading:{reading.id}", finding))

    def run(self, rule: Rule, patient_id: UUID, source_key: str, method: str,
            subject: "QuestionnaireResponse | MissedOccurrence") -> None:
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


def errors_record(errors: list[RuleError]) -> None:
    if errors:
        RuleError.objects.bulk_create(errors)


def alerts_lock_patients(patient_ids: set[UUID]) -> None:
    """Serialise alert changes per patient across workers (the partial unique constraint on
    unresolved alerts backs this up). Taken in a fixed order, so two batches cannot deadlock."""
    if connection.vendor != "postgresql" or not patient_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext('alerts:' || k)) FROM unnest(%s::text[]) AS k ORDER BY k",
            [sorted(str(p) for p in patient_ids)],
        )


def _snoozed(pending: Pending, snoozes: dict[UUID, list[Snooze]], now: datetime) -> bool:
    if pending.finding.snooze is None:
        return False
    measure, component, value = pending.finding.snooze
    return any(s.covers(measure, component, value, now) for s in snoozes.get(pending.patient_id, ()))


def _cooling(pending: list[Pending], patient_ids: set[UUID], now: datetime) -> dict[tuple[UUID, int], Alert]:
    """The latest alert of each (patient, rule) resolved less than its rule's cooldown ago: a
    finding no worse than it adds to it again instead of raising a new one."""
    cooling: dict[tuple[UUID, int], Alert] = {}
    rules_cooling = {p.rule.pk: p.rule.cooldown for p in pending if p.rule.cooldown}
    if not rules_cooling:
        return cooling
    for alert in Alert.objects.filter(
        patient_id__in=patient_ids, rule_id__in=rules_cooling, status=Status.RESOLVED,
        resolved_at__gte=now - max(rules_cooling.values()),
    ).order_by("resolved_at"):
        if alert.resolved_at is not None and alert.resolved_at >= now - rules_cooling[alert.rule_id]:
            cooling[(alert.patient_id, alert.rule_id)] = alert  # the latest wins
    return cooling


def _evidence_add(alert: Alert, p: Pending, data: dict[str, Any], *, cooled: bool, now: datetime) -> None:
    """Add finding ``p`` to an existing alert: to its evidence-added event's ``data``, and, unless
    the alert is only cooling down, to the alert itself (its reason, and a worse severity, which
    reopens an acknowledged alert)."""
    data["sources"].append(p.source_key)
    if RANK[p.severity] > RANK[data["severity"]]:
        data["severity"] = p.severity
    if cooled:
        data["cooldown"] = True
        return
    alert.reason, alert.evidence, alert.updated_at = p.finding.reason, p.finding.evidence, now
    if RANK[p.severity] > RANK[alert.severity]:
        data.setdefault("from_severity", alert.severity)
        alert.severity = p.severity
        if alert.status == Status.ACKNOWLEDGED:
            # A worse sign after someone looked: it needs looking at again.
            alert.status = Status.OPEN
            data["reopened"] = True


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
    snoozes: dict[UUID, list[Snooze]] = defaultdict(list)
    for snooze in Snooze.objects.filter(patient_id__in=patient_ids, ended_at=None, until__gt=now):
        snoozes[snooze.patient_id].append(snooze)
    unresolved = {
        (a.patient_id, a.rule_id): a
        for a in Alert.objects.filter(patient_id__in=patient_ids, rule_id__in=rule_ids).exclude(
            status=Status.RESOLVED)
    }
    cooling = _cooling(pending, patient_ids, now)

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
        cooled = alert is None and key in cooling and RANK[p.severity] <= RANK[cooling[key].severity]
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
            _evidence_add(alert, p, data, cooled=cooled, now=now)
            if not cooled and alert.pk is not None:
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
