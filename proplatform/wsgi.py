"""WSGI entry point: the web process (Procfile ``web:``, gunicorn) serves HTTP through it.

Websockets (the triage live feed) are served by the ASGI app (``proplatform.asgi``) in the
``ws:`` process; see docs/adr/0012-http-over-wsgi-websockets-over-asgi.md."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proplatform.settings")

application = get_wsgi_application()

from proplatform.memory import freeze_loaded_app  # noqa: E402

# gunicorn loads this module in each worker process, after its fork.
freeze_loaded_app()
