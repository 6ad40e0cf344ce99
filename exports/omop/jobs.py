"""The OMOP export as a job for quality staff: recorded, audited, run by a Celery worker after
commit, claimed before it runs (a re-delivered message does nothing), with its progress and
result on the job row."""

import logging
import threading
from datetime import date, datetime
from typing import Any

from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import User
from audit.models import Action
from audit.services import audit_record
from exports.models import ACTIVE_STATUSES, ExportStatus, OmopExportJob
from exports.omop.export import OmopCheckFailed, OmopError, cohort_resolve, omop_export, postgres_required
from exports.omop.schema import schema_validate
from exports.privacy import PseudonymKeyMissing, pseudonym_key

log = logging.getLogger(__name__)


def omop_job_create(*, user: User, schema: str, since: datetime | None, cohort_id: int | None,
                    release_date: date, request: HttpRequest | None = None, enqueue: bool = True) -> OmopExportJob:
    """Checks the input now (schema name, cohort, key) so a mistake is said at once, not by the
    worker; one running job per schema (two would write the same tables)."""
    postgres_required()
    schema_validate(schema)
    cohort_resolve(cohort_id)
    try:
        pseudonym_key()
    except PseudonymKeyMissing as exc:
        raise OmopError(str(exc)) from exc
    with transaction.atomic():
        if OmopExportJob.objects.select_for_update().filter(schema=schema, status__in=ACTIVE_STATUSES).exists():
            raise OmopError(f"An export into {schema!r} is already queued or running; wait for it.")
        job = OmopExportJob.objects.create(requester=user, schema=schema, since=since, cohort_id=cohort_id,
                                           release_date=release_date)
        audit_record(user=user, action=Action.EXPORT, request=request,
                     resource=f"OMOP export {job.pk} into schema {schema}"
                              f"{f' cohort {cohort_id}' if cohort_id else ''} pseudonymised")
        if enqueue:
            transaction.on_commit(lambda: _enqueue(job.pk))
    return job


def _enqueue(job_id: int) -> None:
    from exports.tasks import run_omop_export

    run_omop_export.delay(job_id)


def omop_job_run(*, job_id: int) -> OmopExportJob | None:
    now = timezone.now()
    if not OmopExportJob.objects.filter(pk=job_id, status=ExportStatus.QUEUED).update(
            status=ExportStatus.RUNNING, started_at=now):
        return None  # claimed by another delivery, or cancelled
    job = OmopExportJob.objects.get(pk=job_id)

    def progress(step: str, percent: int) -> None:
        # The export is one transaction; an update of the job row inside it would show only at
        # its end. A short thread has its own connection (Django's are per thread), so the
        # progress commits at once and the page sees it while the export runs.
        thread = threading.Thread(target=_progress_write, args=(job_id, step, percent))
        thread.start()
        thread.join()

    OmopExportJob.objects.filter(pk=job_id).update(progress=1, progress_text="exporting")
    try:
        result = omop_export(schema=job.schema, since=job.since, cohort_id=job.cohort_id,
                             release_date=job.release_date, progress=progress)
    except OmopCheckFailed as exc:
        _finish(job_id, ExportStatus.FAILED, exc.result, str(exc))
    except OmopError as exc:
        _finish(job_id, ExportStatus.FAILED, {}, str(exc))
    except Exception as exc:
        log.exception("OMOP export %s failed", job_id)
        _finish(job_id, ExportStatus.FAILED, {}, f"The export failed ({type(exc).__name__}); nothing was kept.")
    else:
        _finish(job_id, ExportStatus.COMPLETED, result, "")
    return OmopExportJob.objects.get(pk=job_id)


def _progress_write(job_id: int, step: str, percent: int) -> None:
    try:
        OmopExportJob.objects.filter(pk=job_id, status=ExportStatus.RUNNING).update(
            progress=min(percent, 99), progress_text=step[:200])
    finally:
        connection.close()


def _finish(job_id: int, status: str, result: dict[str, Any], failure: str) -> None:
    OmopExportJob.objects.filter(pk=job_id).update(
        status=status, result=result, failure=failure, finished_at=timezone.now(),
        progress=100 if status == ExportStatus.COMPLETED else 0, progress_text="")
