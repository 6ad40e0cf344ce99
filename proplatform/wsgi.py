"""WSGI entry point: the web process (Procfile ``web:``, granian; ADR 0017) serves HTTP through it.

A device's single reading takes a shorter way in front of Django (monitoring.device_fast_path,
ADR 0016). Websockets (the triage live feed) are served by the ASGI app (``proplatform.asgi``) in the
``ws:`` process; see docs/adr/0012-http-over-wsgi-websockets-over-asgi.md."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proplatform.settings")

application = get_wsgi_application()

from monitoring.device_fast_path import DeviceReadingFastPath  # noqa: E402  (needs the app loaded)
from proplatform.memory import freeze_loaded_app  # noqa: E402

# A device's single reading is stored and answered before Django's request cycle (ADR 0016).
application = DeviceReadingFastPath(application)

# granian loads this module in each worker process it starts.
freeze_loaded_app()
