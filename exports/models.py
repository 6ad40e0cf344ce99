"""Bulk $export jobs, and pushes of cohorts to external quality databases (ADR 0007)."""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class ExportKind(models.TextChoices):
    SYSTEM = "system", "/$export"
    PATIENT = "patient", "/Patient/$export"
    GROUP = "group", "/Group/{id}/$export"


class ExportStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    COMPLETED = "completed", pgettext_lazy("export job", "Completed")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


ACTIVE_STATUSES = (ExportStatus.QUEUED, ExportStatus.RUNNING)


class ExportJob(models.Model):
    """One Bulk Data kick-off. The random id is the status URL's; only the requester sees it.

    ``params`` holds the parsed request (types, since, output format, identified, purpose,
    date shift); ``files`` the finished NDJSON files [{type, name, count}]. The job row is the
    record: a worker that dies leaves ``heartbeat_at`` behind, and the sweep fails the job."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Who kicked it off: a person, or a system client of SMART Backend Services (ADR 0019) —
    # exactly one of the two (constraint below).
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                  null=True, blank=True)
    client = models.ForeignKey("smart.SystemClient", on_delete=models.PROTECT, related_name="+",
                               null=True, blank=True)
    kind = models.CharField(max_length=8, choices=ExportKind.choices)
    group_id = models.CharField(max_length=64, blank=True)
    params = models.JSONField(default=dict)
    request_url = models.CharField(max_length=2000)
    status = models.CharField(max_length=10, choices=ExportStatus.choices, default=ExportStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)  # percent
    progress_text = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    files = models.JSONField(default=list, blank=True)
    errors = models.JSONField(default=list, blank=True)  # [{type: "OperationOutcome", name, count}]
    failure = models.TextField(blank=True)  # why the job failed, for the status URL's OperationOutcome
    # The time the export's data is consistent with (the manifest's transactionTime).
    transaction_time = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    files_deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # the per-user limit at kick-off: this user's queued/running jobs
            models.Index(fields=["requester", "status"], name="exportjob_requester_status"),
            # the same limit for a system client
            models.Index(fields=["client", "status"], name="exportjob_client_status"),
            # the sweep: running jobs by heartbeat, finished jobs by expiry
            models.Index(fields=["status", "heartbeat_at"], name="exportjob_status_heartbeat"),
            models.Index(fields=["expires_at"], condition=models.Q(files_deleted_at__isnull=True),
                         name="exportjob_expiry"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(requester__isnull=False, client__isnull=True)
                                   | models.Q(requester__isnull=True, client__isnull=False),
                                   name="exportjob_one_requester"),
        ]

    def __str__(self) -> str:
        return f"export {self.pk} ({self.kind}, {self.status})"

    @property
    def identified(self) -> bool:
        return bool(self.params.get("identified"))


class Destination(models.Model):
    """An external FHIR server of a quality database. The authorisation header's value is never
    stored here: ``auth_env`` names the environment variable that holds it."""

    name = models.CharField(max_length=200, unique=True)
    base_url = models.URLField(max_length=500)
    auth_env = models.CharField(
        max_length=100, blank=True,
        help_text=_("Name of the environment variable holding the Authorization header value, "
                    "e.g. QUALITY_DB_RKKP_AUTH. Empty: no header."))
    active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.name


class SendStatus(models.TextChoices):
    SENDING = "sending", _("Sending")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")


class SendRecord(models.Model):
    """One send of a cohort to a destination, with its result."""

    destination = models.ForeignKey(Destination, on_delete=models.PROTECT, related_name="sends")
    # The cohort (outcomes.Cohort) by id and name as they were: a plain column, so the record
    # outlives a deleted cohort.
    cohort_id = models.BigIntegerField()
    cohort_name = models.CharField(max_length=200, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)  # the worker's claim
    # The worker's last sign of life (claim, then each Bundle); the sweep fails a silent send.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=SendStatus.choices, default=SendStatus.SENDING)
    bundle_count = models.PositiveIntegerField(default=0)
    resource_count = models.PositiveIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["-created_at"], name="sendrecord_recent")]  # the send page's list

    def __str__(self) -> str:
        return f"send {self.pk} of cohort {self.cohort_id} to {self.destination_id} ({self.status})"


class OmopPerson(models.Model):
    """The OMOP ``person_id`` of a patient: CDM 5.4 ids are 32-bit integers, too small for a
    keyed hash without collisions at 100,000 patients, so each patient gets a number the first
    time an OMOP export holds them and keeps it (ADR 0019). The number is assigned in the order
    patients are first exported, sorted by their random id, so it says nothing about them."""

    id = models.AutoField(primary_key=True)  # the person_id
    patient = models.OneToOneField("patients.Patient", on_delete=models.CASCADE, related_name="+")

    def __str__(self) -> str:
        return f"OMOP person {self.pk}"


class OmopExportJob(models.Model):
    """One OMOP CDM export into a PostgreSQL schema (manage.py export_omop, or a quality user's
    Celery job). ``result`` holds the counts per table and the checks after the export."""

    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                  null=True, blank=True)  # None: started from the command line
    schema = models.CharField(max_length=63)
    since = models.DateTimeField(null=True, blank=True)
    cohort_id = models.BigIntegerField(null=True, blank=True)
    release_date = models.DateField()
    status = models.CharField(max_length=10, choices=ExportStatus.choices, default=ExportStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)  # percent
    progress_text = models.CharField(max_length=200, blank=True)
    result = models.JSONField(default=dict, blank=True)
    failure = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # the page's list of recent jobs
        indexes = [models.Index(fields=["-created_at"], name="omopexportjob_recent")]

    def __str__(self) -> str:
        return f"OMOP export {self.pk} into {self.schema} ({self.status})"
