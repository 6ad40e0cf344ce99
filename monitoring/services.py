"""Writes of home readings and of the device registry. Every path that stores a reading (REST
single and batch, web form, FHIR) goes through ``monitoring.ingest.readings_ingest``;
``reading_ingest`` is its one-reading form for Python callers. Devices are registered, lent,
returned and given tokens by the ``device_*`` functions below (clinicians' pages and the admin)."""

import functools
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from accounts.models import User
from audit.models import Action
from audit.services import Actor, audit_record, audit_record_many, client_ip
from monitoring.ingest import ItemResult, readings_ingest
from monitoring.models import Device, DeviceKind, DeviceLending, DeviceToken, Reading, Source
from patients.models import Patient


class DuplicateConflict(Exception):
    """The client id was used before for a different reading."""


@dataclass(frozen=True)
class IngestResult:
    reading: Reading
    created: bool


def reading_ingest(
    *,
    patient: Patient,
    measure: str,
    value: Decimal,
    unit: str,
    effective_at: datetime,
    source: Source,
    device: Device | None = None,
    client_id: str | None = None,
    entered_by: User | None = None,
    value2: Decimal | None = None,
) -> IngestResult:
    """Validate and store one reading, then have the rules evaluate it after commit.

    For blood pressure ``value`` is the systolic and ``value2`` the diastolic pressure.
    Idempotent on ``client_id``: the same reading sent again returns the stored one
    (``created=False``); the same id with different content raises DuplicateConflict.
    Raises ValidationError (field -> messages) for impossible values; nothing is stored then."""
    item: dict[str, object] = {"measure": measure, "unit": unit, "effective_at": effective_at}
    if value2 is None:
        item["value"] = value
    else:
        item["systolic"], item["diastolic"] = value, value2
    if client_id:
        item["client_id"] = client_id
    if device is not None:
        item["device"] = device.pk
    (result,) = readings_ingest(patient=patient, items=[item], source=source, device=device,
                                entered_by=entered_by)
    if result.status == 409:
        raise DuplicateConflict(client_id)
    if result.reading is None:
        raise ValidationError(result.errors)
    return IngestResult(result.reading, result.status == 201)


def readings_audit_created(*, user: Actor, patient: Patient, results: list[ItemResult],
                           request: HttpRequest | None = None) -> None:
    """Audit the readings a person just stored (REST or FHIR), one row each, in one INSERT (a
    batch of a thousand). A device's are not audited: it is no person, and writes only its own
    patient's record."""
    created = [(f"Reading/{r.id}", patient.pk) for r in results if r.status == 201 and r.id is not None]
    if created:
        audit_record_many(user=user, action=Action.CREATE, reads=created, ip=client_ip(request))


def reading_ingest_from_form(
    *,
    submission: uuid.UUID | None,
    patient: Patient,
    measure: str,
    value: Decimal,
    unit: str,
    effective_at: datetime,
    entered_by: User,
    value2: Decimal | None = None,
) -> IngestResult:
    """One reading a person typed into a web form: ``reading_ingest``, sent once per filled-in
    page. ``submission`` comes from a hidden field, new each time the page is shown: the same
    page sent twice (a second tap, a resend after an answer lost on a slow connection) stores
    the reading once (``created=False`` the second time). The time, when left empty, is the
    time of sending, so a resend differs in time only; it is recognised by its value(s). A page
    sent again with another value (back, corrected, sent) is a new reading, as without it."""
    send = functools.partial(reading_ingest, patient=patient, measure=measure, value=value, value2=value2,
                             unit=unit, effective_at=effective_at, source=Source.WEB, entered_by=entered_by)
    if submission is None:  # a page from before the field existed
        return send()
    client_id = f"web-{submission}"
    try:
        return send(client_id=client_id)
    except DuplicateConflict:
        earlier = Reading.objects.get(patient=patient, client_id=client_id)
        if (earlier.measure, earlier.value, earlier.value2) == (measure, value, value2):
            return IngestResult(earlier, created=False)
        return send()


# --- marking a reading as erroneous -----------------------------------------------------------

class AlreadyErroneous(Exception):
    def __init__(self, reading: Reading) -> None:
        super().__init__(f"Reading {reading.pk} was already marked as erroneous.")
        self.reading = reading


