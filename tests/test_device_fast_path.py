"""The device fast path (monitoring.device_fast_path, ADR 0016): a device's single reading is
stored and answered in front of Django, with Django's own answer and headers; every other
request, and every request it would not answer with 201, reaches Django with its body and gets
Django's answer, and the fast path stores nothing of it.

The requests go through the WSGI application as gunicorn calls it. The tests commit
(transactional): the fast path runs its statement outside a transaction, as in production."""

import gc
import io
import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection
from django.utils import timezone

from accounts.models import ApiToken
from alerts.evaluation import PendingEvaluation, dispatch
from monitoring import device_fast_path
from monitoring.device_fast_path import DeviceReadingFastPath
from monitoring.models import Device, DeviceKind, DeviceToken, Reading
from monitoring.services import device_lend, device_return, device_token_issue
from tests.factories import Cast, make_cast, make_patient

pytestmark = pytest.mark.django_db(transaction=True)

postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'",
                                   reason="the fast path stores on PostgreSQL; elsewhere Django answers")


class Answer:
    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status_line, self.body = status, body
        self.status = int(status.split()[0])
        self.headers = dict(headers)

    def json(self) -> Any:
        return json.loads(self.body)

    def without_request_id(self) -> tuple[int, Any]:
        try:
            data = json.loads(self.body)
        except ValueError:
            return self.status, self.body  # an HTML page or nothing
        if isinstance(data, dict):
            data.pop("request_id", None)
        return self.status, data


def call(app: Any, body: Any, *, token: str | None, path: str = "/api/v1/readings", method: str = "POST",
         content_type: str = "application/json", query: str = "", secure: bool = True,
         headers: dict[str, str] | None = None) -> Answer:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": query,
        "CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(len(raw)), "wsgi.input": io.BytesIO(raw),
        "SERVER_NAME": "testserver", "SERVER_PORT": "443" if secure else "80", "HTTP_HOST": "localhost",
        "REMOTE_ADDR": "127.0.0.1", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "https" if secure else "http",
        "wsgi.errors": io.StringIO(), "wsgi.multithread": True, "wsgi.multiprocess": True,
        "wsgi.run_once": False, "wsgi.version": (1, 0),
    }
    if token is not None:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    started: list[Any] = []
    chunks = app(environ, lambda status, response_headers, *exc: started.append((status, response_headers)))
    try:
        content = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    return Answer(started[0][0], started[0][1], content)


class Spy:
    """Django's WSGI application, counting the requests the fast path handed on."""

    def __init__(self) -> None:
        self.app = WSGIHandler()
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.calls += 1
        return self.app(environ, start_response)


@pytest.fixture
def django_app() -> Spy:
    return Spy()


@pytest.fixture
def fast(django_app: Spy) -> Iterator[DeviceReadingFastPath]:
    app = DeviceReadingFastPath(django_app)
    yield app
    # This thread outlives the test's fast path: its kept connection is the next test's too.
    app.connections._unmark()


@pytest.fixture
def tx_cast() -> Cast:
    return make_cast()


_MEASURED = timezone.now().replace(microsecond=0) - timedelta(hours=2)


def _reading(n: int = 1, **changes: Any) -> dict[str, Any]:
    body = {"measure": "spo2", "value": 95, "unit": "%", "effective_at": (_MEASURED + timedelta(minutes=n)).isoformat(),
            "client_id": f"fast-{n}", **changes}
    return {k: v for k, v in body.items() if v is not ...}


# --- what the fast path answers itself -----------------------------------------------------------

@postgres_only
def test_a_devices_reading_is_stored_and_answered_before_django(tx_cast, fast, django_app):
    answer = call(fast, _reading(value=93), token=tx_cast.device_token_a)

    assert answer.status == 201 and django_app.calls == 0
    reading = Reading.objects.get()
    assert (reading.patient_id, reading.device_id, reading.value, reading.client_id, reading.source) == (
        tx_cast.patient_a.pk, tx_cast.device_a.pk, 93, "fast-1", "device")
    assert answer.json()["id"] == reading.pk
    assert not PendingEvaluation.objects.exists()  # committed, and evaluated (tasks run in-process here)

    # Django answers the repeat with the stored reading: the same bytes as the fast path's 201.
    again = call(django_app.app, _reading(value=93), token=tx_cast.device_token_a)
    assert (again.status, again.body) == (200, answer.body)


