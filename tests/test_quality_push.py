"""Push of a cohort to a quality database's FHIR server: a small in-memory FHIR server started
by the test (batch Bundles, conditional create through ifNoneExist) stands in for the receiver."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.urls import reverse

from audit.models import Action, AuditEvent
from exports.models import Destination, SendRecord, SendStatus
from exports.quality_push import quality_send_run, quality_send_start
from exports.selectors import ExportError
from exports.testing import FREE_TEXT, add_outcome_data
from outcomes.models import Cohort

pytestmark = pytest.mark.django_db


class FhirStore:
    """What the fake server holds: resources by type, matched on identifier for ifNoneExist."""

    def __init__(self) -> None:
        self.resources: dict[str, list[dict[str, Any]]] = {}
        self.fail_next: list[int] = []  # statuses to answer before behaving (e.g. [503])
        self.requests = 0
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()

    def batch(self, bundle: dict[str, Any]) -> dict[str, Any]:
        entries = []
        for entry in bundle["entry"]:
            resource, request = entry["resource"], entry["request"]
            existing = self.resources.setdefault(request["url"], [])
            system, value = request["ifNoneExist"].removeprefix("identifier=").split("|", 1)
            match = [r for r in existing if any(
                i["system"] == system and i["value"] == value
                for i in (r["identifier"] if isinstance(r["identifier"], list) else [r["identifier"]]))]
            if match:
                entries.append({"response": {"status": "200 OK"}})
            else:
                existing.append({**resource, "id": f"srv{len(existing) + 1}"})
                entries.append({"response": {"status": "201 Created"}})
        return {"resourceType": "Bundle", "type": "batch-response", "entry": entries}

    def count(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.resources.items()}


@pytest.fixture
def fhir_server() -> Iterator[tuple[str, FhirStore]]:
    store = FhirStore()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with store.lock:
                store.requests += 1
                store.headers.append(dict(self.headers))
                status = store.fail_next.pop(0) if store.fail_next else 200
                answer = store.batch(body) if status == 200 and body.get("type") == "batch" else {
                    "resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "transient"}]}
            if status == 200 and body.get("type") != "batch":
                status = 400
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/fhir", store
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _push_settings(settings):  # type: ignore[no-untyped-def]
    settings.EXPORT_PSEUDONYM_KEY = "push-test-key"
    settings.EXPORT_PUSH_BUNDLE_SIZE = 3
    settings.EXPORT_PUSH_ATTEMPTS = 3
    settings.EXPORT_PUSH_BACKOFF_SECONDS = 0.01


@pytest.fixture
def setup(cast, fhir_server):  # type: ignore[no-untyped-def]
    add_outcome_data(cast)
    url, store = fhir_server
    destination = Destination.objects.create(name="RKKP test", base_url=url)
    cohort = Cohort.objects.create(name="Everyone")
    return cast, destination, cohort, store


def _send(cast, destination, cohort, capture) -> SendRecord:  # type: ignore[no-untyped-def]
    with capture(execute=True):
        record = quality_send_start(destination=destination, cohort=cohort, user=cast.quality)
    record.refresh_from_db()
    return record


def test_a_cohort_arrives_as_batch_bundles_of_bounded_size_and_is_recorded(
        setup, django_capture_on_commit_callbacks):
    cast, destination, cohort, store = setup
    record = _send(cast, destination, cohort, django_capture_on_commit_callbacks)
    assert record.status == SendStatus.SUCCEEDED, record.error
    # A and B (C withdrew): 2 Patients, 2 EpisodesOfCare, 2 QuestionnaireResponses, 10 Observations
    assert store.count() == {"Patient": 2, "EpisodeOfCare": 2, "QuestionnaireResponse": 2, "Observation": 10}
    assert record.resource_count == 16 and record.bundle_count == 6 == store.requests  # 3 per Bundle
    assert record.http_status == 200 and record.finished_at and record.requested_by == cast.quality
    assert AuditEvent.objects.filter(action=Action.EXPORT, resource__contains="send cohort").exists()


def test_re_sending_the_same_cohort_creates_no_duplicates(setup, django_capture_on_commit_callbacks):
    cast, destination, cohort, store = setup
    _send(cast, destination, cohort, django_capture_on_commit_callbacks)
    first = store.count()
    second = _send(cast, destination, cohort, django_capture_on_commit_callbacks)
    assert second.status == SendStatus.SUCCEEDED
    assert store.count() == first
    assert SendRecord.objects.count() == 2


def test_a_503_is_retried_and_then_succeeds(setup, django_capture_on_commit_callbacks):
    cast, destination, cohort, store = setup
    store.fail_next = [503]
    record = _send(cast, destination, cohort, django_capture_on_commit_callbacks)
    assert record.status == SendStatus.SUCCEEDED, record.error
    assert record.attempts == record.bundle_count + 1
    assert store.count()["Observation"] == 10


def test_persistent_5xx_gives_up_after_the_bounded_attempts_and_records_why(
        setup, django_capture_on_commit_callbacks):
    cast, destination, cohort, store = setup
    store.fail_next = [503, 502, 503]
    record = _send(cast, destination, cohort, django_capture_on_commit_callbacks)
    assert record.status == SendStatus.FAILED
    assert record.http_status == 503 and "3 attempts" in record.error
    assert record.bundle_count == 0 and store.requests == 3


def test_a_4xx_is_not_retried(setup, django_capture_on_commit_callbacks):
    cast, destination, cohort, store = setup
    store.fail_next = [400]
    record = _send(cast, destination, cohort, django_capture_on_commit_callbacks)
    assert record.status == SendStatus.FAILED and record.http_status == 400
    assert store.requests == 1


def test_an_unreachable_server_is_retried_then_recorded_as_a_connection_error(
        setup, django_capture_on_commit_callbacks):
    cast, destination, cohort, _ = setup
    Destination.objects.filter(pk=destination.pk).update(base_url="http://127.0.0.1:9/fhir")
    destination.refresh_from_db()
    record = _send(cast, destination, cohort, django_capture_on_commit_callbacks)
    assert record.status == SendStatus.FAILED and "connection error" in record.error
    assert record.attempts == 3


def test_what_is_sent_is_pseudonymised_and_refers_by_identifier(setup, django_capture_on_commit_callbacks):
    cast, destination, cohort, store = setup
    _send(cast, destination, cohort, django_capture_on_commit_callbacks)
    body = json.dumps(store.resources)
    for text in (cast.patient_a.cpr, "0101501111", "Alma", "Testsen", cast.patient_a.phone, FREE_TEXT,
                 str(cast.patient_a.pk), "1950-05-17"):
        assert text not in body
    patient_ids = {p["identifier"][0]["value"] for p in store.resources["Patient"]}
    for observation in store.resources["Observation"]:
        assert "reference" not in observation["subject"]
        assert observation["subject"]["identifier"]["value"] in patient_ids


def test_the_auth_header_comes_from_the_named_environment_variable(
        setup, django_capture_on_commit_callbacks, monkeypatch):
    cast, destination, cohort, store = setup
    Destination.objects.filter(pk=destination.pk).update(auth_env="QUALITY_DB_TEST_AUTH")
    destination.refresh_from_db()
    record = _send(cast, destination, cohort, django_capture_on_commit_callbacks)
    assert record.status == SendStatus.FAILED and "QUALITY_DB_TEST_AUTH" in record.error
    monkeypatch.setenv("QUALITY_DB_TEST_AUTH", "Bearer s3cret")
    record = _send(cast, destination, cohort, django_capture_on_commit_callbacks)
    assert record.status == SendStatus.SUCCEEDED
    assert store.headers[-1]["Authorization"] == "Bearer s3cret"


def test_a_re_delivered_send_task_does_not_send_again(setup, django_capture_on_commit_callbacks):
    cast, destination, cohort, store = setup
    record = _send(cast, destination, cohort, django_capture_on_commit_callbacks)
    requests = store.requests
    quality_send_run(send_id=record.pk)
    assert store.requests == requests


def test_only_quality_staff_and_admins_send_and_inactive_destinations_are_refused(setup):
    cast, destination, cohort, _ = setup
    with pytest.raises(ExportError):
        quality_send_start(destination=destination, cohort=cohort, user=cast.clinician_a)
    destination.active = False
    with pytest.raises(ExportError):
        quality_send_start(destination=destination, cohort=cohort, user=cast.quality)
    assert not SendRecord.objects.exists()


def test_the_quality_page_starts_a_send_and_lists_it(setup, client, django_capture_on_commit_callbacks):
    cast, destination, cohort, store = setup
    client.force_login(cast.quality)
    assert client.get(reverse("quality-sends")).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("quality-sends"), {"destination": destination.pk, "cohort": cohort.pk})
    assert response.status_code == 302
    page = client.get(reverse("quality-sends")).content.decode()
    assert "Everyone" in page and "RKKP test" in page
    assert SendRecord.objects.get().status == SendStatus.SUCCEEDED


def test_the_quality_page_shows_errors_next_to_the_fields_and_refuses_clinicians(setup, client):
    cast, destination, cohort, _ = setup
    client.force_login(cast.quality)
    response = client.post(reverse("quality-sends"), {"destination": "", "cohort": "999"})
    assert response.status_code == 200
    assert response.context["form"].errors.keys() == {"destination", "cohort"}
    assert not SendRecord.objects.exists()
    client.force_login(cast.clinician_a)
    assert client.get(reverse("quality-sends")).status_code == 403
