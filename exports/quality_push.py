"""Send a cohort's pseudonymised outcome data to a quality database's FHIR server.

Batch Bundles of at most EXPORT_PUSH_BUNDLE_SIZE entries; every entry is a conditional create
(``ifNoneExist`` on the resource's stable export identifier), so sending the same cohort again
creates nothing new at the receiver. References travel as logical references (identifier only),
because the receiver assigns its own ids. Retries: a bounded loop per Bundle with exponential
backoff on 5xx and connection errors (4xx is our fault and is not retried); every send is a
SendRecord with its outcome.

The SendRecord is the record, the broker a hint (as for $export jobs): the worker beats
``heartbeat_at`` after every Bundle, any error ends the record as failed with its reason, and the
beat sweep (quality_sends_sweep) fails a send whose worker went silent and re-enqueues one whose
message was lost. Failing a send that in fact got through is harmless: sending again creates
nothing new at the receiver."""

import logging
import os
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Role, User
from audit.models import Action
from audit.services import audit_record
from exports import bulk
from exports.models import Destination, SendRecord, SendStatus
from exports.privacy import Pseudonymiser, PseudonymKeyMissing, pseudonym_key
from exports.selectors import ExportError, export_patients
from interop.mapping import export_identifier
from outcomes.models import Cohort

log = logging.getLogger(__name__)

PUSH_TYPES = ("Patient", "EpisodeOfCare", "QuestionnaireResponse", "Observation")
_REFERENCE_FIELDS = ("subject", "patient")


class SendFailed(Exception):
    def __init__(self, message: str, http_status: int | None) -> None:
        super().__init__(message)
        self.http_status = http_status


class _Stopped(Exception):
    """The record is no longer "sending": the sweep failed it while this worker was slow."""


def quality_send_start(*, destination: Destination, cohort: Cohort, user: User) -> SendRecord:
    """Record the send and enqueue it after commit."""
    if user.role not in (Role.QUALITY, Role.ADMIN):
        raise ExportError(403, "forbidden", "Only quality staff and administrators send to quality databases.")
    if not destination.active:
        raise ExportError(400, "invalid", f"Destination {destination.name} is not active.")
    pseudonym_key()
    with transaction.atomic():
        record = SendRecord.objects.create(destination=destination, cohort_id=cohort.pk,
                                           cohort_name=str(cohort)[:200], requested_by=user)
        audit_record(user=user, action=Action.EXPORT,
                     resource=f"send cohort {cohort.pk} to {destination.name} (pseudonymised), send {record.pk}")
        transaction.on_commit(lambda: _enqueue(record.pk))
    return record


def _enqueue(send_id: int) -> None:
    from exports.tasks import send_to_destination

    send_to_destination.delay(send_id)


def _logical(reference: dict[str, Any]) -> dict[str, Any]:
    """Patient/<pseudonym> → a reference by the Patient's identifier (the same pseudonym)."""
    resource_type, _, id_ = reference["reference"].partition("/")
    return {"identifier": export_identifier(resource_type, id_)}


def _for_receiver(resource: dict[str, Any]) -> dict[str, Any]:
    for field in _REFERENCE_FIELDS:
        ref = resource.get(field)
        if isinstance(ref, dict) and "reference" in ref:
            resource[field] = _logical(ref)
    resource.pop("device", None)  # devices are not sent; a dangling reference would be refused
    if resource["resourceType"] == "Observation":
        resource["derivedFrom"] = [_logical(d) for d in resource.get("derivedFrom", [])]
        if not resource["derivedFrom"]:
            del resource["derivedFrom"]
    if resource["resourceType"] == "EpisodeOfCare":
        resource["contained"][0]["subject"] = resource["patient"]
    return resource


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    identifier = resource["identifier"]
    identifier = identifier[0] if isinstance(identifier, list) else identifier
    return {"resource": _for_receiver(resource),
            "request": {"method": "POST", "url": resource["resourceType"],
                        "ifNoneExist": f"identifier={identifier['system']}|{identifier['value']}"}}