@postgres_only
@pytest.mark.parametrize("headers", [
    {},
    {"Accept-Language": "en", "Accept": "application/json"},
    {"X-Request-ID": "device-trace-7", "Accept": "*/*"},
])
def test_the_answer_carries_the_headers_django_would_send(tx_cast, headers, settings):
    settings.SECURE_HSTS_SECONDS = 3600  # over HTTPS, as in production
    django_app = Spy()  # the middleware read their settings when they are made
    fast = DeviceReadingFastPath(django_app)
    by_fast = call(fast, _reading(1), token=tx_cast.device_token_a, headers=headers)
    settings.READINGS_FAST_PATH = False
    by_django = call(fast, _reading(2), token=tx_cast.device_token_a, headers=headers)

    assert (by_fast.status, by_django.status, django_app.calls) == (201, 201, 1)
    assert by_fast.status_line == by_django.status_line
    ids = by_fast.headers.pop("X-Request-ID"), by_django.headers.pop("X-Request-ID")
    assert by_fast.headers.pop("Content-Length") == str(len(by_fast.body))
    by_django.headers.pop("Content-Length")
    assert by_fast.headers == by_django.headers
    if "X-Request-ID" in headers:
        assert ids == ("device-trace-7", "device-trace-7")
    assert by_fast.headers["Content-Language"] == headers.get("Accept-Language", "da")
    assert "Strict-Transport-Security" in by_fast.headers


@postgres_only
def test_the_headers_worked_out_once_are_djangos_for_every_later_request(tx_cast, settings):
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_SSL_REDIRECT = False  # plain HTTP is answered too: no HSTS there
    django_app = Spy()
    fast = DeviceReadingFastPath(django_app)
    requests = [({"Accept-Language": "en"}, True), ({}, True), ({"Accept-Language": "en"}, False),
                ({"Accept-Language": "fr, en;q=0.5"}, True), ({}, False), ({"Accept-Language": "en"}, True)]
    for n, (headers, secure) in enumerate(requests):
        item = _reading(10 + n, client_id="c" * (n + 1))  # answers of different lengths
        settings.READINGS_FAST_PATH = True
        by_fast = call(fast, item, token=tx_cast.device_token_a, headers=headers, secure=secure)
        settings.READINGS_FAST_PATH = False
        # Another value: the same one at the same time would be the same reading (200).
        by_django = call(fast, {**item, "client_id": "d" * (n + 1), "value": 94}, token=tx_cast.device_token_a,
                         headers=headers, secure=secure)

        assert (by_fast.status, by_django.status, django_app.calls) == (201, 201, n + 1)
        for answer in (by_fast, by_django):
            answer.headers.pop("X-Request-ID")
            assert answer.headers.pop("Content-Length") == str(len(answer.body))
        assert by_fast.headers == by_django.headers
        assert ("Strict-Transport-Security" in by_fast.headers) == secure
    assert len(fast._headers) == 4  # en, da over HTTPS; en, da over HTTP


@postgres_only
def test_the_token_looked_up_once_is_checked_again_when_the_reading_is_stored(tx_cast, fast, django_app):
    assert call(fast, _reading(1), token=tx_cast.device_token_a).status == 201
    DeviceToken.objects.filter(device=tx_cast.device_a).update(revoked_at=timezone.now())

    answer = call(fast, _reading(2), token=tx_cast.device_token_a)  # the look-up is still kept here

    assert answer.status == 401 and django_app.calls == 1  # Django's answer
    assert list(Reading.objects.values_list("client_id", flat=True)) == ["fast-1"]


