from celery import shared_task

from alerts.services import readings_evaluate
from monitoring.ingest import (
    evaluation_claimed,
    evaluation_gather,
    evaluation_left_waiting,
    evaluation_request,
    evaluation_taken,
)
from monitoring.services import readings_sweep_unevaluated


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def evaluate_readings(batch_ids: list[int]) -> int:
    """Evaluate the given pending batches and, coalesced, others waiting (ADR 0009, 0011, 0013)."""
    evaluation_gather()
    evaluation_taken()
    evaluated = readings_evaluate(batch_ids=batch_ids)
    evaluation_claimed(readings=evaluated)
    if evaluation_left_waiting():
        evaluation_request([])  # the successor claims what this task's claim left
    return evaluated


@shared_task
def sweep_unevaluated_readings(older_than_seconds: int = 30) -> int:
    return readings_sweep_unevaluated(older_than_seconds=older_than_seconds)
