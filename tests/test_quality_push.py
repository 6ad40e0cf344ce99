"""Push of a cohort to a quality database's FHIR server: a small in-memory FHIR server started
by the test (batch Bundles, conditional create through ifNoneExist) stands in for the receiver."""

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import Action, AuditEvent
from exports.models import Destination, SendRecord, SendStatus
from exports.quality_push import quality_send_run, quality_send_start
from exports.selectors import ExportError
from outcomes.models import Cohort
from tests.export_data import FREE_TEXT, add_outcome_data

pytestmark = pytest.mark.django_db


class FhirStore:
    """What the fake server holds: resources by type, matched on identifier for ifNoneExist."""

    def __init__(self) -> None:
        self.resources: dict[str, list[dict[str, Any]]] = {}
        self.fail_next: list[int] = []  # statuses to answer before behaving (e.g. [503])
        self.raw_next: list[tuple[int, bytes]] = []  # (status, body) to answer verbatim first
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
                raw = store.raw_next.pop(0) if store.raw_next else None
                status = raw[0] if raw else store.fail_next.pop(0) if store.fail_next else 200
                answer = store.batch(body) if status == 200 and body.get("type") == "batch" else {
                    "resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "transient"}]}
            if status == 200 and body.get("type") != "batch":
                status = 400
            payload = raw[1] if raw else json.dumps(answer).encode()
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
def _push_settings(settings):
    settings.EXPORT_PSEUDONYM_KEY = "push-test-key"
    settings.EXPORT_PUSH_BUNDLE_SIZE = 3
    settings.EXPORT_PUSH_ATTEMPTS = 3
    settings.EXPORT_PUSH_BACKOFF_SECONDS = 0.01


@pytest.fixture
def setup(cast, fhir_server):
    add_outcome_data(cast)
    url, store = fhir_server
    destination = Destination.objects.create(name="RKKP test", base_url=url)
    cohort = Cohort.objects.create(name="Everyone")
    return cast, destination, cohort, store


def _send(cast, destination, cohort, capture) -> SendRecord:
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


# --- a send always ends: odd answers, our own errors, lost workers and lost messages ------------

@pytest.mark.parametrize("answer, expected", [
    (b"[]", "not a batch-response Bundle: got a JSON list"),
    (b'{"resourceType": "OperationOutcome"}', "got resourceType 'OperationOutcome'"),
    (b'{"resourceType": "Bundle", "type": "batch-response"}', "has no entries for the 3 sent"),
    (b'{"resourceType": "Bundle", "entry": [{"response": {"status": "201"}}]}', "has 1 entries for the 3 sent"),
    (b'{"resourceType": "Bundle", "entry": [1, 2, 3]}', "Entry 0 of the server's batch-response has no"),
    (b'{"resourceType": "Bundle", "entry": [{}, {}, {}]}', "Entry 0 of the server's batch-response has no"),
    (b"not json", "is not JSON"),
])
def test_a_2xx_answer_that_is_not_a_batch_response_fails_the_send_with_the_reason(
        setup, django_capture_on_commit_callbacks, answer, expected):
    cast, destination, cohort, store = setup
    store.raw_next = [(200, answer)]
    record = _send(cast, destination, cohort, django_capture_on_commit_callbacks)
    assert record.status == SendStatus.FAILED and record.finished_at
    assert expected in record.error and record.http_status == 200
    assert record.bundle_count == 0 and store.requests == 1  # nothing more after the doubtful Bundle


@pytest.mark.parametrize("error", [KeyError("identifier"), AttributeError("'list' object has no attribute 'get'")])
def test_an_unexpected_error_in_our_code_fails_the_send_with_its_type_and_message(
        setup, django_capture_on_commit_callbacks, monkeypatch, error):
    cast, destination, cohort, store = setup

    def broken(resource):
        raise error

    monkeypatch.setattr("exports.quality_push._for_receiver", broken)
    record = _send(cast, destination, cohort, django_capture_on_commit_callbacks)
    assert record.status == SendStatus.FAILED and record.finished_at
    assert type(error).__name__ in record.error and str(error) in record.error
    # and the claim still makes a re-delivered task a no-op on an ended record
    assert quality_send_run(send_id=record.pk).status == SendStatus.FAILED and store.requests == 0


def test_a_pseudonym_key_gone_missing_before_the_worker_ran_fails_the_send(
        setup, django_capture_on_commit_callbacks, settings):
    cast, destination, cohort, store = setup
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        record = quality_send_start(destination=destination, cohort=cohort, user=cast.quality)
    settings.EXPORT_PSEUDONYM_KEY = ""
    for callback in callbacks:
        callback()
    record.refresh_from_db()
    assert record.status == SendStatus.FAILED and "pseudonym key" in record.error
    assert store.requests == 0


def _sweep() -> dict[str, int]:
    from exports.tasks import sweep_exports

    return sweep_exports.delay().get()  # the beat task, run in-process


def test_a_send_whose_worker_went_silent_is_failed_by_the_sweep(setup, settings):
    cast, destination, cohort, _ = setup
    now = timezone.now()
    fresh = SendRecord.objects.create(destination=destination, cohort_id=cohort.pk, requested_by=cast.quality,
                                      started_at=now - timedelta(hours=2), heartbeat_at=now)
    silent = SendRecord.objects.create(
        destination=destination, cohort_id=cohort.pk, requested_by=cast.quality, bundle_count=2,
        started_at=now - timedelta(hours=2),
        heartbeat_at=now - timedelta(seconds=settings.EXPORT_PUSH_STALE_SECONDS + 1))
    result = _sweep()
    assert result["sends_failed"] == 1 and result["sends_requeued"] == 0
    silent.refresh_from_db()
    fresh.refresh_from_db()
    assert silent.status == SendStatus.FAILED and silent.finished_at and "no progress" in silent.error
    assert silent.bundle_count == 2  # what had gone through stays on the record
    assert fresh.status == SendStatus.SENDING  # a worker that beats recently is left alone
    assert _sweep()["sends_failed"] == 0  # and a failed send is not failed again


def test_a_worker_the_sweep_gave_up_on_stops_sending_and_the_sweeps_verdict_stands(
        setup, django_capture_on_commit_callbacks, monkeypatch):
    cast, destination, cohort, store = setup
    from exports import quality_push

    real_check = quality_push._check

    def slow_then_swept(response, sent):
        real_check(response, sent)
        SendRecord.objects.update(status=SendStatus.FAILED, error="swept")  # the sweep ran meanwhile

    monkeypatch.setattr(quality_push, "_check", slow_then_swept)
    record = _send(cast, destination, cohort, django_capture_on_commit_callbacks)
    assert store.requests == 1  # stopped after the Bundle in flight
    assert record.status == SendStatus.FAILED and record.error == "swept"


def test_a_send_whose_message_was_lost_is_enqueued_again_by_the_sweep(
        setup, django_capture_on_commit_callbacks, settings):
    cast, destination, cohort, store = setup
    with django_capture_on_commit_callbacks(execute=False):  # the message "was lost": never ran
        record = quality_send_start(destination=destination, cohort=cohort, user=cast.quality)
    assert _sweep()["sends_requeued"] == 0  # not yet: it may just be waiting in the queue
    assert store.requests == 0
    SendRecord.objects.filter(pk=record.pk).update(
        created_at=timezone.now() - timedelta(seconds=settings.EXPORT_PUSH_REQUEUE_SECONDS + 1))
    assert _sweep()["sends_requeued"] == 1  # eager: runs now
    record.refresh_from_db()
    assert record.status == SendStatus.SUCCEEDED, record.error
    assert record.started_at and record.heartbeat_at and store.count()["Patient"] == 2
    assert _sweep()["sends_requeued"] == 0  # started sends are never re-enqueued
