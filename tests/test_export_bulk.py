"""Bulk Data $export end to end (Celery in-process): kick-off, polling, manifest, files, and
every refusal as an OperationOutcome; expiry, the per-user limit, cancel, a dead worker, the
management command."""

from datetime import timedelta
from io import StringIO

import orjson
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from fhir.resources.R4B.operationoutcome import OperationOutcome

from accounts.models import ApiToken
from audit.models import Action, AuditEvent
from exports.models import ExportJob, ExportStatus
from exports.services import export_job_run, exports_sweep, job_dir
from outcomes.models import Cohort
from tests.export_data import add_outcome_data

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _export_settings(settings, tmp_path):
    settings.EXPORT_ROOT = tmp_path / "exports"
    settings.EXPORT_PSEUDONYM_KEY = "test-project-key"
    settings.EXPORT_MAX_CONCURRENT = 1


def _kickoff(client, path="/fhir/$export", data=None, prefer="respond-async", **extra):
    headers = {"HTTP_PREFER": prefer} if prefer else {}
    return client.get(path, data or {}, **headers, **extra)


def _outcome(response, status: int, code: str) -> str:
    assert response.status_code == status, response.content
    outcome = OperationOutcome.model_validate(response.json())
    assert outcome.issue[0].code == code
    return outcome.issue[0].diagnostics or ""


def _run(client, capture, path="/fhir/$export", data=None):
    with capture(execute=True):
        response = _kickoff(client, path, data)
    assert response.status_code == 202, response.content
    return response["Content-Location"]


def _lines(client, url: str) -> list[dict]:
    response = client.get(url, HTTP_ACCEPT="application/fhir+ndjson")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/fhir+ndjson"
    body = b"".join(response.streaming_content)
    return [orjson.loads(line) for line in body.splitlines()]


def test_kickoff_answers_202_with_a_status_url_and_polling_gives_the_manifest(
        cast, client, django_capture_on_commit_callbacks):
    add_outcome_data(cast)
    client.force_login(cast.quality)
    status_url = _run(client, django_capture_on_commit_callbacks)
    assert status_url.startswith("http://testserver/fhir/$export-status/")
    response = client.get(status_url)
    assert response.status_code == 200
    manifest = response.json()
    assert manifest["requiresAccessToken"] is True
    assert manifest["request"].endswith("/fhir/$export")
    assert manifest["transactionTime"]
    assert manifest["error"] == []
    counts = {o["type"]: o["count"] for o in manifest["output"]}
    # A and B (C withdrew): 2 patients, 2 episodes, 2 devices, 2 responses, 2 x (3 + 1) readings + 2 scores
    assert counts == {"Patient": 2, "EpisodeOfCare": 2, "Device": 2, "QuestionnaireResponse": 2,
                      "Observation": 10}
    for output in manifest["output"]:
        lines = _lines(client, output["url"])
        assert len(lines) == output["count"]
        assert {r["resourceType"] for r in lines} == {output["type"]}


def test_polling_while_running_answers_202_with_progress_and_retry_after(cast, client):
    client.force_login(cast.quality)
    job = ExportJob.objects.create(requester=cast.quality, kind="system", params={}, request_url="x",
                                   status=ExportStatus.RUNNING, progress=42, progress_text="Observation",
                                   heartbeat_at=timezone.now())
    response = client.get(f"/fhir/$export-status/{job.pk}")
    assert response.status_code == 202
    assert response["X-Progress"] == "42% (Observation)"
    assert int(response["Retry-After"]) > 0


def test_post_kickoff_takes_a_parameters_resource(cast, client, django_capture_on_commit_callbacks):
    add_outcome_data(cast)
    client.force_login(cast.quality)
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "_type", "valueString": "Patient,Observation"},
        {"name": "_outputFormat", "valueString": "application/fhir+ndjson"}]}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/fhir/Patient/$export", body, content_type="application/fhir+json",
                               HTTP_PREFER="respond-async")
    assert response.status_code == 202, response.content
    manifest = client.get(response["Content-Location"]).json()
    assert [o["type"] for o in manifest["output"]] == ["Patient", "Observation"]


