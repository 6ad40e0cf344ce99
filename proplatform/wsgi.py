"""WSGI entry point: the web process (Procfile ``web:``, granian; ADR 0017) serves HTTP through it.

A device's single reading takes a shorter way in front of Django (monitoring.device_fast_path,
ADR 0016). Websockets (the triage live feed) are served by the ASGI app (``proplatform.asgi``) in the
``ws:`` process; see docs/adr/0012-http-over-wsgi-websockets-over-asgi.md."""

import io
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proplatform.settings")

# The name granian loads; the layers below wrap Django's handler in turn.
application: Callable[..., Iterable[bytes]] = get_wsgi_application()

from monitoring.device_fast_path import DeviceReadingFastPath  # noqa: E402  (needs the app loaded)
from proplatform.memory import freeze_loaded_app  # noqa: E402

# Names a request sets in the WSGI environ (PEP 3333's CGI variables), besides HTTP_* and wsgi.*.
_REQUEST_NAMES = frozenset({
    "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE", "CONTENT_LENGTH",
    "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR", "REMOTE_HOST", "REMOTE_PORT",
    "GATEWAY_INTERFACE", "SERVER_SOFTWARE", "REQUEST_URI", "RAW_URI", "HTTPS",
})


class WithoutProcessEnvironment:
    """The WSGI application, given each request's environ without the web process's own
    environment variables.

    granian starts every request's environ from a copy of ``os.environ`` (ADR 0017). Django
    would then carry SECRET_KEY, DATABASE_URL and every other setting in ``request.META``,
    and a variable named like a header (HTTP_PROXY, say) would arrive as a header of every
    request that did not send it. The process's own variables are removed: those a request
    cannot set always, those named like what a request sets only where the value is the
    process's (a request that sent the same value loses that header)."""

    def __init__(self, app: Callable[..., Iterable[bytes]],
                 process_environment: Mapping[str, str] = os.environ) -> None:
        self.app = app
        self.process_environment = process_environment
        self.names: tuple[tuple[str, ...], tuple[tuple[str, str], ...]] | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.names is None:  # at the first request: granian copies os.environ after loading this module
            self.names = self._names()
        own, shaped = self.names
        for name in own:
            environ.pop(name, None)
        for name, value in shaped:
            if environ.get(name) == value:
                del environ[name]
        return self.app(environ, start_response)

    def _names(self) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
        variables = dict(self.process_environment)
        shaped = {name for name in variables if name.startswith(("HTTP_", "wsgi.")) or name in _REQUEST_NAMES}
        return (tuple(name for name in variables if name not in shaped),
                tuple((name, variables[name]) for name in shaped))


class DechunkedBody:
    """A body sent with ``Transfer-Encoding: chunked`` (no Content-Length), handed on as one of
    known length (issue 20).

    The server de-chunks the stream, but WSGI knows only CONTENT_LENGTH: without it Django
    (and the device fast path) read the body as empty, so a chunked upload answered "This field
    is required." for every field. The body is read here, up to Django's own limit
    (DATA_UPLOAD_MAX_MEMORY_SIZE; beyond it a 413), and given on with its length. Requests with
    a Content-Length pay one dictionary look-up."""

    def __init__(self, app: Callable[..., Iterable[bytes]], limit: int | None = None) -> None:
        self.app = app
        self.limit = limit

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower() and not environ.get("CONTENT_LENGTH"):
            from django.conf import settings

            limit = self.limit if self.limit is not None else settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            body = self._read(environ["wsgi.input"], limit + 1)
            if limit is not None and len(body) > limit:
                start_response("413 Content Too Large", [("Content-Type", "application/json"), ("Connection", "close")])
                return [b'{"detail": "The body is larger than this server accepts."}']
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
            del environ["HTTP_TRANSFER_ENCODING"]  # the body is no longer chunked
        return self.app(environ, start_response)

    @staticmethod
    def _read(stream: Any, most: int) -> bytes:
        parts: list[bytes] = []
        size = 0
        while size < most:
            part = stream.read(min(65536, most - size))
            if not part:
                break
            parts.append(part)
            size += len(part)
        return b"".join(parts)


# A device's single reading is stored and answered before Django's request cycle (ADR 0016).
application = WithoutProcessEnvironment(DechunkedBody(DeviceReadingFastPath(application)))

# granian loads this module in each worker process it starts.
freeze_loaded_app()
