"""Escalation of red alerts nobody acknowledges, and the notifications it sends.

A periodic beat job (alerts.tasks_escalation.escalate_alerts, every minute) calls
``alerts_escalate``. Everything it needs is in the database — the alert's status, colour,
``escalation_level`` and the time it turned red — so there are no long countdown tasks a worker
restart or a lost broker message could drop: the next run simply finds the step that is due.

The ladder (alerts.models.EscalationPolicy, one per care team):
- step 1 when a red alert has stayed open (unacknowledged) for ``after``: the team's on-call;
- step 2 after twice that: the team lead.
Acknowledging stops the ladder: only OPEN red alerts climb, and failed notifications of an alert
that is no longer open are not retried. Yellow alerts never escalate.

Decisions (see also the report of issue #5):
- The clock starts when the alert turned red: ``raised_at``, or the latest "evidence added" event
  that upgraded it to red (a yellow alert that worsened, possibly reopened after acknowledgement).
- A patient in several teams: the policies of all the patient's teams apply (the same teams that
  see the alert on their triage page, alerts.live). The shortest ``after`` among them sets the
  pace — a red alert is as urgent as the strictest team says — and each step notifies the
  on-call (or lead) of every one of those teams.
- A team without a policy does not escalate; there is deliberately no default policy, because
  a default would have nobody to notify and would hide the missing configuration.
  ``care_teams_without_escalation`` lists such teams for the triage page to show.
- If the job was down and both steps are due at once, both are recorded and both notified.

Every step is one ESCALATED AlertEvent (data: level, recipients, teams), written in the same
transaction as the conditional UPDATE of ``escalation_level``/``escalated_at`` that claims it:
two beat runs at once cannot both climb the same step. Every delivery attempt is a Notification
row, claimed by inserting it as "sending" under its partial unique constraint before the
transport is called (outside the transaction: slow I/O), then marked sent or failed with the
error. Failed ones are retried by later runs, at most ALERT_NOTIFY_MAX_ATTEMPTS times.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from alerts.models import (
    Alert,
    AlertEvent,
    DeliveryStatus,
    EscalationPolicy,
    EventKind,
    Notification,
    Severity,
    Status,
)
from alerts.transports import Notice, channels_enabled, transport_get
from patients.models import CareTeam, TreatmentEpisode

log = logging.getLogger(__name__)

LADDER_STEPS = 2  # 1: on-call, 2: team lead
REASON_PREFIX = "escalation-"
# A "sending" row older than this belongs to a worker that stopped mid-send: count it as failed
# so the retry can claim the notification again.
SENDING_STALE_AFTER = timedelta(minutes=10)


def _max_attempts() -> int:
    return int(getattr(settings, "ALERT_NOTIFY_MAX_ATTEMPTS", 3))


def _retry_after() -> timedelta:
    return timedelta(seconds=float(getattr(settings, "ALERT_NOTIFY_RETRY_SECONDS", 60)))


def _triage_link() -> str:
    base = str(getattr(settings, "ALERT_LINK_BASE_URL", "")).rstrip("/")
    return f"{base}{reverse('triage')}"


@dataclass(slots=True)
class Escalated:
    """What one run did: steps climbed, notifications sent, failed, and retries attempted."""

    steps: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0


def alerts_escalate(*, now: datetime | None = None) -> Escalated:
    """Climb every due step of every open red alert, notify, and retry failed notifications.
    Idempotent: running it twice at the same ``now`` does nothing the second time."""
    now = now or timezone.now()
    result = Escalated()
    Notification.objects.filter(
        status=DeliveryStatus.SENDING, attempted_at__lt=now - SENDING_STALE_AFTER
    ).update(status=DeliveryStatus.FAILED, error="Interrupted: the worker stopped while sending.")
    _climb(now, result)
    _retry_failed(now, result)
    return result


def care_teams_without_escalation() -> QuerySet[CareTeam]:
    """Teams whose red alerts never escalate (no EscalationPolicy), for the triage page to say so."""
    return CareTeam.objects.filter(escalation__isnull=True).order_by("name")


# --- the ladder -----------------------------------------------------------------------------------

def _policies_by_patient(patient_ids: set[Any]) -> dict[Any, list[EscalationPolicy]]:
    """Each patient's teams' policies (all episodes, as alerts.live and patients.access count
    them), in team order. Policies with a non-positive ``after`` are a configuration error:
    logged and ignored rather than paging people on every run."""
    teams: dict[Any, set[int]] = defaultdict(set)
    for patient_id, team_id in TreatmentEpisode.objects.filter(patient_id__in=patient_ids).values_list(
            "patient_id", "care_team_id"):
        teams[patient_id].add(team_id)
    policies: dict[int, EscalationPolicy] = {}
    for policy in EscalationPolicy.objects.filter(
            care_team_id__in={t for ts in teams.values() for t in ts}).select_related("care_team", "on_call", "lead"):
        if policy.after <= timedelta(0):
            log.warning("escalation policy of team %s has after=%s; ignored", policy.care_team_id, policy.after)
            continue
        policies[policy.care_team_id] = policy
    return {p: [policies[t] for t in sorted(ts) if t in policies] for p, ts in teams.items()}


def _recipients(policies: list[EscalationPolicy], level: int) -> list[Any]:
    """The on-call (step 1) or lead (step 2) of every policy, each person once."""
    found: dict[Any, Any] = {}
    for policy in policies:
        user = policy.on_call if level == 1 else policy.lead
        if user is not None and user.is_active:
            found.setdefault(user.pk, user)
    return list(found.values())


def _team_label(policies: list[EscalationPolicy], recipient: User, level: int) -> str:
    """The team(s) whose policy names the recipient at this step (all the patient's policy teams
    if the policy changed since)."""
    own = [p.care_team.name for p in policies
           if (p.on_call_id if level == 1 else p.lead_id) == recipient.pk]
    return ", ".join(own or [p.care_team.name for p in policies])


def _climb(now: datetime, result: Escalated) -> None:
    turned_red = (
        AlertEvent.objects.filter(alert=OuterRef("pk"), kind=EventKind.EVIDENCE_ADDED)
        .filter(Q(data__has_key="from_severity") | Q(data__has_key="reopened"))
        .order_by("-at").values("at")[:1]
    )
    candidates = list(
        Alert.objects.filter(status=Status.OPEN, severity=Severity.RED, escalation_level__lt=LADDER_STEPS)
        .annotate(red_since=Coalesce(Subquery(turned_red), "raised_at"))
        .order_by("raised_at", "id")
    )
    if not candidates:
        return
    policies = _policies_by_patient({a.patient_id for a in candidates})
    link = _triage_link()
    for alert in candidates:
        mine = policies.get(alert.patient_id, [])
        if not mine:
            continue  # no team of this patient has a policy: documented, shown on triage
        after = min(p.after for p in mine)
        due = min(LADDER_STEPS, int((now - alert.red_since) // after)) if now >= alert.red_since else 0
        current = alert.escalation_level
        if due <= current:
            continue
        claimed: list[tuple[Notification, Notice]] = []
        with transaction.atomic():
            # The claim: only the run whose UPDATE still sees the old level (and an open red
            # alert — an acknowledgement in between wins) records the step.
            if not Alert.objects.filter(pk=alert.pk, status=Status.OPEN, severity=Severity.RED,
                                        escalation_level=current).update(escalation_level=due, escalated_at=now):
                continue
            for level in range(current + 1, due + 1):
                recipients = _recipients(mine, level)
                AlertEvent.objects.create(alert=alert, kind=EventKind.ESCALATED, at=now, data={
                    "level": level,
                    "recipients": [u.pk for u in recipients],
                    "teams": [p.care_team_id for p in mine],
                    "after_minutes": int(after.total_seconds() // 60),
                })
                result.steps += 1
                for user in recipients:
                    for channel in channels_enabled():
                        notice = Notice(alert_id=alert.pk, recipient=user, reason=f"{REASON_PREFIX}{level}",
                                        level=level, team=_team_label(mine, user, level), link=link)
                        notification = _claim(channel, user, notice.reason, now, alert_id=alert.pk)
                        if notification is not None:
                            claimed.append((notification, notice))
        # Committed: the step is on record whatever the transports do now.
        for notification, notice in claimed:
            _deliver(notification, notice, result)


# --- notifications ------------------------------------------------------------------------------

def _claim(channel: str, recipient: User, reason: str, now: datetime, *, alert_id: int | None = None,
           response_id: int | None = None) -> Notification | None:
    """Insert the "sending" row about an alert or an overdue review (alerts.review_escalation);
    None if another run holds or delivered this notification."""
    try:
        with transaction.atomic():
            return Notification.objects.create(alert_id=alert_id, response_id=response_id, channel=channel,
                                               recipient=recipient, reason=reason, attempted_at=now,
                                               status=DeliveryStatus.SENDING)
    except IntegrityError:
        return None


def _deliver(notification: Notification, notice: Notice, result: Escalated) -> None:
    try:
        transport_get(notification.channel).send(notice=notice)
    except Exception as exc:  # noqa: BLE001 - any transport failure is recorded and retried
        # Alert id and channel only: no patient data in log lines.
        log.warning("notification %s (alert %s, response %s via %s) failed: %s", notification.pk,
                    notification.alert_id, notification.response_id, notification.channel, type(exc).__name__)
        Notification.objects.filter(pk=notification.pk, status=DeliveryStatus.SENDING).update(
            status=DeliveryStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000])
        result.failed += 1
        return
    Notification.objects.filter(pk=notification.pk, status=DeliveryStatus.SENDING).update(
        status=DeliveryStatus.SENT)
    result.sent += 1


def _retry_failed(now: datetime, result: Escalated) -> None:
    """Try again every failed notification of a still-open alert that has no attempt in flight
    or delivered, has failed fewer than ALERT_NOTIFY_MAX_ATTEMPTS times, and whose last attempt
    is at least ALERT_NOTIFY_RETRY_SECONDS old (so a run does not retry what it just tried)."""
    groups = list(
        Notification.objects.filter(status=DeliveryStatus.FAILED, alert__status=Status.OPEN,
                                    reason__startswith=REASON_PREFIX)
        .values("alert_id", "channel", "recipient_id", "reason")
        .annotate(failures=Count("id"), last=Max("attempted_at"))
        .filter(failures__lt=_max_attempts(), last__lte=now - _retry_after())
        .order_by("alert_id", "recipient_id", "channel")
    )
    if not groups:
        return
    alerts = {a.pk: a for a in Alert.objects.filter(pk__in={g["alert_id"] for g in groups})}
    policies = _policies_by_patient({a.patient_id for a in alerts.values()})
    users = {u.pk: u for u in _user_model().objects.filter(pk__in={g["recipient_id"] for g in groups})}
    link = _triage_link()
    for group in groups:
        alert, user = alerts[group["alert_id"]], users[group["recipient_id"]]
        if not user.is_active:
            continue  # left since: the next step's recipients are read from the policy again
        level = int(group["reason"].removeprefix(REASON_PREFIX) or 0)
        notice = Notice(alert_id=alert.pk, recipient=user, reason=group["reason"], level=level,
                        team=_team_label(policies.get(alert.patient_id, []), user, level), link=link)
        # The unique constraint refuses the claim if a concurrent run got there first.
        notification = _claim(group["channel"], user, group["reason"], now, alert_id=alert.pk)
        if notification is None:
            continue
        result.retried += 1
        _deliver(notification, notice, result)


def _user_model() -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model()