@postgres_only
def test_a_device_lent_to_someone_else_since_the_look_up_stores_nothing_for_the_first_patient(
        tx_cast, fast, django_app):
    assert call(fast, _reading(1), token=tx_cast.device_token_a).status == 201
    other = make_patient("fast-other", "010150-1234", tx_cast.team_a, tx_cast.program_a)
    # Not through device_lend (which also revokes the tokens): the stored lending alone changed.
    Device.objects.filter(pk=tx_cast.device_a.pk).update(patient=other)

    answer = call(fast, _reading(2), token=tx_cast.device_token_a)

    assert django_app.calls == 1  # Django looked the token up afresh and answered
    assert answer.status == 201 and answer.json()["patient"] == str(other.pk)
    assert list(Reading.objects.filter(patient=tx_cast.patient_a).values_list("client_id", flat=True)) == ["fast-1"]


@postgres_only
def test_a_returned_and_relent_device_sends_nothing_more_with_its_old_token(tx_cast, fast, django_app):
    assert call(fast, _reading(1), token=tx_cast.device_token_a).status == 201
    today = timezone.localdate()
    device_return(device=tx_cast.device_a, returned_on=today, by=tx_cast.clinician_a)
    other = make_patient("fast-other", "010150-1234", tx_cast.team_a, tx_cast.program_a)
    device_lend(device=Device.objects.get(pk=tx_cast.device_a.pk), patient=other,
                lent_from=today + timedelta(days=1), by=tx_cast.clinician_a)

    assert call(fast, _reading(2), token=tx_cast.device_token_a).status == 401
    assert Reading.objects.count() == 1


@postgres_only
def test_a_device_returned_yesterday_is_refused_although_its_look_up_is_kept(tx_cast, fast, django_app):
    assert call(fast, _reading(1), token=tx_cast.device_token_a).status == 201
    # Lent until yesterday, as the look-up kept from then says too: the last day has passed.
    yesterday = timezone.localdate() - timedelta(days=1)
    Device.objects.filter(pk=tx_cast.device_a.pk).update(lent_to=yesterday)
    [(_at, (_token_id, device))] = fast.tokens._found.values()
    device.lent_to = yesterday

    answer = call(fast, _reading(2), token=tx_cast.device_token_a)

    assert (answer.status, django_app.calls) == (401, 1)
    assert Reading.objects.count() == 1


# --- what Django answers, with the body the fast path read ---------------------------------------

def _refused_cases(cast: Cast) -> dict[str, dict[str, Any]]:
    now = timezone.now()
    return {
        "malformed JSON": {"body": b'{"measure": "spo2", '},
        "not an object": {"body": b'"spo2"'},
        "unknown measure": {"body": _reading(measure="blood-sugar-ish")},
        "missing unit": {"body": {k: v for k, v in _reading().items() if k != "unit"}},
        "incompatible unit": {"body": _reading(unit="kg")},
        "impossible value": {"body": _reading(value=101)},
        "future timestamp": {"body": _reading(effective_at=(now + timedelta(hours=2)).isoformat())},
        "naive timestamp": {"body": _reading(effective_at="2026-11-22T08:30:00")},
        "before the lending": {"body": _reading(effective_at="1970-01-01T08:30:00+01:00")},
        "another patient": {"body": _reading(patient=str(cast.patient_b.pk))},
        "unknown token": {"body": _reading(), "token": "dv_" + "x" * 40},
        "a person's token": {"body": _reading(), "token": "pp_" + "x" * 40},
        "no token": {"body": _reading(), "token": None},
        "malformed authorization": {"body": _reading(), "headers": {"Authorization": "Bearer dv_a dv_b"}},
        "a byte after the token": {"body": _reading(), "token": cast.device_token_a + "\xa0"},
        "NUL in client_id": {"body": _reading(client_id="a\x00b")},
        "a measure its kind does not take": {"body": _reading(measure="blood-pressure", value=..., systolic=190,
                                                              diastolic=120, unit="mm[Hg]")},
        "full-width digits": {"body": _reading(value="９５")},
        "an offset no place has": {"body": _reading(effective_at=(now - timedelta(days=1)).strftime(
            "%Y-%m-%dT%H:%M:%S") + "+20:00")},
        "half a character in client_id": {"body": _reading(client_id="a\ud800b")},
        "another content type": {"body": _reading(), "content_type": "text/plain"},
        "HTML wanted": {"body": _reading(), "headers": {"Accept": "text/html"}},
        "a host Django refuses": {"body": _reading(), "headers": {"Host": "evil.example"}},
        "another path": {"body": _reading(), "path": "/api/v1/readings/"},
        "GET": {"body": b"", "method": "GET"},
    }


