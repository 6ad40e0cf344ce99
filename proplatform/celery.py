import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proplatform.settings")

app = Celery("proplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _keep_database_connection(**_: object) -> None:
    """A worker process runs one task at a time on one thread, so it can keep its database
    connection between tasks instead of opening one per task (Django's default, CONN_MAX_AGE=0,
    is right for the ASGI web processes). Celery's Django fixup still closes a connection that
    is broken or older than this."""
    from django.conf import settings
    from django.db import connections

    connections["default"].settings_dict["CONN_MAX_AGE"] = settings.WORKER_DB_CONN_MAX_AGE
