from celery import shared_task

from smart.services import smart_clear_expired


@shared_task
def clear_expired() -> dict[str, int]:
    return smart_clear_expired()