def test_since_leaves_out_what_did_not_change_after_it(cast, client, django_capture_on_commit_callbacks):
    add_outcome_data(cast)
    client.force_login(cast.quality)
    from monitoring.models import Reading

    Reading.objects.update(received_at=timezone.now() - timedelta(days=10))
    since = (timezone.now() - timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    status_url = _run(client, django_capture_on_commit_callbacks, data={"_type": "Observation", "_since": since})
    manifest = client.get(status_url).json()
    assert manifest["output"] == [{"type": "Observation", "url": manifest["output"][0]["url"], "count": 2}]


def test_a_bearer_token_works_for_kickoff_status_and_files(cast, client, django_capture_on_commit_callbacks):
    add_outcome_data(cast)
    _, raw = ApiToken.issue(cast.quality)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.get("/fhir/$export", {"_type": "Patient"}, HTTP_PREFER="respond-async", **auth)
    manifest = client.get(response["Content-Location"], **auth).json()
    assert client.get(manifest["output"][0]["url"], **auth).status_code == 200


def test_group_export_covers_the_cohorts_members_only(cast, client, django_capture_on_commit_callbacks):
    add_outcome_data(cast)
    cohort = Cohort.objects.create(name="Lung", program=cast.program_a)
    client.force_login(cast.quality)
    status_url = _run(client, django_capture_on_commit_callbacks, f"/fhir/Group/{cohort.pk}/$export",
                      {"_type": "Patient,Observation"})
    counts = {o["type"]: o["count"] for o in client.get(status_url).json()["output"]}
    assert counts == {"Patient": 1, "Observation": 5}  # patient A; withdrawn C left out


def test_downloads_are_audited_per_file(cast, client, django_capture_on_commit_callbacks):
    add_outcome_data(cast)
    client.force_login(cast.quality)
    manifest = client.get(_run(client, django_capture_on_commit_callbacks, data={"_type": "Patient"})).json()
    before = AuditEvent.objects.filter(action=Action.EXPORT, resource__contains="file").count()
    _lines(client, manifest["output"][0]["url"])
    audit = AuditEvent.objects.filter(action=Action.EXPORT, resource__contains="file")
    assert audit.count() == before + 1
    assert "Patient (2 resources, pseudonymised)" in audit.last().resource
    assert audit.last().user == cast.quality


# --- bad input and other people's jobs -------------------------------------------------------

def test_kickoff_without_prefer_respond_async_is_400(cast, client):
    client.force_login(cast.quality)
    assert "respond-async" in _outcome(_kickoff(client, prefer=None), 400, "invalid")
    assert not ExportJob.objects.exists()


def test_unknown_type_is_400_and_nothing_is_stored(cast, client):
    client.force_login(cast.quality)
    message = _outcome(_kickoff(client, data={"_type": "Patient,Medication"}), 400, "not-supported")
    assert "Medication" in message
    assert not ExportJob.objects.exists()


@pytest.mark.parametrize("since", ["yesterday", "2026-13-01T00:00:00Z", "2026-01-01T00:00:00", "2999-01-01T00:00:00Z"])
def test_malformed_or_zoneless_or_future_since_is_400(cast, client, since):
    client.force_login(cast.quality)
    assert "_since" in _outcome(_kickoff(client, data={"_since": since}), 400, "invalid")


def test_unsupported_output_format_and_parameters_are_400(cast, client):
    client.force_login(cast.quality)
    _outcome(_kickoff(client, data={"_outputFormat": "text/csv"}), 400, "not-supported")
    _outcome(_kickoff(client, data={"_typeFilter": "Observation?code=x"}), 400, "not-supported")


def test_post_with_a_body_that_is_not_parameters_is_400(cast, client):
    client.force_login(cast.quality)
    response = client.post("/fhir/$export", {"resourceType": "Patient"}, content_type="application/fhir+json",
                           HTTP_PREFER="respond-async")
    _outcome(response, 400, "invalid")


def _post(client, body):
    return client.post("/fhir/$export", orjson.dumps(body), content_type="application/fhir+json",
                       HTTP_PREFER="respond-async")


@pytest.mark.parametrize("body, says", [
    ([1], "got a JSON list"),
    ("Parameters", "got a JSON str"),
    (None, "got a JSON null"),
    (42, "got a JSON int"),
    ({"resourceType": "Bundle", "parameter": []}, "resourceType is 'Bundle'"),
    ({"parameter": []}, "resourceType is None"),
    ({"resourceType": "Parameters", "parameter": "x"}, "Parameters.parameter must be a list"),
    ({"resourceType": "Parameters", "parameter": {"name": "_type"}}, "Parameters.parameter must be a list"),
    ({"resourceType": "Parameters", "parameter": [1]}, "Parameters.parameter[0] must be an object"),
    ({"resourceType": "Parameters", "parameter": [{"name": "_type", "valueString": "Patient"}, "x"]},
     "Parameters.parameter[1] must be an object"),
    ({"resourceType": "Parameters", "parameter": [{"name": ["_type"], "valueString": "Patient"}]},
     "Parameters.parameter[0].name must be a non-empty string"),
    ({"resourceType": "Parameters", "parameter": [{"valueString": "Patient"}]},
     "Parameters.parameter[0].name must be a non-empty string"),
    ({"resourceType": "Parameters", "parameter": [{"name": "_type"}]}, "must have exactly one value[x]"),
    ({"resourceType": "Parameters", "parameter": [{"name": "_type", "valueString": "Patient",
                                                   "valueCode": "Patient"}]}, "must have exactly one value[x]"),
    ({"resourceType": "Parameters", "parameter": [{"name": "_type", "valueInteger": 1}]},
     "(_type) takes valueString, not valueInteger"),
    ({"resourceType": "Parameters", "parameter": [{"name": "_type", "valueString": ["Patient"]}]},
     "valueString (_type) must be a JSON string"),
    ({"resourceType": "Parameters", "parameter": [{"name": "_since", "valueInstant": 20260101}]},
     "valueInstant (_since) must be a JSON string"),
    ({"resourceType": "Parameters", "parameter": [{"name": "identified", "valueBoolean": "yes"}]},
     "valueBoolean (identified) must be a JSON boolean"),
])
def test_a_malformed_parameters_body_is_400_naming_the_fault_and_nothing_is_created(cast, client, body, says):
    client.force_login(cast.quality)
    assert says in _outcome(_post(client, body), 400, "invalid")
    assert not ExportJob.objects.exists()
    assert not AuditEvent.objects.filter(action=Action.EXPORT).exists()


def test_a_well_formed_parameters_body_takes_an_instant_since_and_a_boolean(
        cast, client, django_capture_on_commit_callbacks):
    client.force_login(cast.quality)
    since = (timezone.now() - timedelta(days=1)).isoformat()
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, {"resourceType": "Parameters", "parameter": [
            {"name": "_since", "valueInstant": since}, {"name": "dateShift", "valueBoolean": True}]})
    assert response.status_code == 202, response.content
    job = ExportJob.objects.get()
    assert job.params["since"] and job.params["shift_dates"] is True
    # an unknown parameter in the body is "not supported", as in a query string
    ExportJob.objects.all().delete()
    _outcome(_post(client, {"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueReference": {"reference": "Patient/1"}}]}), 400, "not-supported")


