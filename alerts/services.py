"""Evaluating rules and changing alerts. Every state change of an alert goes through here,
writes its AlertEvent row and, after commit, pushes the new state to live triage pages."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from alerts.live import alert_broadcast, alerts_broadcast
from alerts.models import Alert, AlertEvent, EventKind, Rule, Status
from alerts.rules import KINDS, Finding, kinds_for, parse_params
from audit.models import Action
from audit.services import audit_record
from monitoring.models import Reading
from patients.models import TreatmentEpisode
from questionnaires.models import QuestionnaireResponse, ResponseStatus


class AlreadyAcknowledged(Exception):
    def __init__(self, alert: Alert) -> None:
        super().__init__(f"Alert {alert.pk} is already {alert.status}.")
        self.alert = alert


def _rules_for(patient_id: Any, on_date: Any, kinds: list[str]) -> list[Rule]:
    return list(
        Rule.objects.filter(
            active=True,
            kind__in=kinds,
            program__episodes__patient_id=patient_id,
            program__episodes__treatment_start__lte=on_date,
        )
        .filter(Q(program__episodes__end=None) | Q(program__episodes__end__gte=on_date))
        .distinct()
    )


def _reading_rules(readings: list[Reading], kinds: list[str]) -> dict[int, list[Rule]]:
    """The rules that apply to each reading, with two queries for the whole batch.

    Same semantics as ``_rules_for`` per reading: the active rules of every programme in which
    the patient has an episode covering the reading's date (a late upload is judged by the day
    it was measured, not the day it arrived)."""
    patient_ids = {r.patient_id for r in readings}
    episodes = list(
        TreatmentEpisode.objects.filter(patient_id__in=patient_ids)
        .values_list("patient_id", "program_id", "treatment_start", "end")
    )
    rules_by_program: dict[Any, list[Rule]] = {}
    for rule in Rule.objects.filter(
        active=True, kind__in=kinds, program_id__in={e[1] for e in episodes}
    ).order_by("id"):
        rules_by_program.setdefault(rule.program_id, []).append(rule)
    by_patient: dict[Any, list[tuple[Any, Any, Any]]] = {}
    for patient_id, program_id, start, end in episodes:
        if program_id in rules_by_program:
            by_patient.setdefault(patient_id, []).append((program_id, start, end))
    found: dict[int, list[Rule]] = {}
    for reading in readings:
        on_date = reading.effective_at.date()
        programs = {
            program_id
            for program_id, start, end in by_patient.get(reading.patient_id, ())
            if start <= on_date and (end is None or end >= on_date)
        }
        found[reading.pk] = [rule for p in sorted(programs) for rule in rules_by_program[p]]
    return found


def readings_evaluate(*, reading_ids: list[int]) -> int:
    """Run the reading rules on the given readings. Returns how many readings it evaluated.

    Each reading is claimed (evaluated_at set) in the same transaction that raises its alerts:
    if the worker dies half-way, both roll back and the re-delivered task does the work; if the
    task runs twice, the second finds nothing to claim. SKIP LOCKED lets a concurrent sweep
    pass over readings another worker is evaluating right now. Readings a clinician marked
    erroneous are not evaluated at all."""
    kinds = kinds_for("reading")
    with transaction.atomic():
        readings = _claim_readings(reading_ids)
        if not readings:
            return 0
        rules = _reading_rules(readings, kinds)
        params: dict[int, Any] = {}  # each rule's JSON parsed once per batch, not once per reading
        raised: list[Alert] = []
        for reading in readings:
            for rule in rules[reading.pk]:
                if rule.pk not in params:
                    params[rule.pk] = parse_params(rule.kind, rule.params)
                finding = KINDS[rule.kind].evaluate_reading(params[rule.pk], reading)
                if finding:
                    raised.append(_alert(rule, reading.patient_id, f"reading:{reading.pk}", finding))
        _raise_many(raised)
    return len(readings)


_CLAIM_SQL = """
    WITH claimable AS (
        SELECT id FROM monitoring_reading
        WHERE id = ANY(%s) AND evaluated_at IS NULL AND erroneous_at IS NULL
        ORDER BY id FOR UPDATE SKIP LOCKED
    )
    UPDATE monitoring_reading AS r SET evaluated_at = %s FROM claimable WHERE r.id = claimable.id
    RETURNING r.id, r.patient_id, r.device_id, r.measure, r.value, r.value2, r.unit, r.effective_at,
              r.received_at, r.unusual