REFUSED = ["malformed JSON", "not an object", "unknown measure", "missing unit", "incompatible unit",
           "impossible value", "future timestamp", "naive timestamp", "before the lending", "another patient",
           "unknown token", "a person's token", "no token", "malformed authorization", "a byte after the token",
           "NUL in client_id", "a measure its kind does not take", "full-width digits", "an offset no place has",
           "half a character in client_id", "another content type",
           "HTML wanted", "a host Django refuses", "another path", "GET"]


@pytest.mark.parametrize("case", REFUSED)
def test_every_other_request_gets_djangos_answer_and_nothing_is_stored(tx_cast, fast, django_app, case):
    spec = _refused_cases(tx_cast)[case]
    body = spec.pop("body")
    token = spec.pop("token", tx_cast.device_token_a)

    by_fast = call(fast, body, token=token, **spec)
    by_django = call(django_app.app, body, token=token, **spec)

    assert by_fast.status >= 300, (case, by_fast.status, by_fast.body[:300])
    assert by_fast.without_request_id() == by_django.without_request_id()
    assert django_app.calls == 1  # the fast path handed it on
    assert not Reading.objects.exists() and not PendingEvaluation.objects.exists()


@postgres_only
def test_the_fast_paths_201_is_kept_out_of_caches_as_djangos_answers_are(tx_cast, fast, django_app):
    answer = call(fast, _reading(), token=tx_cast.device_token_a)
    assert answer.status == 201 and django_app.calls == 0
    assert answer.headers["Cache-Control"] == "no-store"


def test_plain_http_is_redirected_by_django_where_https_is_required(tx_cast, settings):
    settings.SECURE_SSL_REDIRECT = True
    django_app = Spy()  # the middleware read their settings when they are made
    fast = DeviceReadingFastPath(django_app)
    answer = call(fast, _reading(), token=tx_cast.device_token_a, secure=False)
    assert (answer.status, answer.headers["Location"]) == (301, "https://localhost/api/v1/readings")
    assert django_app.calls == 1 and not Reading.objects.exists()


@postgres_only
def test_a_repeat_and_a_reused_client_id_are_djangos_to_answer(tx_cast, fast, django_app):
    first = call(fast, _reading(1), token=tx_cast.device_token_a)
    repeat = call(fast, _reading(1), token=tx_cast.device_token_a)
    reused = call(fast, _reading(1, value=90), token=tx_cast.device_token_a)

    assert (first.status, repeat.status, reused.status) == (201, 200, 409)
    assert repeat.json()["id"] == first.json()["id"] and "client_id" in reused.json()
    assert django_app.calls == 2 and Reading.objects.count() == 1


def test_what_the_fast_path_does_not_take_is_stored_by_django(tx_cast, fast, django_app):
    no_client_id = call(fast, {k: v for k, v in _reading(1).items() if k != "client_id"}, token=tx_cast.device_token_a)
    batch = call(fast, [_reading(2), _reading(3)], token=tx_cast.device_token_a)
    wrapped = call(fast, {"readings": [_reading(4)]}, token=tx_cast.device_token_a)
    by_patient = call(fast, _reading(5), token=ApiToken.issue(tx_cast.patient_a.user)[1])
    with_query = call(fast, _reading(6), token=tx_cast.device_token_a, query="format=json")
    too_big = call(fast, {**_reading(7), "note": "x" * device_fast_path.MAX_BODY}, token=tx_cast.device_token_a)
    with_cookie = call(fast, _reading(8), token=tx_cast.device_token_a, headers={"Cookie": "sessionid=stale"})

    assert [a.status for a in (no_client_id, batch, wrapped, by_patient, with_query, too_big, with_cookie)] == [
        201, 200, 200, 201, 201, 201, 201]
    assert django_app.calls == 7
    assert Reading.objects.count() == 8
    assert "sessionid" in with_cookie.headers.get("Set-Cookie", "")  # Django's session middleware answered it
    assert Reading.objects.get(client_id="fast-5").entered_by == tx_cast.patient_a.user


