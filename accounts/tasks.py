from celery import shared_task

from accounts.retention import sessions_and_tokens_clear_expired


@shared_task
def clear_expired() -> dict[str, int]:
    return sessions_and_tokens_clear_expired()
