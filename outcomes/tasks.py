from celery import shared_task

from outcomes.services import indicator_cells_refresh, indicator_views_warm


@shared_task(acks_late=True, max_retries=3, default_retry_delay=60)
def refresh_indicator_cells() -> dict[str, int]:
    """Beat (every OUTCOMES_REFRESH_SECONDS) and the "refresh now" button: rebuild every
    indicator's precomputed cells, then make the pages most asked for from them (the national
    pages and the front page), so the first visitor does not wait for them. Idempotent: a
    repeat does the same work again."""
    cells = indicator_cells_refresh()
    indicator_views_warm()
    return cells
