"""Thin tasks: ids (or nothing) in, one service call. Every service they call is idempotent,
so acks_late re-delivery after a worker crash is harmless."""

from celery import shared_task
from django.utils import timezone

from patients.models import TreatmentEpisode
from schedules import services


@shared_task(acks_late=True)
def advance_occurrences() -> dict[str, int]:
    result = services.occurrences_advance(now=timezone.now())
    return {"opened": result.opened, "missed": result.missed}


@shared_task(acks_late=True)
def send_reminders() -> int:
    return services.reminders_send_due(now=timezone.now())


@shared_task(acks_late=True)
def generate_occurrences() -> int:
    return services.episodes_generate_occurrences(now=timezone.now())


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def generate_occurrences_for_episode(episode_id: int) -> int:
    """Fired with transaction.on_commit when an episode is created, so a new patient's
    baseline need not wait for the daily sweep."""
    episode = TreatmentEpisode.objects.filter(pk=episode_id).first()
    if episode is None:
        return 0  # deleted before the task ran
    return services.schedule_generate_occurrences(episode=episode, now=timezone.now())
