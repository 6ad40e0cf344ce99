"""What clinicians do to alerts: acknowledge, assign, resolve, bulk-acknowledge. Every change
writes its AlertEvent row and an audit row, and after commit pushes the new state to every open
triage page. Evaluation (findings becoming alerts) lives in alerts.services."""

from typing import Any

from django.db import transaction
from django.utils import timezone

from alerts.live import alert_broadcast
from alerts.models import Alert, AlertEvent, EventKind, Status
from audit.models import Action
from audit.services import audit_record


class AlreadyAcknowledged(Exception):
    def __init__(self, alert: Alert) -> None:
        super().__init__(f"Alert {alert.pk} is already {alert.status}.")
        self.alert = alert


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
