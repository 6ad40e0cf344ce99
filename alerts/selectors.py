from typing import Any

from django.db.models import Case, IntegerField, QuerySet, Value, When

from alerts.models import Alert, Status
from patients.access import patients_for


def alerts_for(user: Any) -> QuerySet[Alert]:
    """Alerts on patients the user may see (patients.access decides)."""
    return Alert.objects.filter(patient__in=patients_for(user).values("pk"))


def worklist(user: Any) -> QuerySet[Alert]:
    """Open and acknowledged-but-unresolved alerts: red before yellow, then oldest first."""
    return (
        alerts_for(user)
        .filter(status__in=[Status.OPEN, Status.ACKNOWLEDGED])
        .select_related("patient", "acknowledged_by")
        .annotate(
            rank=Case(
                When(status=Status.OPEN, severity="red", then=Value(0)),
                When(status=Status.OPEN, then=Value(1)),
                default=Value(2),
                output_field=IntegerField(),
            )
        )
        .order_by("rank", "raised_at")
    )


def alert_payload(alert: Alert) -> dict[str, Any]:
    """The one JSON shape of an alert, for the REST API and the websocket alike."""
    return {
        "id": alert.pk,
        "patient": {"id": str(alert.patient_id), "name": alert.patient.name},
        "severity": alert.severity,
        "status": alert.status,
        "reason": alert.reason,
        "evidence": alert.evidence,
        "rule": alert.rule.name if alert.rule_id else None,
        "raised_at": alert.raised_at.isoformat(),
        "acknowledged_at": alert.acknowledged_at.isoformat() if alert.acknowledged_at else None,
        "acknowledged_by": alert.acknowledged_by.get_username() if alert.acknowledged_by else None,
    }