def test_unauthenticated_kickoff_is_401(cast, client):
    _outcome(_kickoff(client), 401, "login")


@pytest.mark.parametrize("who", ["patient_a", "relative"])
def test_patients_and_relatives_may_not_export(cast, client, who):
    from accounts.models import Role
    from tests.factories import make_user

    user = cast.patient_a.user if who == "patient_a" else make_user("rel", Role.RELATIVE)
    client.force_login(user)
    _outcome(_kickoff(client), 403, "forbidden")


def test_group_the_user_may_not_see_is_404_like_a_missing_one(cast, client):
    cohort = Cohort.objects.create(name="Lung", program=cast.program_a)
    client.force_login(cast.clinician_a)  # cohorts are quality work
    _outcome(_kickoff(client, f"/fhir/Group/{cohort.pk}/$export"), 404, "not-found")
    client.force_login(cast.quality)
    _outcome(_kickoff(client, "/fhir/Group/999999/$export"), 404, "not-found")
    _outcome(_kickoff(client, "/fhir/Group/not-a-number/$export"), 404, "not-found")


def test_polling_or_cancelling_someone_elses_job_is_404(cast, client, django_capture_on_commit_callbacks):
    add_outcome_data(cast)
    client.force_login(cast.quality)
    status_url = _run(client, django_capture_on_commit_callbacks, data={"_type": "Patient"})
    file_url = client.get(status_url).json()["output"][0]["url"]
    client.force_login(cast.admin)
    _outcome(client.get(status_url), 404, "not-found")
    _outcome(client.delete(status_url), 404, "not-found")
    _outcome(client.get(file_url), 404, "not-found")
    client.force_login(cast.quality)
    assert client.get(status_url).status_code == 200


