import gc
import sys

from django.conf import settings

from proplatform.celery import _freeze_loaded_app
from proplatform.memory import freeze_loaded_app


def test_the_loaded_app_is_kept_out_of_full_garbage_collections():
    gc.unfreeze()
    try:
        freeze_loaded_app()
        assert settings.ROOT_URLCONF in sys.modules  # the views are loaded before the freeze
        assert gc.get_freeze_count() > 10_000
        before = gc.get_freeze_count()
        garbage = [[] for _ in range(1000)]  # created later: still collected as usual
        assert all(gc.is_tracked(g) for g in garbage)
        assert gc.get_freeze_count() == before
    finally:
        gc.unfreeze()


def test_each_celery_worker_process_freezes_the_loaded_app_when_it_starts():
    from celery.signals import worker_process_init

    assert _freeze_loaded_app in [ref() for _, ref in worker_process_init.receivers]
