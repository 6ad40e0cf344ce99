from celery import shared_task

from alerts.services import response_evaluate, responses_sweep_unevaluated


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def evaluate_response(response_id: int) -> int:
    return response_evaluate(response_id=response_id)


@shared_task
def sweep_unevaluated_responses() -> int:
    return responses_sweep_unevaluated()
