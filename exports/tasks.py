from typing import Any

from celery import shared_task

from exports.quality_push import quality_send_run, quality_sends_sweep
from exports.services import export_job_run, exports_sweep


# acks_late + reject_on_worker_lost: a worker killed mid-export gives the message back; the
# claim in export_job_run makes the second delivery a no-op and the sweep fails the stale job.
@shared_task(acks_late=True, reject_on_worker_lost=True)
def run_export(job_id: str) -> None:
    export_job_run(job_id=job_id)


@shared_task
def sweep_exports() -> dict[str, int]:
    # One beat entry for the app: $export jobs, then quality-database sends.
    sends = quality_sends_sweep()
    return {**exports_sweep(), "sends_failed": sends["failed"], "sends_requeued": sends["requeued"]}


@shared_task(acks_late=True)
def send_to_destination(send_id: int) -> Any:
    # Retries live inside the service, per Bundle (a bounded loop with backoff): a task-level
    # retry would resend Bundles that had already gone through.
    return quality_send_run(send_id=send_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def run_omop_export(job_id: int) -> None:
    # Claimed inside (queued → running): a second delivery does nothing.
    from exports.omop.jobs import omop_job_run

    omop_job_run(job_id=job_id)