# --- failures ------------------------------------------------------------------------------------

@postgres_only
def test_a_failure_inside_the_fast_path_is_logged_and_django_answers(tx_cast, fast, django_app, caplog):
    with mock.patch.object(device_fast_path, "reading_device_store_one", side_effect=RuntimeError("boom")), \
            caplog.at_level(logging.ERROR, logger="monitoring.device_fast_path"):
        answer = call(fast, _reading(), token=tx_cast.device_token_a)

    assert (answer.status, django_app.calls) == (201, 1)
    assert Reading.objects.count() == 1
    [record] = [r for r in caplog.records if r.name == "monitoring.device_fast_path"]
    assert "Django answers the request" in record.getMessage()
    assert record.request_id == answer.headers["X-Request-ID"]  # the log line and the answer agree


@postgres_only
def test_a_connection_that_died_between_requests_costs_one_retry_by_django_not_an_error(
        tx_cast, fast, django_app, caplog):
    assert call(fast, _reading(1), token=tx_cast.device_token_a).status == 201
    assert connection.connection is not None  # kept for the next request
    connection.connection.close()  # as when the database restarts: the kept connection is dead

    with caplog.at_level(logging.WARNING, logger="monitoring.device_fast_path"):
        answer = call(fast, _reading(2), token=tx_cast.device_token_a)

    assert (answer.status, django_app.calls) == (201, 1)  # Django's answer, with a new connection
    assert Reading.objects.count() == 2
    [record] = [r for r in caplog.records if r.name == "monitoring.device_fast_path"]
    assert (record.levelname, record.getMessage()) == (
        "WARNING", "The device fast path lost its database connection; Django answers")


@postgres_only
def test_the_kept_connection_is_given_back_when_old_or_not_clean(tx_cast, fast):
    assert call(fast, _reading(1), token=tx_cast.device_token_a).status == 201
    kept = connection.connection
    assert call(fast, _reading(2), token=tx_cast.device_token_a).status == 201
    assert connection.connection is kept

    fast.connections._local.kept.until = 0.0  # older than KEEP_SECONDS
    assert call(fast, _reading(3), token=tx_cast.device_token_a).status == 201
    assert connection.connection is not kept

    renewed = connection.connection
    connection.errors_occurred = True
    assert call(fast, _reading(4), token=tx_cast.device_token_a).status == 201
    assert connection.connection is not renewed


def test_on_sqlite_and_other_databases_django_answers(tx_cast, fast, django_app):
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL: the fast path answers (the tests above)")
    answer = call(fast, _reading(), token=tx_cast.device_token_a)
    assert (answer.status, django_app.calls) == (201, 1)
    assert Reading.objects.count() == 1


@postgres_only
def test_unknown_tokens_are_not_kept(tx_cast, fast):
    for n in range(5):
        call(fast, _reading(n), token=f"dv_unknown-token-number-{n}")
    assert fast.tokens._found == {}
    assert call(fast, _reading(9), token=tx_cast.device_token_a).status == 201
    assert len(fast.tokens._found) == 1  # a known one is


@postgres_only
def test_the_answer_is_written_as_django_writes_it_even_for_unusual_characters(tx_cast, fast, django_app):
    body = _reading(client_id="line\u2028separator-\u00e6\u00f8\u00e5")
    answer = call(fast, body, token=tx_cast.device_token_a)
    again = call(django_app.app, body, token=tx_cast.device_token_a)
    assert (answer.status, django_app.calls) == (201, 0)
    assert (again.status, again.body) == (200, answer.body)


@postgres_only
def test_a_lending_moved_since_the_look_up_is_djangos_to_store(tx_cast, fast, django_app):
    assert call(fast, _reading(1), token=tx_cast.device_token_a).status == 201
    Device.objects.filter(pk=tx_cast.device_a.pk).update(lent_from=tx_cast.device_a.lent_from - timedelta(days=1))

    answer = call(fast, _reading(2), token=tx_cast.device_token_a)

    assert (answer.status, django_app.calls) == (201, 1)  # stored once, by Django, with a fresh look-up
    assert Reading.objects.count() == 2


