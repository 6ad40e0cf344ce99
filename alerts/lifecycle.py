"""What clinicians do to alerts: acknowledge, assign, resolve, bulk-acknowledge, snooze. Every
change writes its AlertEvent row and an audit row, and after commit pushes the new state to
every open triage page. Evaluation (findings becoming alerts) lives in alerts.services.

Concurrency: each change is a guarded UPDATE (``filter(pk=..., status=<expected>)``), so of two
nurses clicking at once the first wins and the second gets an ``AlertConflict`` naming who was
first. Each change also takes the patient's alert lock (the one ``findings_apply`` takes), so a
finding being merged into the alert at the same moment cannot write back a status it read
before the clinician's change (its bulk update writes ``status``)."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from accounts.models import User
from alerts.live import alert_broadcast, alerts_broadcast
from alerts.models import Alert, AlertEvent, EventKind, Outcome, Severity, Snooze, Status
from alerts.rules import snooze_target
from alerts.selectors import UNRESOLVED, assignable_clinicians
from alerts.services import alerts_lock_patients
from audit.models import Action
from audit.services import audit_record
from monitoring.measures import MEASURES
from patients.models import Patient

# A snooze hides a level for a limited time; longer than a month is a new rule override, which
# is visible on the patient page with its reason and history, not a snooze.
SNOOZE_MAX = timedelta(days=30)
NOTE_MAX = 2000
BULK_MAX = 200


class AlertConflict(Exception):
    """Someone changed the alert first. ``alert`` is its state now; the message says who did what."""

    def __init__(self, alert: Alert, message: str) -> None:
        super().__init__(message)
        self.alert = alert
        self.message = message


class AlreadyAcknowledged(AlertConflict):
    def __init__(self, alert: Alert) -> None:
        super().__init__(alert, _conflict_message(alert))


def _who(user: User | None) -> str:
    if user is None:
        return _("someone")
    name: str = user.get_full_name() or user.get_username()
    return name


def _when(at: datetime | None) -> str:
    return date_format(timezone.localtime(at), "j. F H:i") if at else ""


def _conflict_message(alert: Alert) -> str:
    if alert.status == Status.RESOLVED:
        return _("%(who)s resolved this alert at %(when)s.") % {
            "who": _who(alert.resolved_by), "when": _when(alert.resolved_at)}
    if alert.status == Status.ACKNOWLEDGED:
        return _("%(who)s acknowledged this alert at %(when)s.") % {
            "who": _who(alert.acknowledged_by), "when": _when(alert.acknowledged_at)}
    return _("The alert changed meanwhile; look at it again.")


def _changed(alert: Alert, *, user: User, what: str, request: HttpRequest | None) -> None:
    audit_record(user=user, action=Action.UPDATE, resource=f"Alert/{alert.pk} {what}",
                 patient_id=alert.patient_id, request=request)
    transaction.on_commit(lambda: alert_broadcast(alert.pk))


def alert_acknowledge(*, alert: Alert, user: User, expected_severity: str | None = None,
                      request: HttpRequest | None = None) -> Alert:
    """Mark an open alert as seen by ``user``. Two nurses clicking at once: the first wins,
    the second gets AlreadyAcknowledged naming who was first. ``expected_severity`` (the colour
    the nurse saw) makes a click on a yellow alert that has turned red meanwhile a conflict:
    acknowledging a red alert stops its escalation, and that must be a decision about red."""
    with transaction.atomic():
        alerts_lock_patients({alert.patient_id})
        now = timezone.now()
        if expected_severity is not None:
            current = Alert.objects.get(pk=alert.pk)
            if current.severity != expected_severity and current.status == Status.OPEN:
                raise AlertConflict(current, _("The alert is %(now)s now, not %(seen)s: look at it again before "
                                               "you acknowledge it.") % {"now": current.get_severity_display(),
                                                                         "seen": expected_severity})
        claimed = Alert.objects.filter(pk=alert.pk, status=Status.OPEN).update(
            status=Status.ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=user
        )
        alert.refresh_from_db()
        if not claimed:
            raise AlreadyAcknowledged(alert)
        AlertEvent.objects.create(alert=alert, kind=EventKind.ACKNOWLEDGED, by=user, at=now)
        _changed(alert, user=user, what="acknowledge", request=request)
    return alert


class _Unset:
    """``expected_assignee_id`` not given (None means "nobody was assigned")."""


_UNSET = _Unset()


def alert_assign(*, alert: Alert, assignee: User | None, user: User, note: str = "",
                 expected_assignee_id: int | None | _Unset = _UNSET, request: HttpRequest | None = None) -> Alert:
    """Give an unresolved alert to a colleague (or ``assignee=None`` to nobody). The assignee
    must be a clinician on one of the patient's care teams. ``expected_assignee_id`` (the
    assignee the clinician saw) makes a simultaneous re-assignment a conflict instead of a
    silent overwrite."""
    if assignee is not None and not assignable_clinicians(alert.patient).filter(pk=assignee.pk).exists():
        raise ValidationError({"assignee": _("Choose a clinician on one of the patient's care teams.")})
    if len(note) > NOTE_MAX:
        raise ValidationError({"note": _("Keep the note under %(n)s characters.") % {"n": NOTE_MAX}})
    with transaction.atomic():
        alerts_lock_patients({alert.patient_id})
        guard = Alert.objects.filter(pk=alert.pk, status__in=UNRESOLVED)
        if not isinstance(expected_assignee_id, _Unset):
            guard = guard.filter(assigned_to_id=expected_assignee_id)
        claimed = guard.update(assigned_to=assignee)
        alert.refresh_from_db()
        if not claimed:
            if alert.status == Status.RESOLVED:
                raise AlertConflict(alert, _conflict_message(alert))
            raise AlertConflict(alert, _("Meanwhile the alert was assigned to %(who)s.") % {
                "who": _who(alert.assigned_to) if alert.assigned_to else _("nobody")})
        AlertEvent.objects.create(alert=alert, kind=EventKind.ASSIGNED, by=user, note=note,
                                  data={"assignee": assignee.pk if assignee else None})
        _changed(alert, user=user, what="assign", request=request)
    return alert


def _resolve_check(outcome: str, note: str) -> None:
    errors: dict[str, str] = {}
    if outcome not in Outcome.values:
        errors["outcome"] = _("Choose what was done.")
    # "No action needed" is the one outcome that leaves no other trace (no call, no booking):
    # the note is the only record of why the sign was judged harmless.
    elif outcome == Outcome.NO_ACTION and not note.strip():
        errors["note"] = _("Say why no action is needed.")
    if len(note) > NOTE_MAX:
        errors["note"] = _("Keep the note under %(n)s characters.") % {"n": NOTE_MAX}
    if errors:
        raise ValidationError(errors)


def alert_resolve(*, alert: Alert, outcome: str, note: str, user: User, request: HttpRequest | None = None) -> Alert:
    """Close an alert with what was done. An alert nobody acknowledged yet is acknowledged by
    the same person at the same moment (both events are recorded: the escalation ladder reads
    the acknowledgement). It does not mark the answers behind the alert as reviewed: that is the
    nurse's own "Markér som gennemset" (questionnaires.review). Resolving twice is a conflict
    naming who resolved it."""
    note = note.strip()
    _resolve_check(outcome, note)
    with transaction.atomic():
        alerts_lock_patients({alert.patient_id})
        now = timezone.now()
        resolved = {"status": Status.RESOLVED, "resolved_at": now, "resolved_by": user, "outcome": outcome,
                    "resolution_note": note}
        was_open = Alert.objects.filter(pk=alert.pk, status=Status.OPEN).update(
            acknowledged_at=now, acknowledged_by=user, **resolved)
        claimed = was_open or Alert.objects.filter(pk=alert.pk, status=Status.ACKNOWLEDGED).update(**resolved)
        alert.refresh_from_db()
        if not claimed:
            raise AlertConflict(alert, _conflict_message(alert))
        if was_open:
            AlertEvent.objects.create(alert=alert, kind=EventKind.ACKNOWLEDGED, by=user, at=now,
                                      data={"implicit": "resolve"})
        AlertEvent.objects.create(alert=alert, kind=EventKind.RESOLVED, by=user, at=now, note=note,
                                  data={"outcome": outcome})
        _changed(alert, user=user, what=f"resolve ({outcome})", request=request)
    return alert


@dataclass(frozen=True)
class BulkResult:
    id: int
    acknowledged: bool
    reason: str = ""
    alert: Alert | None = None


def alerts_acknowledge_bulk(*, alert_ids: list[int], scope: QuerySet[Alert], user: User,
                            request: HttpRequest | None = None) -> list[BulkResult]:
    """Acknowledge many yellow alerts at once (the daily "contact me" answers, the mild ones).
    Red alerts are refused item by item: a red sign is looked at one at a time. Each item is its
    own decision — one refused or already-acknowledged alert does not stop the others — and the
    result says, per id, what happened and why. ``scope`` is the user's alerts (alerts_for):
    ids outside it are reported as not found, exactly like ids that do not exist."""
    if not alert_ids:
        raise ValidationError({"ids": _("Choose at least one alert.")})
    if len(alert_ids) > BULK_MAX:
        raise ValidationError({"ids": _("At most %(n)s alerts at a time.") % {"n": BULK_MAX}})
    ids = list(dict.fromkeys(alert_ids))
    found = {a.pk: a for a in scope.filter(pk__in=ids).select_related("acknowledged_by", "resolved_by")}
    results: list[BulkResult] = []
    changed: list[int] = []
    with transaction.atomic():
        alerts_lock_patients({a.patient_id for a in found.values()})
        now = timezone.now()
        for alert_id in ids:
            alert = found.get(alert_id)
            if alert is None:
                results.append(BulkResult(alert_id, False, _("No such alert.")))
                continue
            if alert.severity == Severity.RED:
                results.append(BulkResult(alert_id, False, _("Red alerts are acknowledged one at a time."), alert))
                continue
            # Guarded on yellow too: a red finding may have upgraded it since the page was drawn.
            if not Alert.objects.filter(pk=alert_id, status=Status.OPEN, severity=Severity.YELLOW).update(
                    status=Status.ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=user):
                alert.refresh_from_db()
                reason = (_("Red alerts are acknowledged one at a time.") if alert.severity == Severity.RED
                          else _conflict_message(alert))
                results.append(BulkResult(alert_id, False, reason, alert))
                continue
            alert.refresh_from_db()
            AlertEvent.objects.create(alert=alert, kind=EventKind.ACKNOWLEDGED, by=user, at=now,
                                      data={"bulk": True})
            audit_record(user=user, action=Action.UPDATE, resource=f"Alert/{alert_id} acknowledge (bulk)",
                         patient_id=alert.patient_id, request=request)
            changed.append(alert_id)
            results.append(BulkResult(alert_id, True, "", alert))
        if changed:
            transaction.on_commit(lambda: alerts_broadcast(changed))
    return results


def _decimal(raw: object, field: str, errors: dict[str, str]) -> Decimal | None:
    if raw is None or raw == "":
        return None
    try:
        value = Decimal(str(raw).replace(",", "."))
    except InvalidOperation:
        errors[field] = _("Enter a number.")
        return None
    if not value.is_finite() or abs(value) >= 10**6:
        errors[field] = _("Enter a number.")
        return None
    return value


def _snooze_until_problem(until: datetime | None, now: datetime) -> str | None:
    if until is None:
        return _("Say until when.")
    if timezone.is_naive(until):
        return _("Give the time with its time zone.")
    if until <= now:
        return _("The end must be in the future.")
    if until > now + SNOOZE_MAX:
        return _("At most %(days)s days ahead.") % {"days": SNOOZE_MAX.days}
    return None


def _snooze_alert_problem(alert: Alert, patient: Patient, measure: str, component: str) -> dict[str, str] | None:
    """Why a snooze cannot be made from ``alert`` (field → message), or None."""
    if alert.patient_id != patient.pk:
        return {"alert": _("This alert is about another patient.")}
    target = snooze_target(alert.rule.kind, alert.evidence)
    if target is None:
        # A snooze silences a measured level; made from a "contact me" or a score alert it would
        # silence nothing that raised it, and its "resolve" would close the patient's request.
        return {"alert": _("This alert is not about a measured level, so it cannot be snoozed.")}
    if target != (measure, component):
        # Made from an alert, it covers that alert's measure: a weight snooze posted under a red
        # SpO2 alert would otherwise resolve the SpO2 alert although nothing about SpO2 was snoozed.
        return {"measure": _("A snooze made from this alert covers its own measurement.")}
    return None


def snooze_create(*, patient: Patient, measure: str, component: str = "value", low: object = None, high: object = None,
                  until: datetime | None, reason: str, user: User, alert: Alert | None = None,
                  resolve: bool = False, request: HttpRequest | None = None) -> Snooze:
    """"This patient's SpO2 is usually 90-92 %": findings on ``measure`` (``component``) with a
    value inside [low, high] are not alerts until ``until`` (at most SNOOZE_MAX ahead). The
    rule still fires beyond the snoozed level. Made from an alert, the alert gets a SNOOZED
    event and, with ``resolve``, is resolved as "no action needed" with the snooze's reason —
    in the same transaction, so a failed resolve leaves no snooze behind."""
    errors: dict[str, str] = {}
    m = MEASURES.get(measure)
    if m is None:
        errors["measure"] = _("Choose a measurement.")
    if component not in ("value", "value2") or (component == "value2" and m is not None and m.second is None):
        errors["component"] = _("This measurement has no such part.")
    lo, hi = _decimal(low, "low", errors), _decimal(high, "high", errors)
    if lo is None and hi is None and "low" not in errors and "high" not in errors:
        errors["low"] = _("Give the lowest value, the highest value or both.")
    if lo is not None and hi is not None and lo > hi:
        errors["high"] = _("The highest value must not be below the lowest.")
    now = timezone.now()
    if (problem := _snooze_until_problem(until, now)) is not None:
        errors["until"] = problem
    reason = (reason or "").strip()
    if not reason:
        errors["reason"] = _("Say why this level is expected for this patient.")
    elif len(reason) > NOTE_MAX:
        errors["reason"] = _("Keep the reason under %(n)s characters.") % {"n": NOTE_MAX}
    if alert is not None and (refused := _snooze_alert_problem(alert, patient, measure, component)) is not None:
        errors.update(refused)
    if errors:
        raise ValidationError(errors)
    assert until is not None  # else _snooze_until_problem said so
    with transaction.atomic():
        snooze = Snooze.objects.create(patient=patient, measure=measure, component=component, low=lo, high=hi,
                                       until=until, reason=reason, created_by=user, created_at=now)
        audit_record(user=user, action=Action.CREATE, resource=f"Snooze/{snooze.pk} {measure}",
                     patient_id=patient.pk, request=request)
        if alert is not None:
            AlertEvent.objects.create(alert=alert, kind=EventKind.SNOOZED, by=user, at=now, note=reason,
                                      data={"snooze": snooze.pk, "measure": measure, "component": component,
                                            "low": None if lo is None else str(lo),
                                            "high": None if hi is None else str(hi),
                                            "until": until.isoformat()})
            if resolve:
                alert_resolve(alert=alert, outcome=Outcome.NO_ACTION,
                              note=_("Snoozed: %(reason)s") % {"reason": reason}, user=user, request=request)
            else:
                transaction.on_commit(lambda: alert_broadcast(alert.pk))
    return snooze


class SnoozeEnded(Exception):
    def __init__(self, snooze: Snooze) -> None:
        super().__init__(_("This snooze has already ended."))
        self.snooze = snooze


def snooze_end(*, snooze: Snooze, user: User, request: HttpRequest | None = None) -> Snooze:
    """End a snooze now: from here on the rule alerts on the snoozed level again."""
    now = timezone.now()
    with transaction.atomic():
        claimed = Snooze.objects.filter(pk=snooze.pk, ended_at=None, until__gt=now).update(ended_at=now)
        snooze.refresh_from_db()
        if not claimed:
            raise SnoozeEnded(snooze)
        audit_record(user=user, action=Action.UPDATE, resource=f"Snooze/{snooze.pk} end",
                     patient_id=snooze.patient_id, request=request)
    return snooze
