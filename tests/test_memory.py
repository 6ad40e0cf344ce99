import gc
import sys
import weakref

from django.conf import settings

from proplatform.celery import _freeze_loaded_app
from proplatform.memory import freeze_loaded_app


class Node:
    other: "Node"


def test_the_loaded_app_is_kept_out_of_full_garbage_collections():
    gc.unfreeze()
    try:
        freeze_loaded_app()
        assert settings.ROOT_URLCONF in sys.modules  # the views are loaded before the freeze
        assert gc.get_freeze_count() > 10_000
        # garbage created later is still collected: a reference cycle made after the freeze
        cycle = Node()
        cycle.other = Node()
        cycle.other.other = cycle
        gone = weakref.ref(cycle)
        del cycle
        gc.collect(0)  # the youngest generation: where it is unless it was frozen too
        assert gone() is None
        assert gc.isenabled()  # and collections still run by themselves
    finally:
        gc.unfreeze()


def test_each_celery_worker_process_freezes_the_loaded_app_when_it_starts():
    from celery.signals import worker_process_init

    assert _freeze_loaded_app in [ref() for _, ref in worker_process_init.receivers]
