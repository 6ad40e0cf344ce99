"""The escalation beat job. Thin: no arguments, one idempotent service call, so a duplicate or
late beat tick is harmless (alerts.escalation claims each step with a conditional UPDATE).

Kept apart from alerts/tasks.py (evaluation tasks) and registered through CELERY_IMPORTS, since
Celery's autodiscovery only imports modules named ``tasks``."""

from celery import shared_task
from django.utils import timezone

from alerts.escalation import alerts_escalate
from alerts.review_escalation import reviews_escalate


@shared_task(acks_late=True)
def escalate_alerts() -> dict[str, int]:
    result = alerts_escalate(now=timezone.now())
    return {"steps": result.steps, "sent": result.sent, "failed": result.failed, "retried": result.retried}


@shared_task(acks_late=True)
def escalate_reviews() -> dict[str, int]:
    """Overdue reviews of responses (alerts.review_escalation), claimed per (response, step)."""
    result = reviews_escalate(now=timezone.now())
    return {"steps": result.steps, "sent": result.sent, "failed": result.failed, "retried": result.retried}
