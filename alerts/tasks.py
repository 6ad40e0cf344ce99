"""Thin tasks: ids (or nothing) in, one service call. The services claim their work, so a
re-delivered task (acks_late) does nothing the second time."""

from celery import shared_task
from django.utils import timezone

from alerts.services import missed_evaluate


@shared_task(acks_late=True)
def evaluate_missed() -> int:
    """Beat: missed questionnaires whose grace period has passed (alerts.rules.missed)."""
    return missed_evaluate(now=timezone.now())