@postgres_only
def test_a_known_token_is_kept_and_the_oldest_goes_first_when_full(tx_cast, fast, monkeypatch):
    monkeypatch.setattr(device_fast_path.DeviceTokens, "MAX_TOKENS", 2)
    devices = [Device.objects.create(kind=DeviceKind.PULSE_OXIMETER, serial=f"F-{n}", patient=tx_cast.patient_a,
                                     lent_from=timezone.localdate() - timedelta(days=30)) for n in range(3)]
    tokens = [DeviceToken.issue(device)[1] for device in devices]

    for n, token in enumerate(tokens):
        assert call(fast, _reading(n), token=token).status == 201

    kept = [device.pk for _at, (_token_id, device) in fast.tokens._found.values()]
    assert kept == [devices[1].pk, devices[2].pk]


@postgres_only
def test_at_most_half_the_pool_is_kept_by_fast_path_threads(tx_cast, fast):
    fast.connections.limit = 1
    kept: dict[str, bool] = {}
    b_done = threading.Event()

    def request(name: str, n: int, then: Any = None) -> None:
        try:
            assert call(fast, _reading(n), token=tx_cast.device_token_a).status == 201
            kept[name] = connection.connection is not None
            if then is not None:
                then()
        finally:
            connection.close()

    first = threading.Thread(target=request, args=("first", 1, lambda: b_done.wait(10)))
    first.start()
    deadline = time.monotonic() + 10
    while "first" not in kept:
        assert first.is_alive() and time.monotonic() < deadline, "the first thread's request failed"
        time.sleep(0.01)
    second = threading.Thread(target=request, args=("second", 2))
    second.start()
    second.join(10)
    b_done.set()
    first.join(10)

    assert kept == {"first": True, "second": False}  # the second gave its connection back


@postgres_only
def test_with_a_broker_the_fast_paths_batch_is_sent_by_the_sender_thread(tx_cast, fast, settings):
    from proplatform.celery import app

    settings.EVALUATION_QUEUED_SECONDS = 0  # a task per send: no mark left behind in Redis
    sent: list[list[int]] = []
    app.conf.task_always_eager = False  # the autouse fixture puts it back
    with mock.patch.object(dispatch, "_send", side_effect=sent.append):
        assert call(fast, _reading(1), token=tx_cast.device_token_a).status == 201
        (batch,) = PendingEvaluation.objects.values_list("id", flat=True)
        deadline = time.monotonic() + 5
        while not sent:
            assert time.monotonic() < deadline, "the sender thread sent nothing"
            time.sleep(0.01)
    assert sent == [[batch]]


@pytest.mark.parametrize(("pool", "limit"), [
    (None, 1 << 20), ({}, 1 << 20), (True, 2), ({"max_size": 8}, 4), ({"min_size": 6}, 3), ({"max_size": 1}, 0)])
def test_half_the_pool_may_be_kept_and_a_pool_of_one_keeps_none(pool, limit):
    assert device_fast_path.keep_limit(pool) == limit


@postgres_only
def test_a_thread_counts_as_keeping_only_while_it_holds_its_connection(tx_cast, fast):
    counted = fast.connections

    assert call(fast, _reading(1), token=tx_cast.device_token_a).status == 201
    assert counted._keeping == 1

    assert call(fast, _reading(1, value=90), token=tx_cast.device_token_a).status == 409  # Django answered
    assert counted._keeping == 0

    assert call(fast, _reading(2), token=tx_cast.device_token_a).status == 201
    assert counted._keeping == 1
    call(fast.django_app.app, [_reading(3)], token=tx_cast.device_token_a)  # a Django request in this thread
    assert counted._keeping == 0

    assert call(fast, _reading(4), token=tx_cast.device_token_a).status == 201
    with mock.patch.object(device_fast_path, "reading_device_store_one", side_effect=RuntimeError("boom")):
        assert call(fast, _reading(5), token=tx_cast.device_token_a).status == 201  # by Django
    assert counted._keeping == 0
    counted.give_back()
    counted.give_back()
    assert counted._keeping == 0


