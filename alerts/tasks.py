"""Alerts' Celery tasks. The evaluation inbox's task and sweep live in alerts.evaluation.tasks and
are imported here so that the worker's autodiscovery of ``alerts.tasks`` registers them."""

from alerts.evaluation.tasks import evaluate, sweep

__all__ = ["evaluate", "sweep"]
