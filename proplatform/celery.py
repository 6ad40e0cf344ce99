import os

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proplatform.settings")

app = Celery("proplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _keep_database_connection(**_: object) -> None:
    """A worker process runs one task at a time on one thread, so it can keep its database
    connection between tasks instead of opening one per task (Django's default, CONN_MAX_AGE=0,
    is right for the web processes, which use a pool instead). Celery's Django fixup would close it around every task
    anyway; settings.CELERY_DB_REUSE_MAX turns that off and _close_unusable_connections below
    takes its place."""
    from django.conf import settings
    from django.db import connections

    connections["default"].settings_dict["CONN_MAX_AGE"] = settings.WORKER_DB_CONN_MAX_AGE


@worker_process_init.connect
def _freeze_loaded_app(**_: object) -> None:
    """The tasks and the app they import are loaded by now: keep them out of every full
    garbage collection (proplatform.memory)."""
    from proplatform.memory import freeze_loaded_app

    freeze_loaded_app()


@task_prerun.connect
@task_postrun.connect
def _close_unusable_connections(task: object = None, **_: object) -> None:
    """Around a task, what Django does around a request: close a connection that is broken or
    older than its CONN_MAX_AGE, keep a good one (checked before its next use: CONN_HEALTH_CHECKS).
    A task that failed on a dead database therefore leaves no broken connection to its retry.
    Not for eager tasks (embedded shape): they run inside a request or a test's transaction."""
    if getattr(getattr(task, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
