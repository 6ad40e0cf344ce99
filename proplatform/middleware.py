"""Request ids: one per request, echoed in the X-Request-ID header, written to audit rows and
attached to every log line of the request."""

import contextlib
import contextvars
import logging
import re
import uuid
from collections.abc import Callable, Iterator

from django.http import HttpRequest, HttpResponse, HttpResponseBase

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
# A caller-supplied id is kept only if it is short and harmless, so it cannot inject into logs.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def current_request_id() -> str:
    return _request_id.get()


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with request_id_scope(request) as request_id:
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


@contextlib.contextmanager
def request_id_scope(request: HttpRequest) -> Iterator[str]:
    """The request's id (the caller's X-Request-ID if harmless, else a new one), set on the
    request and, for the block, as the id of every log line and audit row."""
    supplied = request.META.get("HTTP_X_REQUEST_ID", "")  # request.headers would parse every header first
    request_id = supplied if _SAFE_ID.match(supplied) else uuid.uuid4().hex
    request.request_id = request_id  # type: ignore[attr-defined]  # ours: HttpRequest declares no such name
    token = _request_id.set(request_id)
    try:
        yield request_id
    finally:
        _request_id.reset(token)


class RequestIdLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()
        return True


class SynchronousChainMiddleware:
    """The innermost middleware, synchronous only, so that the whole chain runs synchronously
    under ASGI as well.

    Django builds the chain from the inside out and runs every middleware that can do both in the
    mode of the handler inside it. Under ASGI the innermost handler is async, so without this the
    built-in middleware (``MiddlewareMixin``) would run async — and hop to a worker thread and back
    for each ``process_request``/``process_response``, about 15 hops per request. Measured over HTTP
    with 20 clients (bench/reading_concurrency.py), those hops were most of a request's CPU time.
    With this marker the chain hops once into the request's thread and stays there.
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)


class NoStoreMiddleware:
    """``Cache-Control: no-store`` on every answer to an authenticated request (a session or an
    ``Authorization`` header) that sets no Cache-Control of its own (issue 20).

    Such answers carry patient data or secrets — the patient page, trend pages and their CSV,
    "My answers", REST and FHIR reads, the TOTP secret's page — and a shared or browser cache
    must not keep them for the next person at the same computer or behind the same proxy.
    Views that hand out a secret to a caller who is not yet authenticated (the bearer token)
    set it themselves (``never_cache``)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.process_response(request, self.get_response(request))

    @staticmethod
    def process_response(request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if "Cache-Control" in response:
            return response
        # request.user is the session's (AuthenticationMiddleware, lazy); a bearer token is
        # only known to the API view, but its header is here.
        user = getattr(request, "user", None)
        if "HTTP_AUTHORIZATION" in request.META or (user is not None and user.is_authenticated):
            response["Cache-Control"] = "no-store"
        return response


class AdminStyleCSPMiddleware:
    """The Django admin's own change forms add <style> elements from its scripts (widgets), which
    a nonce cannot reach. On /admin/ only, style elements are allowed inline; scripts keep their
    nonce everywhere, and every other page keeps the strict style-src. (Installed after django-csp's
    middleware, so its answer is marked before the header is written.)"""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if request.path_info.startswith("/admin/"):
            response._csp_replace = {  # type: ignore[attr-defined]  # django-csp reads it off the response
                "style-src": ["'self'", "'unsafe-inline'"]}
        return response