def reading_mark_erroneous(*, reading: Reading, by: User, reason: str,
                           request: HttpRequest | None = None) -> Reading:
    """Mark ``reading`` erroneous with ``reason``, once, and write the audit row (update).

    The mark is claimed with a guarded update (``erroneous_at IS NULL``): of two clinicians
    marking at once, one wins and the other gets AlreadyErroneous — the first reason is not
    overwritten. Raises ValueError for an empty reason."""
    reason = reason.strip()
    if not reason:
        raise ValueError("A reason is required.")
    with transaction.atomic():
        now = timezone.now()
        claimed = Reading.objects.filter(pk=reading.pk, erroneous_at=None).update(
            erroneous_at=now, erroneous_reason=reason, erroneous_by=by)
        if not claimed:
            reading.refresh_from_db()
            raise AlreadyErroneous(reading)
        audit_record(user=by, action=Action.UPDATE, resource=f"Reading/{reading.pk} (marked erroneous)",
                     patient_id=reading.patient_id, request=request)
    reading.refresh_from_db()
    return reading


# --- the device registry ---------------------------------------------------------------------
#
# A Device row holds its current (or last) lending: its patient and the period (lent_from,
# lent_to); DeviceLending keeps every lending, the current one included (ADR 0015). Readings sent
# with the device's token land in that patient's record, so the rules below guard against a
# device being in two records at once: a device is lent again only after its recorded lending
# has ended, and a re-lent or returned device loses its tokens (a token copied into a gateway
# app during the earlier lending must not write into the next patient's record).

def _device_audit(*, by: User, device: Device, what: str, action: Action = Action.UPDATE,
                  patient_id: uuid.UUID | None = None, request: HttpRequest | None = None) -> None:
    audit_record(user=by, action=action, resource=f"Device/{device.pk} ({what})",
                 patient_id=patient_id or device.patient_id, request=request)


def _record_lending(device: Device) -> None:
    """Write the device row's lending into its history (DeviceLending), as it is now."""
    DeviceLending.objects.update_or_create(device=device, lent_from=device.lent_from,
                                           defaults={"patient_id": device.patient_id, "lent_to": device.lent_to,
                                                     "returned_on": device.returned_on})


def _revoke_active_tokens(device: Device, now: datetime) -> int:
    return DeviceToken.objects.filter(device=device, revoked_at=None).update(revoked_at=now)


def _check_period(lent_from: date, lent_to: date | None) -> None:
    if lent_to is not None and lent_to < lent_from:
        raise ValidationError({"lent_to": [_("The end date cannot be before the start date.")]})


def device_register(*, kind: str, serial: str, patient: Patient, lent_from: date, by: User,
                    model: str = "", lent_to: date | None = None,
                    request: HttpRequest | None = None) -> Device:
    """Register a device and lend it to ``patient`` from ``lent_from`` (to ``lent_to``, if known).

    The model has no unlent state (Device.patient is required), so registering is lending.
    Raises ValidationError by field: an unknown kind, an empty serial, an end before the start,
    or a serial already registered for this kind (also when a concurrent request won the race:
    the unique constraint decides, not a read before the insert)."""
    serial, model = serial.strip(), model.strip()
    if kind not in DeviceKind.values:
        raise ValidationError({"kind": [_("Choose the kind of device.")]})
    if not serial:
        raise ValidationError({"serial": [_("Write the serial number from the device's label.")]})
    _check_period(lent_from, lent_to)
    duplicate = ValidationError({"serial": [
        _("A %(kind)s with serial number %(serial)s is already registered. Find it in the device "
          "list, or check the number on the label.") % {"kind": DeviceKind(kind).label.lower(), "serial": serial}]})
    # Labels are read aloud and typed in either case: SN-1 and sn-1 are one device.
    if Device.objects.filter(kind=kind, serial__iexact=serial).exists():
        raise duplicate
    try:
        with transaction.atomic():
            device = Device.objects.create(kind=kind, serial=serial, model=model, patient=patient,
                                           lent_from=lent_from, lent_to=lent_to)
            _record_lending(device)
            _device_audit(by=by, device=device, action=Action.CREATE, request=request,
                          what=f"registered, lent from {lent_from.isoformat()}")
    except IntegrityError:
        raise duplicate from None
    return device