def test_downloading_an_expired_file_is_410(cast, client, django_capture_on_commit_callbacks, settings):
    add_outcome_data(cast)
    client.force_login(cast.quality)
    status_url = _run(client, django_capture_on_commit_callbacks, data={"_type": "Patient"})
    file_url = client.get(status_url).json()["output"][0]["url"]
    job = ExportJob.objects.get()
    assert job.expires_at - job.finished_at == timedelta(seconds=settings.EXPORT_FILE_TTL)
    ExportJob.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    _outcome(client.get(file_url), 410, "expired")
    # the sweep deletes the files of expired exports
    assert exports_sweep()["expired"] == 1
    assert not job_dir(job).exists()
    _outcome(client.get(file_url), 410, "expired")


def test_export_jobs_past_their_retention_are_deleted_and_running_ones_never(
        cast, client, django_capture_on_commit_callbacks, settings):
    add_outcome_data(cast)
    client.force_login(cast.quality)
    _run(client, django_capture_on_commit_callbacks, data={"_type": "Patient"})
    done = ExportJob.objects.get()
    running = ExportJob.objects.create(requester=cast.admin, kind=done.kind, params={},
                                       status=ExportStatus.RUNNING, heartbeat_at=timezone.now())
    long_ago = timezone.now() - timedelta(days=settings.EXPORT_JOB_RETENTION_DAYS, seconds=1)
    ExportJob.objects.update(created_at=long_ago)
    assert exports_sweep()["deleted"] == 1
    assert not job_dir(done).exists()
    assert list(ExportJob.objects.values_list("pk", flat=True)) == [running.pk]


def test_a_second_concurrent_export_beyond_the_limit_is_429(cast, client):
    client.force_login(cast.quality)
    # no capture of on-commit: the first job stays queued, as with a busy worker
    assert _kickoff(client).status_code == 202
    response = _kickoff(client)
    assert "limit" in _outcome(response, 429, "throttled")
    assert response["Retry-After"]
    assert ExportJob.objects.count() == 1
    client.force_login(cast.admin)  # the limit is per user
    assert _kickoff(client).status_code == 202


def test_cancel_answers_202_deletes_the_files_and_the_status_url_then_404s(
        cast, client, django_capture_on_commit_callbacks):
    add_outcome_data(cast)
    client.force_login(cast.quality)
    status_url = _run(client, django_capture_on_commit_callbacks)
    job = ExportJob.objects.get()
    assert job_dir(job).exists()
    assert client.delete(status_url).status_code == 202
    assert not job_dir(job).exists()
    _outcome(client.get(status_url), 404, "not-found")
    assert _kickoff(client).status_code == 202  # a cancelled job no longer counts against the limit


def test_cancelling_a_running_export_stops_the_worker_at_its_next_heartbeat(cast, client, monkeypatch):
    add_outcome_data(cast)
    client.force_login(cast.quality)
    assert _kickoff(client).status_code == 202  # queued, not run
    job = ExportJob.objects.get()
    monkeypatch.setattr("exports.services.HEARTBEAT_EVERY", 1)
    seen = []

    def progress(resource_type: str, count: int, done: int, total: int) -> None:
        seen.append(done)
        if done == 2:  # the requester cancels while the worker is writing
            assert client.delete(f"/fhir/$export-status/{job.pk}").status_code == 202

    export_job_run(job_id=job.pk, progress=progress)
    job.refresh_from_db()
    assert job.status == ExportStatus.CANCELLED
    assert max(seen) == 2
    assert not job_dir(job).exists()


def test_a_job_whose_worker_died_is_failed_by_the_sweep_and_reports_the_failure(cast, client, settings):
    client.force_login(cast.quality)
    assert _kickoff(client).status_code == 202
    job = ExportJob.objects.get()
    # The worker claimed the job, wrote part of a file, and was killed (no more heartbeats).
    ExportJob.objects.filter(pk=job.pk).update(
        status=ExportStatus.RUNNING, heartbeat_at=timezone.now() - timedelta(
            seconds=settings.EXPORT_HEARTBEAT_STALE_SECONDS + 1))
    job_dir(job).mkdir(parents=True)
    (job_dir(job) / "Observation.part").write_bytes(b"{}\n")
    assert client.get(f"/fhir/$export-status/{job.pk}").status_code == 202  # looks running ...
    assert exports_sweep()["failed"] == 1  # ... until the sweep sees the stale heartbeat
    job.refresh_from_db()
    assert job.status == ExportStatus.FAILED
    assert not job_dir(job).exists()
    assert "worker" in _outcome(client.get(f"/fhir/$export-status/{job.pk}"), 500, "exception")
    # The broker re-delivers the message (acks_late): the claim makes it a no-op.
    assert export_job_run(job_id=job.pk) is None
    assert ExportJob.objects.get().status == ExportStatus.FAILED
    assert _kickoff(client).status_code == 202  # and the user is free to start again


