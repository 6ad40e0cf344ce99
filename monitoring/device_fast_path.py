"""A device's single reading, stored and answered before Django's request cycle (ADR 0016).

Most requests the web processes serve are one reading from a home device: ``POST
/api/v1/readings`` with a device token and one JSON object. Django's middleware chain and DRF
cost more CPU than storing the reading does, and on a small machine that CPU is the latency
20 devices at once wait for (issue #4, bench/reading_concurrency.py).

The fast path wraps the WSGI application. It takes a request only when it looks exactly like
that common case, and it answers only when the reading was stored (201). Everything else goes
to Django with the body handed back unread, and Django answers as it always did: another path,
method, token kind or form of the Authorization header, content type, ``Accept``, a query string
or cookies; a body over 64 KiB; a host Django refuses or plain HTTP where HTTPS is required; an
unknown, revoked or returned device's token; a body that is not one JSON object; no client_id;
any field error, repeat (200) or reused client_id (409); and any exception. So every error
message and status has one source, the API view, and nothing is stored when the fast path
gives up: the reading is stored by one statement that
commits on its own (``monitoring.ingest``), the last step before the answer. (Should writing the
answer fail after that, Django answers the same request as a repeat: 200 with the reading.)

What the fast path does for a request is what Django's stack does for this one: the request
id, the language (``LocaleMiddleware``), the HTTPS redirect and host check (``SecurityMiddleware``,
``CommonMiddleware``) and the response headers of the middleware that set them. It keeps its
database connection from one request to the next (``KeptConnections``). The same device
token check and the same ingest checks; the API view's serializer and renderer write the answer.
tests/test_device_fast_path.py checks that the answers and headers are Django's own.
"""

import contextlib
import io
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from csp.middleware import CSPMiddleware
from django.conf import settings
from django.core import signals
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.core.handlers.wsgi import WSGIRequest
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connection, connections
from django.http import HttpRequest, HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.middleware.locale import LocaleMiddleware
from django.middleware.security import SecurityMiddleware
from django.utils import translation

from accounts.models import hash_token
from monitoring.api import reading_json
from monitoring.authentication import device_refusal, device_token_lookup
from monitoring.ingest import reading_device_store_one
from monitoring.models import Device
from proplatform.middleware import NoStoreMiddleware, request_id_scope

logger = logging.getLogger(__name__)

PATH = "/api/v1/readings"
MAX_BODY = 64 * 1024  # one reading is a few hundred bytes; anything bigger is Django's
_JSON = ("application/json", "application/json;charset=utf-8")
_ACCEPT = ("*/*", "application/json")
# A device token as DeviceToken.issue writes it, after "Bearer " (any case) and one space. A
# strict part of what accounts.authentication.bearer_token accepts: any other form of the header
# goes to Django, which parses it.
_TOKEN = re.compile(r"(?i:bearer) (dv_[A-Za-z0-9_-]{20,100})")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Answer = tuple[str, list[tuple[str, str]], bytes]  # status line, headers, body


def _unused(request: HttpRequest) -> HttpResponse:
    raise AssertionError("the middleware here are used for their process_request/process_response only")


def _device_reading(environ: dict[str, Any]) -> tuple[str, int] | None:
    """The device token and the body's length if the request looks like a device's single
    reading, else None. Not with cookies: Django's session and CSRF middleware may answer them."""
    if (environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") != PATH or environ.get("QUERY_STRING")
            or "HTTP_TRANSFER_ENCODING" in environ or "HTTP_COOKIE" in environ
            or environ.get("CONTENT_TYPE", "").replace(" ", "").lower() not in _JSON
            or environ.get("HTTP_ACCEPT", "*/*").strip() not in _ACCEPT):
        return None
    token = _TOKEN.fullmatch(environ.get("HTTP_AUTHORIZATION", ""))
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    return (token[1], length) if token and 0 < length <= MAX_BODY else None


