"""Bulk $export: kick-off, the run, cancel and the sweep (ADR 0007). Quality push: quality_push.py."""

import logging
import shutil
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import User
from audit.models import Action, Outcome
from audit.services import audit_record, audit_record_many, client_ip
from exports import bulk
from exports.models import ACTIVE_STATUSES, ExportJob, ExportKind, ExportStatus
from exports.privacy import Pseudonymiser, pseudonym_key
from exports.selectors import ExportError, export_patients
from smart.models import SystemClient
from smart.principal import SystemPrincipal, is_system

log = logging.getLogger(__name__)

OUTPUT_FORMATS = {"application/fhir+ndjson", "application/ndjson", "ndjson"}
HEARTBEAT_EVERY = 5000  # rows between heartbeats (and cancel checks)
MIN_PURPOSE_LENGTH = 10

Progress = Callable[[str, int, int, int], None]  # (type, rows of this type, rows done, rows estimated)


def job_dir(job: ExportJob) -> Path:
    return Path(settings.EXPORT_ROOT) / str(job.pk)


# Beside the NDJSON files of an identified export, not listed in its manifest: the ids of the
# patients it holds, so that each download is audited naming every one of them.
PATIENTS_FILE = ".patients"


def _delete_files(job: ExportJob) -> None:
    shutil.rmtree(job_dir(job), ignore_errors=True)


def export_parameters(*, types: list[str] | None, since: datetime | None, output_format: str | None,
                      identified: bool, purpose: str, shift_dates: bool) -> dict[str, Any]:
    """Checks what a kick-off asked for; the view and the command parse, this decides."""
    if output_format is not None and output_format not in OUTPUT_FORMATS:
        raise ExportError(400, "not-supported", f"_outputFormat {output_format!r} is not supported; use "
                                                "application/fhir+ndjson.")
    unknown = [t for t in types or [] if t not in bulk.TYPES]
    if unknown:
        raise ExportError(400, "not-supported", f"_type has resource types this server does not export: "
                                                f"{', '.join(unknown)}. Supported: {', '.join(bulk.TYPES)}.")
    purpose = purpose.strip()
    if identified and len(purpose) < MIN_PURPOSE_LENGTH:
        raise ExportError(400, "required", "An identified export needs a stated purpose (parameter 'purpose', "
                                           f"at least {MIN_PURPOSE_LENGTH} characters); it is audited.")
    if identified and shift_dates:
        raise ExportError(400, "invalid", "dateShift applies to pseudonymised exports only.")
    ordered = [t for t in bulk.TYPES if not types or t in types]
    # types_given: the client named its types, so a type its scopes do not cover is an error
    # rather than left out (Bulk Data IG; system clients, export_types_for_scopes).
    return {"types": ordered, "types_given": bool(types), "since": since.isoformat() if since else None,
            "output_format": "application/fhir+ndjson", "identified": identified,
            "purpose": purpose[:500], "shift_dates": shift_dates}


def export_job_create(*, user: User | SystemPrincipal, kind: ExportKind, group_id: str = "", params: dict[str, Any],
                      request_url: str, request: HttpRequest | None = None, enqueue: bool = True) -> ExportJob:
    """Kick-off: check scope and the per-user limit, record the job, audit, enqueue after commit
    (``enqueue=False``: the caller runs it, as the management command does)."""
    identified = bool(params["identified"])
    export_patients(user=user, kind=kind, group_id=group_id, identified=identified)  # 403/404 now, not later
    if is_system(user):
        params = {**params, "types": export_types_for_scopes(principal=user, params=params)}
    if not identified:
        pseudonym_key()  # refuse at kick-off, not in the worker, when the key is missing
    owner = {"client": user.client} if is_system(user) else {"requester": user}
    with transaction.atomic():
        # Lock the requester's (or system client's) row so two simultaneous kick-offs cannot
        # both pass the limit.
        if is_system(user):
            SystemClient.objects.select_for_update().filter(pk=user.client.pk).first()
        else:
            get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        active = ExportJob.objects.filter(**owner, status__in=ACTIVE_STATUSES).count()
        if active >= settings.EXPORT_MAX_CONCURRENT:
            raise ExportError(429, "throttled", f"You have {active} export(s) running; the limit is "
                                                f"{settings.EXPORT_MAX_CONCURRENT}. Wait for it to finish "
                                                "or cancel it (DELETE on its status URL).")
        job = ExportJob.objects.create(**owner, kind=kind, group_id=group_id, params=params,
                                       request_url=request_url[:2000])
        shape = "identified" if identified else "pseudonymised"
        purpose = f" purpose: {params['purpose']}" if params["purpose"] else ""
        audit_record(user=user, action=Action.EXPORT, request=request,
                     resource=f"$export {job.pk} {kind}{' Group/' + group_id if group_id else ''} "
                              f"{shape} types={','.join(params['types'])}{purpose}")
        if enqueue:
            transaction.on_commit(lambda: _enqueue(job.pk))
    return job