def cohort_resources(*, cohort: Cohort, user: User) -> Iterator[dict[str, Any]]:
    scope = export_patients(user=user, kind="group", group_id=str(cohort.pk), identified=False)
    refs = bulk.Refs(Pseudonymiser(pseudonym_key(), shift_dates=False))
    for resource_type in PUSH_TYPES:
        for resource in bulk.GENERATORS[resource_type](scope, refs, None):
            if resource["resourceType"] != "OperationOutcome":
                yield resource


def _bundles(resources: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for resource in resources:
        batch.append(_entry(resource))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _post(client: httpx.Client, destination: Destination, body: bytes, record: SendRecord) -> httpx.Response:
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    if destination.auth_env:
        value = os.environ.get(destination.auth_env) or getattr(settings, destination.auth_env, "")
        if not value:
            raise SendFailed(f"The environment variable {destination.auth_env} (the Authorization header) is "
                             "not set.", None)
        headers["Authorization"] = value
    delay = settings.EXPORT_PUSH_BACKOFF_SECONDS
    last: str = ""
    status: int | None = None
    for attempt in range(1, settings.EXPORT_PUSH_ATTEMPTS + 1):
        record.attempts += 1
        try:
            response = client.post(destination.base_url.rstrip("/"), content=body, headers=headers)
        except httpx.TransportError as exc:
            last, status = f"connection error: {type(exc).__name__}", None
        else:
            if response.status_code < 500:
                return response
            last, status = f"HTTP {response.status_code}", response.status_code
        if attempt < settings.EXPORT_PUSH_ATTEMPTS:
            time.sleep(delay)
            delay *= 2
    raise SendFailed(f"Gave up after {settings.EXPORT_PUSH_ATTEMPTS} attempts: {last}", status)


def _check(response: httpx.Response, sent: int) -> None:
    """A batch answers 200 with a batch-response Bundle: one entry per request entry, each with
    its own response.status. Anything else the receiver says is a refusal we can describe, never
    an error in our code (a 2xx with a JSON array once left a send "sending" for ever)."""
    status = response.status_code
    if status >= 400:
        raise SendFailed(f"The server refused the Bundle: HTTP {status} {response.text[:500]}", status)
    try:
        answer = orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise SendFailed(f"The server's answer (HTTP {status}) is not JSON.", status) from exc
    if not isinstance(answer, dict) or answer.get("resourceType") != "Bundle":
        got = f"resourceType {answer.get('resourceType')!r}" if isinstance(answer, dict) else \
            f"a JSON {type(answer).__name__}"
        raise SendFailed(f"The server's answer (HTTP {status}) is not a batch-response Bundle: got {got}.",
                         status)
    entries = answer.get("entry")
    if not isinstance(entries, list) or len(entries) != sent:
        count: int | str = len(entries) if isinstance(entries, list) else "no"
        raise SendFailed(f"The server's batch-response has {count} entries for the {sent} sent; the outcome "
                         "of this Bundle is unknown.", status)
    statuses = []
    for index, entry in enumerate(entries):
        entry_response = entry.get("response") if isinstance(entry, dict) else None
        entry_status = entry_response.get("status") if isinstance(entry_response, dict) else None
        if not isinstance(entry_status, str):
            raise SendFailed(f"Entry {index} of the server's batch-response has no response.status.", status)
        statuses.append(entry_status)
    refused = [s for s in statuses if not s.startswith("2")]
    if refused:
        raise SendFailed(f"{len(refused)} entries refused, e.g. {refused[0]}", status)


def _beat(record: SendRecord) -> None:
    """Progress after each Bundle; finding the record no longer "sending" means the sweep gave
    up on this worker, so it stops rather than carry on behind the record's back."""
    if not SendRecord.objects.filter(pk=record.pk, status=SendStatus.SENDING).update(
            heartbeat_at=timezone.now(), bundle_count=record.bundle_count,
            resource_count=record.resource_count, attempts=record.attempts, http_status=record.http_status):
        raise _Stopped


def quality_send_run(*, send_id: int) -> SendRecord:
    """Send one recorded send. Claimed first (``started_at`` set by a guarded update), so a
    re-delivered task does not send a second time. Every way out ends the record: succeeded, or
    failed with the reason; a worker that dies is the sweep's to fail."""
    now = timezone.now()
    if not SendRecord.objects.filter(pk=send_id, started_at__isnull=True, status=SendStatus.SENDING).update(
            started_at=now, heartbeat_at=now):
        return SendRecord.objects.get(pk=send_id)
    record = SendRecord.objects.select_related("destination", "requested_by").get(pk=send_id)
    from outcomes.models import Cohort  # the cohorts engineer's model

    try:
        cohort = Cohort.objects.get(pk=record.cohort_id)
        with httpx.Client(timeout=settings.EXPORT_PUSH_TIMEOUT_SECONDS) as client:
            for bundle in _bundles(cohort_resources(cohort=cohort, user=record.requested_by),
                                   settings.EXPORT_PUSH_BUNDLE_SIZE):
                body = orjson.dumps({"resourceType": "Bundle", "type": "batch", "entry": bundle})
                response = _post(client, record.destination, body, record)
                record.http_status = response.status_code
                _check(response, len(bundle))
                record.bundle_count += 1
                record.resource_count += len(bundle)
                _beat(record)
        record.status = SendStatus.SUCCEEDED
    except _Stopped:
        record.refresh_from_db()
        return record
    except SendFailed as exc:
        record.status, record.error = SendStatus.FAILED, str(exc)
        record.http_status = exc.http_status or record.http_status
    except (Cohort.DoesNotExist, ExportError) as exc:
        record.status, record.error = SendStatus.FAILED, f"The cohort cannot be sent: {exc}"
    except PseudonymKeyMissing:
        record.status, record.error = SendStatus.FAILED, ("The pseudonym key is missing on this server; "
                                                          "nothing more was sent.")
    except Exception as exc:
        # Our own bug or something unforeseen: the record still has to end, with the reason,
        # or it would say "sending" for ever and the claim would make a retry a no-op.
        log.exception("quality send %s failed", record.pk)
        record.status = SendStatus.FAILED
        record.error = f"The send failed unexpectedly ({type(exc).__name__}: {exc})"[:2000]
    record.finished_at = timezone.now()
    # Guarded: if the sweep already failed this send, its verdict stands.
    SendRecord.objects.filter(pk=record.pk, status=SendStatus.SENDING).update(
        status=record.status, error=record.error, http_status=record.http_status,
        finished_at=record.finished_at, bundle_count=record.bundle_count,
        resource_count=record.resource_count, attempts=record.attempts)
    record.refresh_from_db()
    return record


def quality_sends_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Beat (with exports_sweep, every minute):
    - a started send whose worker has not beaten for EXPORT_PUSH_STALE_SECONDS lost its worker
      (killed, or stuck): it is failed with that reason, so the page stops saying "sending";
    - a send never started EXPORT_PUSH_REQUEUE_SECONDS after it was recorded lost its message:
      it is enqueued again (the claim in quality_send_run makes a duplicate harmless)."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.EXPORT_PUSH_STALE_SECONDS)
    silent = Q(status=SendStatus.SENDING, started_at__isnull=False) & (
        Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True, started_at__lt=stale))
    minutes = max(1, settings.EXPORT_PUSH_STALE_SECONDS // 60)
    failed = SendRecord.objects.filter(silent).update(
        status=SendStatus.FAILED, finished_at=now,
        error=f"The send stopped (no progress from its worker for {minutes} minutes). Sending the cohort "
              "again is safe: the quality database creates nothing twice.")
    lost = now - timedelta(seconds=settings.EXPORT_PUSH_REQUEUE_SECONDS)
    requeued = 0
    for send_id in SendRecord.objects.filter(status=SendStatus.SENDING, started_at__isnull=True,
                                             created_at__lt=lost).values_list("pk", flat=True):
        _enqueue(send_id)
        requeued += 1
    return {"failed": failed, "requeued": requeued}