class KeptConnections:
    """Web threads keep their database connection from one fast-path request to the next, for
    up to KEEP_SECONDS; at most ``limit`` threads of the process at a time (half the pool).

    Django gives a connection back to the pool at the end of every request, and the pool checks
    it with a round trip when it is taken again (CONN_HEALTH_CHECKS): together a fifth of a device
    request's CPU. Kept, a connection is not checked and may have died (the database restarted):
    then the request fails inside the fast path, the connection is closed, and Django answers the
    request with a checked one. A Django request in the thread gives the connection back
    (request_started), so a thread never holds more than the one it would hold anyway. The limit
    leaves the other half of the pool to Django's requests however many threads keep one. A
    thread counts as keeping one until it gives it back: at a Django request in the thread, at
    a fast-path request that hands on to Django, when it is too old or not clean, or when the
    thread ends (granian ends blocking threads that idle, ADR 0017: ``_Kept``)."""

    KEEP_SECONDS = 60.0

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._keeping = 0
        self._lock = threading.Lock()
        self._local = threading.local()  # .kept: this thread's _Kept, or None
        # A Django request gives the thread's connection back (close_old_connections): no
        # longer counted as kept from then on.
        signals.request_started.connect(self._django_request)

    def _django_request(self, **kwargs: Any) -> None:
        self._unmark()

    def before(self) -> None:
        """At the start of a fast-path request: keep the connection if it is this thread's, clean
        and young enough; otherwise give it back."""
        kept = getattr(self._local, "kept", None)
        if connection.connection is None:
            self._unmark()  # given back by a Django request, or never taken
        elif (kept is None or time.monotonic() >= kept.until or connection.errors_occurred
              or connection.in_atomic_block or not connection.get_autocommit()):
            self.give_back()

    def after(self) -> None:
        """At the end of a fast-path request: keep the connection if the limit allows it."""
        if connection.connection is None or getattr(self._local, "kept", None) is not None:
            return
        with self._lock:
            keep = self._keeping < self.limit
            if keep:
                self._keeping += 1
                self._local.kept = _Kept(self, connections[DEFAULT_DB_ALIAS], time.monotonic() + self.KEEP_SECONDS)
        if not keep:
            connection.close()  # to the pool, as Django would

    def give_back(self) -> None:
        connection.close()
        self._unmark()

    def _unmark(self) -> None:
        kept = getattr(self._local, "kept", None)
        if kept is not None:
            kept.counted = False
            self._local.kept = None
            self._uncount()

    def _uncount(self) -> None:
        with self._lock:
            self._keeping -= 1


class _Kept:
    """A thread's kept connection: until when, and the thread's database wrapper, so that the
    connection goes back to the pool when the thread ends while keeping it. Python clears a
    thread's ``threading.local`` values when the thread ends, which drops this object; Django's
    wrapper alone would be dropped with its connection still taken from the pool, and the pool
    one connection smaller for good."""

    def __init__(self, owner: KeptConnections, wrapper: Any, until: float) -> None:
        self.owner, self.wrapper, self.until = owner, wrapper, until
        self.raw = wrapper.connection
        self.thread = threading.get_ident()
        self.counted = True

    def __del__(self) -> None:
        if not self.counted:
            return
        self.counted = False
        # Only in the thread that kept it: the thread is ending. Dropped elsewhere (the garbage
        # collector freeing a fast path that is no longer used), the thread may still be using it.
        if threading.get_ident() != self.thread:
            self.owner._uncount()
            return
        # A finaliser must not raise: a connection that cannot be given back is left to its object.
        with contextlib.suppress(Exception):
            raw = self.wrapper.connection
            if raw is not None and raw is self.raw:  # else the wrapper gave it back already
                pool = getattr(raw, "_pool", None)
                if pool is not None:
                    pool.putconn(raw)  # what the wrapper's close() does, without its same-thread check
                else:
                    raw.close()
                self.wrapper.connection = None
        self.owner._uncount()


def keep_limit(pool: Any) -> int:
    """How many threads may keep a connection: half the pool's connections (rounded down: a pool
    of one keeps none; psycopg_pool's default size is 4), given DATABASES' OPTIONS["pool"].
    Without a pool every thread has its own connection anyway."""
    if not pool:
        return 1 << 20
    size = (pool.get("max_size") or pool.get("min_size") or 4) if isinstance(pool, dict) else 4
    return size // 2


class DeviceTokens:
    """This process's look-ups of device tokens (the token's id and its device with the
    patient), by token hash, each for up to TOKEN_SECONDS; at most MAX_TOKENS of them (the
    oldest goes first). Unknown and revoked tokens are not kept: Django looks them up again and
    answers 401.

    Reusing a look-up is safe because the statement that stores a reading checks again that
    the token is unrevoked and the device lent to the same patient for the same period
    (``reading_device_store_one``): a token revoked a moment ago stores nothing, and the API
    view answers 401. Whether the device has been returned by today is checked per request."""

    TOKEN_SECONDS = 60.0
    MAX_TOKENS = 10_000

    def __init__(self) -> None:
        self._found: dict[str, tuple[float, tuple[int, Device]]] = {}
        self._lock = threading.Lock()

    def get(self, key_hash: str) -> tuple[int, Device] | None:
        now = time.monotonic()
        kept = self._found.get(key_hash)
        if kept is not None and now - kept[0] < self.TOKEN_SECONDS:
            return kept[1]
        found = device_token_lookup(key_hash)
        with self._lock:
            self._found.pop(key_hash, None)
            if found is None:
                return None  # unknown or revoked: not kept, so that guessing cannot fill the dict
            if len(self._found) >= self.MAX_TOKENS:
                del self._found[next(iter(self._found))]  # the oldest look-up
            self._found[key_hash] = (now, found)
        return found

    def forget(self, key_hash: str) -> None:
        with self._lock:
            self._found.pop(key_hash, None)


def _connection_lost() -> bool:
    raw = connection.connection
    return raw is None or raw.closed or raw.broken


