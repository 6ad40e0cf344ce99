from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import hash_token, new_raw_token
from monitoring.measures import MEASURES


class DeviceKind(models.TextChoices):
    BLOOD_PRESSURE = "blood-pressure-monitor", _("Blood-pressure monitor")
    SCALE = "scale", _("Scale")
    PULSE_OXIMETER = "pulse-oximeter", _("Pulse oximeter")
    THERMOMETER = "thermometer", _("Thermometer")
    GLUCOMETER = "glucometer", _("Glucometer")
    PEAK_FLOW = "peak-flow", _("Peak-flow meter")


# What each kind of device measures: a device's token may send these and nothing else (a pulse
# oximeter's token once stored a blood pressure of 190/120). Blood-pressure monitors and pulse
# oximeters also report the pulse they count.
KIND_MEASURES: dict[str, frozenset[str]] = {
    DeviceKind.BLOOD_PRESSURE: frozenset({"blood-pressure", "heart-rate"}),
    DeviceKind.SCALE: frozenset({"body-weight"}),
    DeviceKind.PULSE_OXIMETER: frozenset({"spo2", "heart-rate"}),
    DeviceKind.THERMOMETER: frozenset({"body-temperature"}),
    DeviceKind.GLUCOMETER: frozenset({"glucose"}),
    DeviceKind.PEAK_FLOW: frozenset({"peak-flow"}),
}


class Device(models.Model):
    """A home device lent to one patient. Its readings are that patient's readings."""

    kind = models.CharField(max_length=32, choices=DeviceKind.choices)
    model = models.CharField(max_length=200, blank=True)
    serial = models.CharField(max_length=200)
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="devices")
    lent_from = models.DateField(default=timezone.localdate)
    # The lending's last day: planned while the device is out, the day it came back once its
    # return is registered (returned_on). Readings are the patient's up to the end of that day.
    lent_to = models.DateField(null=True, blank=True)
    returned_on = models.DateField(null=True, blank=True)
    # Last change (lent on, returned): Bulk $export's _since compares it.
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "serial"], name="uniq_device_serial")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.serial}"

    @property
    def status(self) -> str:
        """"returned" (its return registered), "overdue" (its lending ended, no return
        registered: still at the patient's, or lost), or "lent"."""
        if self.returned_on is not None:
            return "returned"
        if self.lent_to is not None and self.lent_to < timezone.localdate():
            return "overdue"
        return "lent"


class DeviceLending(models.Model):
    """One period a device was lent to a patient: the device's history (ADR 0015). The Device
    row holds the current (or last) lending as well, for the checks on every request; earlier
    lendings are looked up only for a reading measured outside the current one (a backlog
    uploaded after the device came back and went out again), and for a patient's page."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="lendings")
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="device_lendings")
    lent_from = models.DateField()
    lent_to = models.DateField(null=True, blank=True)
    returned_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "lent_from"], name="uniq_device_lending_start"),
            models.CheckConstraint(condition=models.Q(lent_to=None) | models.Q(lent_to__gte=models.F("lent_from")),
                                   name="device_lending_ends_after_start"),
        ]
        indexes = [models.Index(fields=["patient", "device"], name="device_lending_patient")]

    def __str__(self) -> str:
        return f"device {self.device_id} lent {self.lent_from}–{self.lent_to or ''}"


class DeviceToken(models.Model):
    """A bearer token for one device (``dv_…``): shown once, stored hashed, revocable."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="tokens")
    key_hash = models.CharField(max_length=64, unique=True)  # serves the lookup per request
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"token of device {self.device_id} created {self.created_at:%Y-%m-%d}"

    @classmethod
    def issue(cls, device: Device) -> tuple["DeviceToken", str]:
        raw = new_raw_token("dv")
        return cls.objects.create(device=device, key_hash=hash_token(raw)), raw


class Source(models.TextChoices):
    DEVICE = "device", _("Device")
    WEB = "web", _("Entered on the web")
    API = "api", _("API")


class Reading(models.Model):
    # No index of its own: reading_trend (patient, measure, effective_at) serves every look-up by
    # patient. A second index on patient alone cost every insert, and the planner chose it for
    # the ingest's prepared repeat check (a generic plan made while the table looked empty),
    # filtering all of a patient's readings instead of finding the one.
    patient = models.ForeignKey("patients.Patient", on_delete=models.CASCADE, related_name="readings",
                                db_index=False)
    device = models.ForeignKey(Device, on_delete=models.SET_NULL, null=True, blank=True)
    measure = models.CharField(max_length=32, choices=[(c, c) for c in MEASURES])
    value = models.DecimalField(max_digits=9, decimal_places=3)
    # The second component of a two-part measure: diastolic for blood pressure (value = systolic).
    value2 = models.DecimalField(max_digits=9, decimal_places=3, null=True, blank=True)
    unit = models.CharField(max_length=16)  # canonical UCUM unit of the measure
    # What the sender sent before normalisation (code system/code, value, unit), when it differed.
    original = models.JSONField(null=True, blank=True)
    # Possible but unusual (e.g. SpO2 80 %): stored, evaluated, and shown marked for a second look.
    unusual = models.BooleanField(default=False)
    # A clinician marked it wrong (a slipped cuff, the wrong person on the scale): kept and
    # shown, but excluded from rules and outcomes.
    erroneous_at = models.DateTimeField(null=True, blank=True)
    erroneous_reason = models.TextField(blank=True)
    erroneous_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    effective_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=8, choices=Source.choices)
    # NULL, not "", for "none given": the unique constraint below must not match two readings
    # that both came without a client id.
    client_id = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            # Idempotent retries from devices and gateway apps (see readings_ingest).
            models.UniqueConstraint(
                fields=["patient", "client_id"],
                condition=models.Q(client_id__isnull=False),
                name="uniq_reading_client_id",
            )
        ]
        indexes = [
            # history and trend charts: one patient's readings of a measure over time; with the id
            # last it also serves the FHIR search Observation?patient=&code=&_sort=(-)date in keyset
            # pages (interop.search_resources): ORDER BY effective_at, id from the index, the cursor
            # as the scan's start, no sort (bench/fhir_search.py).
            models.Index(fields=["patient", "measure", "effective_at", "id"], name="reading_trend"),
            # the readings marked erroneous since a moment (the outcome indicators' reading days,
            # outcomes.reading_days): partial, so a reading stored unmarked — every ingest —
            # adds nothing to it.
            models.Index(fields=["erroneous_at"], name="reading_erroneous",
                         condition=models.Q(erroneous_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.measure} {self.value} {self.unit} @ {self.effective_at:%Y-%m-%d %H:%M}"