"""


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


def _claim_readings(reading_ids: list[int]) -> list[Any]:
    """Claim (set evaluated_at on) the given readings that are unevaluated, not erroneous and
    not being evaluated elsewhere right now (SKIP LOCKED); return them, in id order.

    On PostgreSQL one UPDATE … RETURNING; elsewhere (SQLite, no row locks) a select and an
    update. Must run inside the evaluating transaction."""
    now = timezone.now()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_CLAIM_SQL, [list(reading_ids), now])
            rows = cursor.fetchall()
        return sorted((ClaimedReading(*row) for row in rows), key=lambda r: r.id)
    readings = list(
        Reading.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(id__in=reading_ids, evaluated_at=None, erroneous_at=None)
        .order_by("id")
    )
    Reading.objects.filter(id__in=[r.id for r in readings]).update(evaluated_at=now)
    return readings


def _alert(rule: Rule, patient_id: Any, source_key: str, finding: Finding) -> Alert:
    return Alert(rule=rule, source_key=source_key, patient_id=patient_id, rule_version=rule.version,
                 severity=rule.severity, reason=finding.reason, evidence=finding.evidence)


def _raise_many(alerts: list[Alert]) -> None:
    """Store a batch's new alerts with three statements instead of three per alert.

    An alert for the same (rule, source) can exist when a reading's claim was reset by hand (or
    restored from a backup): one query finds those and they are left as they are. The unique
    constraint backs this up against a concurrent evaluator."""
    if not alerts:
        return
    existing = set(
        Alert.objects.filter(source_key__in={a.source_key for a in alerts}).values_list("rule_id", "source_key")
    )
    alerts = [a for a in alerts if (a.rule_id, a.source_key) not in existing]
    if not alerts:
        return
    created = Alert.objects.bulk_create(alerts)
    AlertEvent.objects.bulk_create([AlertEvent(alert=a, kind=EventKind.RAISED) for a in created])
    ids = [a.pk for a in created]
    transaction.on_commit(lambda: alerts_broadcast(ids))


def response_evaluate(*, response_id: int) -> int:
    kinds = kinds_for("response")
    with transaction.atomic():
        response = (
            QuestionnaireResponse.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("questionnaire")
            .filter(id=response_id, evaluated_at=None, status=ResponseStatus.COMPLETED)
            .first()
        )
        if response is None:
            return 0
        QuestionnaireResponse.objects.filter(id=response_id).update(evaluated_at=timezone.now())
        raised: list[Alert] = []
        for rule in _rules_for(response.patient_id, response.authored_at.date(), kinds):
            finding = KINDS[rule.kind].evaluate_response(parse_params(rule.kind, rule.params), response)
            if finding:
                raised.append(_alert(rule, response.patient_id, f"response:{response.pk}", finding))
        _raise_many(raised)
    return 1


def responses_sweep_unevaluated(*, older_than_seconds: int = 30, limit: int = 1000) -> int:
    from questionnaires.services import _enqueue_evaluation

    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    ids = list(
        QuestionnaireResponse.objects.filter(
            evaluated_at=None, status=ResponseStatus.COMPLETED, authored_at__lt=cutoff
        )
        .order_by("authored_at")
        .values_list("id", flat=True)[:limit]
    )
    for response_id in ids:
        _enqueue_evaluation(response_id)
    return len(ids)


def alert_acknowledge(*, alert: Alert, user: Any, request: Any = None) -> Alert:
    """Mark an open alert as seen by ``user``. Two nurses clicking at once: the first wins,
    the second gets AlreadyAcknowledged naming who was first."""
    with transaction.atomic():
        claimed = Alert.objects.filter(pk=alert.pk, status=Status.OPEN).update(
            status=Status.ACKNOWLEDGED, acknowledged_at=timezone.now(), acknowledged_by=user
        )
        alert.refresh_from_db()
        if not claimed:
            raise AlreadyAcknowledged(alert)
        AlertEvent.objects.create(alert=alert, kind=EventKind.ACKNOWLEDGED, by=user)
        audit_record(
            user=user,
            action=Action.UPDATE,
            resource=f"Alert/{alert.pk} acknowledge",
            patient_id=alert.patient_id,
            request=request,
        )
        transaction.on_commit(lambda: alert_broadcast(alert.pk))
    return alert