def device_lend(*, device: Device, patient: Patient, lent_from: date, by: User,
                lent_to: date | None = None, request: HttpRequest | None = None) -> Device:
    """Lend a registered device again (to ``patient``, who may be the same or another one).

    The device keeps one lending, so the new one must start after the recorded one ended:
    otherwise the two periods would overlap and readings of the overlap would belong to two
    patients. Earlier tokens are revoked. Raises ValidationError by field."""
    _check_period(lent_from, lent_to)
    with transaction.atomic():
        # Locked, so two clinicians lending the same device at once cannot both pass the check.
        current = Device.objects.select_for_update().get(pk=device.pk)
        # A return sets lent_to with returned_on (device_return): no end means not returned.
        lent_until = current.lent_to
        if lent_until is None:
            raise ValidationError({"serial": [_("This device is still lent out. Register its return first.")]})
        if current.returned_on is None:
            # Lent until a date still to come, or overdue: lending it on now would take it (and its
            # token) from a patient who may still have it.
            raise ValidationError({"serial": [
                _("This device is lent out until %(date)s. Register its return first.")
                % {"date": date_format(lent_until, "j. F Y")}]})
        if lent_from <= lent_until:
            raise ValidationError({"lent_from": [
                _("The device was lent out until %(date)s. The new lending must start after that day.")
                % {"date": date_format(lent_until, "j. F Y")}]})
        previous_patient_id = current.patient_id
        _record_lending(current)  # the lending that ended stays in the history (ADR 0015)
        current.patient, current.lent_from, current.lent_to, current.returned_on = patient, lent_from, lent_to, None
        current.save(update_fields=["patient", "lent_from", "lent_to", "returned_on"])
        _record_lending(current)
        revoked = _revoke_active_tokens(current, timezone.now())
        if previous_patient_id != patient.pk:
            _device_audit(by=by, device=current, patient_id=previous_patient_id, request=request,
                          what="lent to another patient after its return")
        _device_audit(by=by, device=current, request=request,
                      what=f"lent from {lent_from.isoformat()}, {revoked} earlier token(s) revoked")
    return current


def device_return(*, device: Device, returned_on: date, by: User,
                  request: HttpRequest | None = None) -> Device:
    """Record that the device came back on ``returned_on`` (sets lent_to) and revoke its tokens:
    a device on the shelf must not send readings into the patient's record. Raises
    ValidationError({"returned_on": ...}) for a date before the lending, in the future, or a
    device already returned."""
    today = timezone.localdate()
    with transaction.atomic():
        current = Device.objects.select_for_update().get(pk=device.pk)
        if current.returned_on is not None:
            raise ValidationError({"returned_on": [_("The device was already returned on %(date)s.") % {
                "date": date_format(current.returned_on, "j. F Y")}]})
        if returned_on > today:
            raise ValidationError({"returned_on": [_("The return date cannot be in the future.")]})
        if returned_on < current.lent_from:
            raise ValidationError({"returned_on": [
                _("The device was lent out on %(date)s; it cannot be returned before that.")
                % {"date": date_format(current.lent_from, "j. F Y")}]})
        # The lending ends the day it came back: earlier than planned, or later (overdue), its
        # readings up to that day are the patient's.
        current.lent_to = current.returned_on = returned_on
        current.save(update_fields=["lent_to", "returned_on"])
        _record_lending(current)
        revoked = _revoke_active_tokens(current, timezone.now())
        _device_audit(by=by, device=current, request=request,
                      what=f"returned {returned_on.isoformat()}, {revoked} token(s) revoked")
    return current


def device_token_issue(*, device: Device, by: User,
                       request: HttpRequest | None = None) -> tuple[DeviceToken, str]:
    """Issue a new API token for ``device`` and revoke its earlier ones (one device, one live
    token: a lost or copied token stops working when the device is set up again). Returns the
    token row and the raw token, which exists only in the caller's hands; the database keeps
    its hash. Raises ValidationError for a returned device."""
    with transaction.atomic():
        current = Device.objects.select_for_update().get(pk=device.pk)
        if current.returned_on is not None or (current.lent_to is not None and current.lent_to < timezone.localdate()):
            raise ValidationError(_("The device has been returned; lend it out again before issuing a token."))
        revoked = _revoke_active_tokens(current, timezone.now())
        token, raw = DeviceToken.issue(current)
        _device_audit(by=by, device=current, action=Action.CREATE, request=request,
                      what=f"token {token.pk} issued, {revoked} earlier token(s) revoked")
    return token, raw


def device_token_revoke(*, device: Device, by: User, request: HttpRequest | None = None) -> int:
    """Revoke every live token of ``device``; the API refuses them from the next request on
    (DeviceTokenAuthentication looks tokens up per request). Returns how many were revoked."""
    with transaction.atomic():
        revoked = _revoke_active_tokens(device, timezone.now())
        _device_audit(by=by, device=device, request=request, what=f"{revoked} token(s) revoked")
    return revoked
