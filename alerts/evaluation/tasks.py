"""The one evaluation task and the one sweep (registered with the worker through alerts.tasks)."""

from celery import shared_task

from alerts.evaluation.services import pending_evaluate, pending_sweep
from proplatform.i18n import in_site_language


# Celery ships no type information: its decorator is untyped (pyproject.toml's mypy overrides).
@shared_task(name="alerts.evaluation.evaluate", acks_late=True,
             autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
@in_site_language  # alert reasons in the site's language, also when run in-process inside a request
def evaluate(inbox_ids: list[int], readings: bool = True) -> int:
    """Evaluate these inbox rows and, coalesced, reading batches waiting (ADR 0009, 0011, 0013, 0020);
    ``readings=False``: rows of answers and misses only, no reading claim."""
    return pending_evaluate(inbox_ids=inbox_ids, readings=readings)


@shared_task(name="alerts.evaluation.sweep")
@in_site_language
def sweep(older_than_seconds: int = 30) -> int:
    """Beat: inbox rows whose task was lost, and misses whose grace has passed."""
    return pending_sweep(older_than_seconds=older_than_seconds)


def evaluate_send(inbox_ids: list[int], readings: bool = True) -> None:
    """Queue one ``evaluate`` task (alerts.evaluation.dispatch sends through this)."""
    # argsrepr given: Celery would otherwise build it with its saferepr, a visible share of a
    # single-reading request's CPU. A reading batch's task is sent as before (no keyword).
    if readings:
        evaluate.apply_async((inbox_ids,), argsrepr=repr((inbox_ids,)), kwargsrepr="{}")
    else:
        evaluate.apply_async((inbox_ids,), {"readings": False}, argsrepr=repr((inbox_ids,)),
                             kwargsrepr="{'readings': False}")
