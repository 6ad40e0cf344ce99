import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proplatform.settings")

app = Celery("proplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