def export_types_for_scopes(*, principal: SystemPrincipal, params: dict[str, Any]) -> list[str]:
    """The types a system client's export holds: those of the request its token's scopes give
    read and search on (ADR 0018). Named types it may not have refuse the kick-off; without
    ``_type`` the export is narrowed to what it may have."""
    refused = [t for t in params["types"] if not principal.may(t, "rs")]
    if refused and params.get("types_given"):
        raise ExportError(403, "forbidden", f"This token's scopes do not cover {', '.join(refused)} "
                                            "(system/<type>.read or .rs).")
    types = [t for t in params["types"] if t not in refused]
    if not types:
        raise ExportError(403, "forbidden", "This token's scopes cover none of the exported types.")
    return types


def export_job_requester(job: ExportJob) -> User | SystemPrincipal | None:
    """Who an export runs for: its person, or its system client (whose current state counts: a
    client deactivated since the kick-off is refused by export_patients)."""
    return SystemPrincipal(client=job.client) if job.client is not None else job.requester


def _enqueue(job_id: uuid.UUID) -> None:
    from exports.tasks import run_export

    run_export.delay(str(job_id))


def export_job_run(*, job_id: uuid.UUID | str, progress: Progress | None = None) -> ExportJob | None:
    """Run one export. Claims the job first (queued → running), so a re-delivered message does
    nothing; writes one NDJSON file per type; beats every HEARTBEAT_EVERY rows, which is also
    where a cancel (or the sweep having failed the job) is noticed."""
    now = timezone.now()
    if not ExportJob.objects.filter(pk=job_id, status=ExportStatus.QUEUED).update(
            status=ExportStatus.RUNNING, started_at=now, heartbeat_at=now, transaction_time=now):
        return None
    job = ExportJob.objects.get(pk=job_id)
    try:
        _write(job, progress)
    except _Stopped:
        _delete_files(job)
        return job
    except Exception as exc:
        log.exception("export %s failed", job.pk)
        _delete_files(job)
        ExportJob.objects.filter(pk=job.pk, status=ExportStatus.RUNNING).update(
            status=ExportStatus.FAILED, finished_at=timezone.now(),
            failure=f"The export failed ({type(exc).__name__}); nothing was kept. Start a new one.")
    job.refresh_from_db()
    return job


class _Stopped(Exception):
    """The job is no longer ours: cancelled, or failed by the sweep."""


def _write(job: ExportJob, progress: Progress | None) -> None:
    params = job.params
    identified = bool(params.get("identified"))
    scope = export_patients(user=export_job_requester(job), kind=job.kind, group_id=job.group_id, identified=identified)
    refs = bulk.Refs(None if identified else Pseudonymiser(pseudonym_key(), shift_dates=params["shift_dates"]))
    since = datetime.fromisoformat(params["since"]) if params.get("since") else None
    total = sum(bulk.estimate(t, scope, since) for t in params["types"]) or 1
    directory = job_dir(job)
    directory.mkdir(parents=True, exist_ok=True)
    if identified:
        (directory / PATIENTS_FILE).write_text("\n".join(str(pk) for pk in scope.values_list("pk", flat=True)),
                                               encoding="ascii")
    files, done = [], 0
    errors = 0
    error_path = directory / "OperationOutcome.ndjson"
    with error_path.open("wb") as error_file:
        for resource_type in params["types"]:
            path = directory / f"{resource_type}.ndjson"
            partial = path.with_suffix(".part")
            count = 0
            dumps = orjson.dumps
            with partial.open("wb", buffering=1 << 20) as out:
                for resource in bulk.GENERATORS[resource_type](scope, refs, since):
                    if resource["resourceType"] == "OperationOutcome":
                        error_file.write(dumps(resource) + b"\n")
                        errors += 1
                    else:
                        out.write(dumps(resource) + b"\n")
                        count += 1
                    done += 1
                    if done % HEARTBEAT_EVERY == 0:
                        _beat(job, resource_type, done, total)
                        if progress:
                            progress(resource_type, count, done, total)
            if progress:
                progress(resource_type, count, done, total)
            if count:
                partial.rename(path)
                files.append({"type": resource_type, "name": path.name, "count": count})
            else:
                partial.unlink()  # the manifest lists no empty files (Bulk Data IG)
    error_list = [{"type": "OperationOutcome", "name": error_path.name, "count": errors}] if errors else []
    if not errors:
        error_path.unlink()
    finished = timezone.now()
    if not ExportJob.objects.filter(pk=job.pk, status=ExportStatus.RUNNING).update(
            status=ExportStatus.COMPLETED, progress=100, progress_text="", heartbeat_at=finished,
            finished_at=finished, files=files, errors=error_list,
            expires_at=finished + timedelta(seconds=settings.EXPORT_FILE_TTL)):
        raise _Stopped


