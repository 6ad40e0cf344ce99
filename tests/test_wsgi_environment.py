"""proplatform.wsgi.WithoutProcessEnvironment: granian starts each request's environ from a
copy of the web process's environment (ADR 0017); Django must not see it in request.META."""

from typing import Any
from unittest import mock

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