def test_a_fresh_heartbeat_is_left_alone_and_a_lost_queued_job_is_enqueued_again(
        cast, client, settings, django_capture_on_commit_callbacks):
    client.force_login(cast.quality)
    assert _kickoff(client).status_code == 202  # the message "was lost": never ran
    job = ExportJob.objects.get()
    assert exports_sweep() == {"failed": 0, "requeued": 0, "expired": 0, "deleted": 0}
    ExportJob.objects.update(created_at=timezone.now() - timedelta(hours=1))
    assert exports_sweep()["requeued"] == 1  # eager: runs now
    job.refresh_from_db()
    assert job.status == ExportStatus.COMPLETED


def test_an_error_during_the_export_fails_the_job_cleanly(cast, client, monkeypatch):
    add_outcome_data(cast)
    client.force_login(cast.quality)
    assert _kickoff(client).status_code == 202
    job = ExportJob.objects.get()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")
        yield  # pragma: no cover

    monkeypatch.setitem(__import__("exports.bulk").bulk.GENERATORS, "Observation", broken)
    export_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ExportStatus.FAILED and "RuntimeError" in job.failure
    assert not job_dir(job).exists()


# --- the management command ------------------------------------------------------------------

def test_export_fhir_command_writes_the_same_files(cast):
    add_outcome_data(cast)
    out = StringIO()
    call_command("export_fhir", "--user", "quality", "--type", "Patient,Observation", stdout=out, stderr=StringIO())
    lines = [line.split("\t") for line in out.getvalue().splitlines() if "\t" in line]
    assert [(t, c) for t, c, _ in lines] == [("Patient", "2"), ("Observation", "10")]
    assert AuditEvent.objects.filter(action=Action.EXPORT, user=cast.quality).exists()
    from pathlib import Path

    assert len(Path(lines[0][2]).read_bytes().splitlines()) == 2


def test_export_fhir_command_refuses_bad_input(cast):
    with pytest.raises(CommandError, match="No active user"):
        call_command("export_fhir", "--user", "nobody")
    with pytest.raises(CommandError, match="not export"):
        call_command("export_fhir", "--user", "quality", "--type", "Medication")
    with pytest.raises(CommandError, match="time zone"):
        call_command("export_fhir", "--user", "quality", "--since", "last week")
    with pytest.raises(CommandError, match="pseudonymised"):
        call_command("export_fhir", "--user", "quality", "--identified", "--purpose", "a long enough purpose")


def test_the_sweep_is_on_the_beat_schedule_and_the_export_task_survives_a_dying_worker(settings):
    from exports.tasks import run_export, sweep_exports
    from proplatform.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["exports-sweep"]
    assert entry["task"] == sweep_exports.name and entry["schedule"] <= 60
    assert run_export.name in app.tasks
    assert run_export.acks_late is True and run_export.reject_on_worker_lost is True


def test_since_exports_patients_episodes_and_devices_by_their_own_last_change(
        cast, client, django_capture_on_commit_callbacks):
    """Issue 21: EpisodeOfCare and Device were exported in full whatever _since said, and Patient
    was filtered on its creation time, so an edit after creation was missed."""
    from monitoring.models import Device
    from patients.models import Patient, TreatmentEpisode

    client.force_login(cast.quality)
    old = timezone.now() - timedelta(days=10)
    Patient.objects.update(created_at=old, updated_at=old)
    TreatmentEpisode.objects.update(updated_at=old)
    Device.objects.update(updated_at=old)
    cast.patient_a.phone = "+45 99 99 99 99"
    cast.patient_a.save()  # an edit today, of a patient created ten days ago
    cast.device_b.returned_on = timezone.localdate()
    cast.device_b.save()
    since = (timezone.now() - timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    status_url = _run(client, django_capture_on_commit_callbacks,
                      data={"_type": "Patient,EpisodeOfCare,Device", "_since": since})
    counts = {o["type"]: o["count"] for o in client.get(status_url).json()["output"]}
    assert counts.get("Patient") == 1  # A, edited; B unchanged
    assert counts.get("Device") == 1  # B's, returned
    assert "EpisodeOfCare" not in counts  # none changed