def _beat(job: ExportJob, resource_type: str, done: int, total: int) -> None:
    percent = min(99, done * 100 // total)
    if not ExportJob.objects.filter(pk=job.pk, status=ExportStatus.RUNNING).update(
            heartbeat_at=timezone.now(), progress=percent, progress_text=f"{resource_type}"):
        raise _Stopped


def export_job_cancel(*, job: ExportJob, user: User | SystemPrincipal, request: HttpRequest | None = None) -> None:
    """DELETE on the status URL. A running worker notices at its next heartbeat and removes its
    files; otherwise they go now."""
    ExportJob.objects.filter(pk=job.pk, status__in=[*ACTIVE_STATUSES, ExportStatus.COMPLETED]).update(
        status=ExportStatus.CANCELLED, finished_at=timezone.now())
    if job.status != ExportStatus.RUNNING:
        _delete_files(job)
        ExportJob.objects.filter(pk=job.pk).update(files_deleted_at=timezone.now())
    audit_record(user=user, action=Action.EXPORT, resource=f"$export {job.pk} cancelled", request=request)


def export_file_record_download(*, job: ExportJob, user: User | SystemPrincipal, resource_type: str, count: int,
                                request: HttpRequest | None) -> None:
    """Audit one file's download. A pseudonymised file names no patient: one row. An identified
    file is a read of every patient in it: one row each, so each patient's "who saw my data"
    finds it."""
    resource = (f"$export {job.pk} file {resource_type} ({count} resources, "
                f"{'identified' if job.identified else 'pseudonymised'})")
    audit_record(user=user, action=Action.EXPORT, request=request, outcome=Outcome.ALLOWED, resource=resource)
    if job.identified:
        listed = job_dir(job) / PATIENTS_FILE
        ids = listed.read_text(encoding="ascii").split() if listed.is_file() else []
        for start in range(0, len(ids), 5000):
            audit_record_many(user=user, action=Action.EXPORT, ip=client_ip(request),
                              reads=[(resource, uuid.UUID(pk)) for pk in ids[start:start + 5000]])


def exports_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Beat, every minute. The database is the record, the broker a hint:
    - a running job whose heartbeat is older than EXPORT_HEARTBEAT_STALE_SECONDS lost its worker:
      it is failed (files removed) rather than left "running" for ever;
    - a job still queued after that long lost its message: it is enqueued again (the claim in
      export_job_run makes a duplicate message harmless);
    - finished exports past their expiry lose their files;
    - jobs that ended more than EXPORT_JOB_RETENTION_DAYS ago are deleted: the audit trail keeps
      who exported what and who downloaded which file, the job row is only the status URL's."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.EXPORT_HEARTBEAT_STALE_SECONDS)
    failed = requeued = expired = 0
    for job in ExportJob.objects.filter(status=ExportStatus.RUNNING, heartbeat_at__lt=stale):
        if ExportJob.objects.filter(pk=job.pk, status=ExportStatus.RUNNING, heartbeat_at__lt=stale).update(
                status=ExportStatus.FAILED, finished_at=now,
                failure="The export stopped (its worker went away); nothing was kept. Start a new one."):
            _delete_files(job)
            failed += 1
    for job_id in ExportJob.objects.filter(status=ExportStatus.QUEUED, created_at__lt=stale).values_list(
            "pk", flat=True):
        _enqueue(job_id)
        requeued += 1
    for job in ExportJob.objects.filter(expires_at__lt=now, files_deleted_at__isnull=True):
        _delete_files(job)
        ExportJob.objects.filter(pk=job.pk).update(files_deleted_at=now)
        expired += 1
    ended = now - timedelta(days=settings.EXPORT_JOB_RETENTION_DAYS)
    old = ExportJob.objects.filter(created_at__lt=ended).exclude(status__in=ACTIVE_STATUSES)
    for job in old.filter(files_deleted_at__isnull=True):
        _delete_files(job)
    deleted, _ = old.delete()
    return {"failed": failed, "requeued": requeued, "expired": expired, "deleted": deleted}
