"""The published OpenAPI schema (/api/schema/) is what the server does (issue 20 items 6 and
10): schemathesis generates requests from it — its examples, coverage and fuzzing phases, and
stateful sequences — with a patient's and a clinician's token, sends them to the WSGI
application, and checks every answer: never a server error, and status code, content type,
headers and body as the schema declares them.

Bounded to fit in about three minutes on a shared CI machine (FUZZ_EXAMPLES per operation and
role; raise it locally for a longer run)."""

import os

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import ApiToken
from tests.factories import make_cast

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
CHECKS = [schemathesis.checks.not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]


@pytest.fixture
def wsgi_app(db):
    # As Django's test client does: the handler must not close the test's connection (and its
    # transaction) at the start and end of every request.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    handler = WSGIHandler()  # made here: the middleware read their settings (HTTPS redirect off) when made
    stats = os.environ.get("FUZZ_STATS")  # a file: one status line per request, for a run's figures

    def app(environ, start_response):
        def counted(status, headers, *exc_info):
            with open(stats, "a") as out:
                out.write(f"{status.split()[0]} {environ['REQUEST_METHOD']} {environ['PATH_INFO']}\n")
            return start_response(status, headers, *exc_info)
        return handler(environ, counted if stats else start_response)

    try:
        yield app
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def cast_tokens(db) -> dict[str, str]:
    cast = make_cast()
    assert cast.patient_a.user is not None
    return {"patient": ApiToken.issue(cast.patient_a.user)[1], "clinician": ApiToken.issue(cast.clinician_a)[1]}


# The schema /api/schema/ publishes (SpectacularAPIView serves this generator's output, with
# the same settings and hooks), loaded when the module is collected; requests go to the WSGI
# application the wsgi_app fixture builds inside each test, with the test's settings.
schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))


def _check(case, app, token: str) -> None:
    case.call_and_validate(app=app, headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"},
                           checks=CHECKS)


_BOUNDED = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


@pytest.mark.fuzz
@schema.parametrize()
@_BOUNDED
def test_the_api_answers_a_patient_as_its_schema_says_and_never_with_a_server_error(case, wsgi_app, cast_tokens):
    _check(case, wsgi_app, cast_tokens["patient"])


@pytest.mark.fuzz
@schema.parametrize()
@_BOUNDED
def test_the_api_answers_a_clinician_as_its_schema_says_and_never_with_a_server_error(case, wsgi_app,
                                                                                     cast_tokens):
    _check(case, wsgi_app, cast_tokens["clinician"])


@pytest.mark.fuzz
@pytest.mark.parametrize("role", ["patient", "clinician"])
def test_sequences_of_calls_linked_by_their_answers_keep_to_the_schema(wsgi_app, cast_tokens, role):
    """The stateful phase: schemathesis chains operations through the links it infers (an id a
    POST answers with, used by the next call's path) and checks every answer as above."""
    headers = {"Authorization": f"Bearer {cast_tokens[role]}", "Accept-Language": "en"}

    class Workflow(schema.as_state_machine()):
        def get_call_kwargs(self, case):
            return {"app": wsgi_app, "headers": headers}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=CHECKS)

    run_state_machine_as_test(Workflow, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=6, deadline=None, derandomize=True,
        suppress_health_check=list(HealthCheck)))