class DeviceReadingFastPath:
    """The WSGI application: Django's, with a device's single reading stored and answered in
    front of it (see the module's docstring)."""

    MAX_KEPT = 64  # Accept-Language values and header sets worked out once; beyond, every time

    def __init__(self, django_app: WsgiApp) -> None:
        self.django_app = django_app
        self.tokens = DeviceTokens()
        pool = settings.DATABASES["default"].get("OPTIONS", {}).get("pool")
        self.connections = KeptConnections(limit=keep_limit(pool))
        self.security = SecurityMiddleware(_unused)
        self.common = CommonMiddleware(_unused)
        self.locale = LocaleMiddleware(_unused)
        self.frame_options = XFrameOptionsMiddleware(_unused)
        self.csp = CSPMiddleware(_unused)  # a JSON answer uses no nonce: the same header every time
        self._languages: dict[str, str] = {}  # Accept-Language -> the language activated
        self._headers: dict[tuple[str, bool], tuple[str, list[tuple[str, str]]]] = {}  # see _created

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        # PostgreSQL only: the statement that stores and checks the token again is PostgreSQL's.
        if settings.READINGS_FAST_PATH and connection.vendor == "postgresql" and (found := _device_reading(environ)):
            token, length = found
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)  # Django reads it again if it answers
            answered = self._answer(environ, token, body)
            if answered is not None:
                status, headers, content = answered
                start_response(status, headers)
                return [content]
        return self.django_app(environ, start_response)

    def _answer(self, environ: dict[str, Any], token: str, body: bytes) -> Answer | None:
        request = WSGIRequest(environ)
        with request_id_scope(request) as request_id:
            try:
                self.connections.before()
                response = self._store_and_answer(request, token, body)
            except (SuspiciousOperation, PermissionDenied):
                return None  # a host or client Django refuses: it answers, and logs it as it does
            except Exception as exc:
                if isinstance(exc, OperationalError | InterfaceError) and _connection_lost():
                    # The kept connection died (the database restarted), or the database is
                    # away: Django answers with a connection from the pool, checked.
                    logger.warning("The device fast path lost its database connection; Django answers",
                                   exc_info=True)
                else:
                    logger.exception("The device fast path failed; Django answers the request")
                self.connections.give_back()
                environ["HTTP_X_REQUEST_ID"] = request_id  # Django's answer carries the id logged here
                return None
            if response is None:
                self.connections.give_back()  # Django answers, with a connection of its own
                return None
            self.connections.after()
        response[1].append(("X-Request-ID", request_id))  # a list of its own (_created)
        return response

    def _store_and_answer(self, request: WSGIRequest, token: str, body: bytes) -> Answer | None:
        """The 201 answer for the reading in ``body``, stored; None (nothing stored) when Django
        is to answer the request."""
        if self.security.process_request(request) is not None:  # plain HTTP: Django redirects
            return None
        if self.common.process_request(request) is not None:  # checks the host; www redirect
            return None
        key_hash = hash_token(token)
        found = self.tokens.get(key_hash)
        if found is None or device_refusal(found[1]) is not None:
            return None
        try:
            item = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(item, dict) or "readings" in item:
            return None
        language = self._language(request)
        token_id, device = found
        result = reading_device_store_one(item=item, device=device, token_id=token_id)
        if result is None:
            self.tokens.forget(key_hash)  # perhaps revoked or lent again: look it up afresh next time
            return None
        stored = result.stored
        assert stored is not None  # a 201: this request stored it
        return self._created(request, language, reading_json(stored))

    def _language(self, request: WSGIRequest) -> str:
        """The language LocaleMiddleware activates for the request, activated. On the fast path's
        requests (one path, no cookies) it depends on Accept-Language alone: worked out by the
        middleware once per header value, for up to MAX_KEPT values."""
        accept = request.META.get("HTTP_ACCEPT_LANGUAGE", "")
        language = self._languages.get(accept)
        if language is None:
            self.locale.process_request(request)
            language = request.LANGUAGE_CODE
            if len(self._languages) < self.MAX_KEPT:
                self._languages[accept] = language
        else:
            translation.activate(language)
            request.LANGUAGE_CODE = language
        return language

    def _created(self, request: WSGIRequest, language: str, content: bytes) -> Answer:
        """The 201's status line and headers, as the middleware write them. They depend on the
        request only through its language and whether it came over HTTPS: worked out once per
        pair by running the middleware's process_response, innermost first, as Django does."""
        key = (language, request.is_secure())
        kept = self._headers.get(key)
        if kept is None:
            response = HttpResponse(content, status=201, content_type="application/json")
            response["Allow"] = "POST, OPTIONS"  # as DRF's APIView answers
            for middleware in (self.frame_options, self.csp, NoStoreMiddleware, self.common, self.locale,
                               self.security):
                answered = middleware.process_response(request, response)
                assert isinstance(answered, HttpResponse)  # each adds headers to the response it is given
                response = answered
            kept = (f"{response.status_code} {response.reason_phrase}", list(response.items()))
            if any(name == "Content-Length" for name, _ in kept[1]) and len(self._headers) < self.MAX_KEPT:
                self._headers[key] = kept
        status, headers = kept
        length = str(len(content))
        return status, [(name, length if name == "Content-Length" else value) for name, value in headers], content