@postgres_only
def test_a_thread_that_ends_while_keeping_its_connection_gives_it_back(tx_cast, fast):
    counted = fast.connections
    raw: list[Any] = []

    def request() -> None:
        assert call(fast, _reading(1), token=tx_cast.device_token_a).status == 201
        raw.append(connection.connection)  # kept: the thread ends without giving it back itself

    thread = threading.Thread(target=request)
    thread.start()
    thread.join(10)
    gc.collect()

    assert len(raw) == 1 and raw[0] is not None
    assert counted._keeping == 0
    assert raw[0].closed  # without a pool, closed; with one, back in the pool (below)


@postgres_only
def test_a_pooled_connection_kept_by_an_ended_thread_goes_back_to_the_pool(tx_cast, fast):
    pool = mock.Mock()
    wrapper = mock.Mock()
    wrapper.connection._pool = pool
    raw = wrapper.connection
    fast.connections._keeping = 2
    kept = device_fast_path._Kept(fast.connections, wrapper, until=0.0)
    given_back_since = device_fast_path._Kept(fast.connections, mock.Mock(connection=None), until=0.0)

    del kept, given_back_since
    gc.collect()

    pool.putconn.assert_called_once_with(raw)
    assert wrapper.connection is None
    assert fast.connections._keeping == 0


@postgres_only
def test_a_fast_path_dropped_elsewhere_leaves_a_live_threads_connection_alone(tx_cast):
    apps = {"fast": DeviceReadingFastPath(Spy())}
    kept: dict[str, Any] = {}
    go_on = threading.Event()

    def request_then_wait() -> None:
        try:
            assert call(apps["fast"], _reading(1), token=tx_cast.device_token_a).status == 201
            kept["raw"] = connection.connection
            go_on.wait(10)
            kept["after"] = connection.connection  # still this thread's, in use
            kept["closed"] = kept["raw"].closed
        finally:
            connection.close()

    thread = threading.Thread(target=request_then_wait)
    thread.start()
    deadline = time.monotonic() + 10
    while "raw" not in kept:
        assert thread.is_alive() and time.monotonic() < deadline, "the request failed"
        time.sleep(0.01)
    del apps["fast"]
    gc.collect()  # in this thread: the kept connections' finalisers run here, not in theirs
    go_on.set()
    thread.join(10)

    assert kept["after"] is kept["raw"] and not kept["closed"]


@postgres_only
def test_a_backlog_from_the_patients_own_earlier_lending_is_stored_by_the_fast_path(tx_cast, fast, django_app):
    today = timezone.localdate()
    device_return(device=tx_cast.device_a, returned_on=today - timedelta(days=10), by=tx_cast.clinician_a)
    device_lend(device=Device.objects.get(pk=tx_cast.device_a.pk), patient=tx_cast.patient_a,
                lent_from=today - timedelta(days=5), by=tx_cast.clinician_a)
    raw = device_token_issue(device=Device.objects.get(pk=tx_cast.device_a.pk), by=tx_cast.clinician_a)[1]
    earlier = (timezone.now() - timedelta(days=20)).replace(microsecond=0)

    own = call(fast, _reading(1, effective_at=earlier.isoformat()), token=raw)
    shelf = call(fast, _reading(2, effective_at=(earlier + timedelta(days=13)).isoformat()), token=raw)

    assert (own.status, shelf.status) == (201, 400)
    assert django_app.calls == 1  # only the refusal went to Django
    assert list(Reading.objects.values_list("patient_id", "client_id")) == [(tx_cast.patient_a.pk, "fast-1")]


@postgres_only
def test_the_same_reading_under_a_new_client_id_is_not_stored_again_by_the_fast_path(tx_cast, fast, django_app):
    first = call(fast, _reading(1), token=tx_cast.device_token_a)
    again = call(fast, _reading(1, client_id="a-new-id-for-the-retry"), token=tx_cast.device_token_a)

    assert (first.status, again.status) == (201, 200)
    assert django_app.calls == 1  # the fast path stored nothing; Django answered with the first reading
    assert again.json()["id"] == first.json()["id"]
    assert Reading.objects.count() == 1 and not PendingEvaluation.objects.exists()
