"""proplatform.wsgi.WithoutProcessEnvironment: granian starts each request's environ from a
copy of the web process's environment (ADR 0017); Django must not see it in request.META."""

from typing import Any
from unittest import mock

import pytest

from proplatform.wsgi import WithoutProcessEnvironment

PROCESS = {"SECRET_KEY": "s3cret", "DATABASE_URL": "postgres://app:pw@db/app", "PATH": "/usr/bin",
           "HTTP_PROXY": "http://proxy.internal:3128", "SERVER_NAME": "web-1"}


def seen_by_the_app(environ: dict[str, Any]) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(env)
        return [b""]

    WithoutProcessEnvironment(app, PROCESS)({**PROCESS, **environ}, lambda *a: None)
    return seen


def test_the_process_variables_do_not_reach_the_app():
    seen = seen_by_the_app({"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_HOST": "example.org",
                            "SERVER_NAME": "example.org", "wsgi.url_scheme": "https"})

    assert seen == {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_HOST": "example.org",
                    "SERVER_NAME": "example.org", "wsgi.url_scheme": "https"}


def test_a_header_the_request_sent_stays_even_if_the_process_has_a_variable_of_that_name():
    seen = seen_by_the_app({"REQUEST_METHOD": "GET", "HTTP_PROXY": "sent-by-the-client"})

    assert seen["HTTP_PROXY"] == "sent-by-the-client"
    assert "SECRET_KEY" not in seen and "DATABASE_URL" not in seen


def test_the_web_process_application_is_wrapped():
    with mock.patch("proplatform.memory.freeze_loaded_app"):  # not gc.freeze() the test process
        from proplatform import wsgi

    assert isinstance(wsgi.application, WithoutProcessEnvironment)


# --- chunked bodies (issue 20) ------------------------------------------------------------------

def _chunked(body: bytes, limit: int = 1000) -> tuple[dict[str, Any], list[str]]:
    import io

    from proplatform.wsgi import DechunkedBody

    seen: dict[str, Any] = {}
    statuses: list[str] = []

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(env, body=env["wsgi.input"].read(int(env["CONTENT_LENGTH"])))
        return [b""]

    class Trickle(io.BytesIO):  # a server's stream may give fewer bytes than asked
        def read(self, size: int | None = -1) -> bytes:
            return super().read(min(size, 7) if size and size > 0 else size)

    DechunkedBody(app, limit=limit)({"REQUEST_METHOD": "POST", "HTTP_TRANSFER_ENCODING": "chunked",
                                     "wsgi.input": Trickle(body)}, lambda status, headers: statuses.append(status))
    return seen, statuses


def test_a_chunked_body_reaches_the_app_whole_with_its_length():
    seen, _ = _chunked(b'{"measure": "spo2", "value": 95}')
    assert seen["body"] == b'{"measure": "spo2", "value": 95}'
    assert seen["CONTENT_LENGTH"] == "32" and "HTTP_TRANSFER_ENCODING" not in seen


def test_a_chunked_body_over_the_limit_is_a_413_and_never_reaches_the_app():
    seen, statuses = _chunked(b"x" * 1001)
    assert not seen and statuses == ["413 Content Too Large"]


@pytest.mark.django_db(transaction=True)  # the WSGI handler closes the connection as a server's would
def test_a_chunked_reading_is_stored_through_the_web_process_application():
    import io
    import json

    from tests.factories import make_cast

    cast = make_cast()

    from django.core.handlers.wsgi import WSGIHandler
    from django.utils import timezone

    from monitoring.models import Reading
    from proplatform.wsgi import DechunkedBody

    body = json.dumps({"measure": "spo2", "value": 95, "unit": "%", "effective_at": timezone.now().isoformat()})
    statuses: list[str] = []
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/api/v1/readings", "SERVER_NAME": "testserver",
               "SERVER_PORT": "443", "wsgi.url_scheme": "https", "HTTP_HOST": "localhost",
               "CONTENT_TYPE": "application/json", "HTTP_TRANSFER_ENCODING": "chunked",
               "HTTP_AUTHORIZATION": f"Bearer {cast.device_token_a}", "wsgi.input": io.BytesIO(body.encode()),
               "wsgi.errors": io.StringIO()}
    answer = b"".join(DechunkedBody(WSGIHandler())(environ, lambda status, headers: statuses.append(status)))
    assert statuses[0].startswith("201"), answer[:500]
    assert Reading.objects.count() == 1
