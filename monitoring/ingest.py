"""Reading ingest, one or a thousand at a time: the one path every reading takes.

The hot loop works on plain values: each item is parsed by plain functions (no serializer per
item), normalised to the measure's canonical unit, checked for plausibility, de-duplicated
within the batch and against the database with one query, and inserted with one COPY
(PostgreSQL; ``bulk_create`` elsewhere) in one transaction — or, for one reading with a
client_id (a device's single upload), with one statement that also stores its pending batch
(``_insert_one``, PostgreSQL). Each batch puts one row in the evaluation inbox in the same
transaction (alerts.evaluation, ADR 0020) and asks for its evaluation after commit
(``alerts.evaluation.request_soon``). Stored
items are plain values until a caller asks for a ``Reading`` model instance
(``ItemResult.reading``): the batch endpoint answers with id and flag only, and at 1,000 items
a batch the model instances cost more than parsing the items did.

Per item the outcome is an ``ItemResult``: 201 stored, 200 already stored (a retry), 400 field
errors, 404 a patient or device that is not the caller's, 409 a client_id reused for another
reading. Nothing of a refused item is stored; the good items of a batch are.
"""

import math
import re
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, NamedTuple

import orjson
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _

from alerts.evaluation import Source as EvaluationSource
from alerts.evaluation import enqueue, reading_enqueue_sql, request_soon
from monitoring.measures import MEASURES, Measure, coding_lookup
from monitoring.models import KIND_MEASURES, Device, DeviceLending, Reading, Source
from monitoring.units import UnitError, to_canonical
from patients.models import Patient
from proplatform.db import prepared_cursor
from proplatform.input import parse_decimal

MAX_BATCH = 1000
_PLACES = Decimal("0.001")
# Reading.value is DecimalField(max_digits=9, decimal_places=3).
_LARGEST = Decimal("999999.999")

Errors = dict[str, list[str]]


class BatchTooLarge(ValueError):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


@dataclass(slots=True)
class Parsed:
    """One item, parsed and normalised, not yet stored."""

    index: int
    measure: str
    value: Decimal
    value2: Decimal | None
    unit: str
    effective_at: datetime
    client_id: str | None
    original: dict[str, Any] | None
    unusual: bool
    device_id: int | None
    patient_ref: uuid.UUID | None
    id: int | None = None  # set when stored


class StoredReading(NamedTuple):
    """The fields of a reading just stored that the API answers with, named as on the model."""

    pk: int
    patient_id: Any
    device_id: int | None
    measure: str
    value: Decimal
    value2: Decimal | None
    unit: str
    effective_at: datetime
    received_at: datetime
    client_id: str | None
    source: Source
    unusual: bool


@dataclass(slots=True, eq=False)
class ItemResult:
    """One item's outcome. ``id``/``unusual`` are set when the reading is stored (201) or was
    already (200); ``reading`` builds the model instance on first use."""

    index: int
    status: int
    errors: Errors = field(default_factory=dict)
    id: int | None = None
    unusual: bool = False
    _readings: "_Readings | None" = field(default=None, repr=False)
    _reading: Reading | None = field(default=None, repr=False)

    @property
    def reading(self) -> Reading | None:
        if self._reading is None and self.id is not None and self._readings is not None:
            self._reading = self._readings.get(self.id)
        return self._reading

    @property
    def stored(self) -> StoredReading | Reading | None:
        """What the API answers for the reading (monitoring.api.reading_json): for one this
        request stored, its fields without building the model instance, which costs as much
        as writing the answer (the device fast path, ADR 0016)."""
        if self._reading is None and self._readings is not None and self.id in self._readings.new:
            return self._readings.stored(self.id)
        return self.reading

    def as_json(self) -> dict[str, Any]:
        if self.id is not None:
            return {"index": self.index, "status": self.status, "id": self.id, "unusual": self.unusual}
        return {"index": self.index, "status": self.status, "errors": self.errors}


# --- parsing: plain functions, one item at a time -------------------------------------------

def _required() -> list[str]:
    return [_("This field is required.")]


def _number(raw: Any) -> Decimal | str:
    """A finite Decimal, or an error message. Text is read by the one parser every path uses
    (proplatform.input.parse_decimal: ASCII digits, one decimal point)."""
    if isinstance(raw, bool) or raw is None:
        return _("A valid number is required.")
    if isinstance(raw, int):
        number = Decimal(raw)
    elif isinstance(raw, float):
        if not math.isfinite(raw):
            return _("A valid number is required.")
        number = Decimal(repr(raw))
    elif isinstance(raw, Decimal):
        number = raw
    elif isinstance(raw, str):
        parsed = parse_decimal(raw)
        if parsed is None:
            return _("A valid number is required.")
        number = parsed
    else:
        return _("A valid number is required.")
    if not number.is_finite():
        return _("A valid number is required.")
    # By its exponent first: abs() of 1E+999999999 overflows the decimal context (a 500).
    if number.adjusted() > _LARGEST.adjusted() or abs(number) > _LARGEST:
        shown = raw if not isinstance(raw, str) or len(raw) <= 40 else raw[:40] + "…"
        return _("%(value)s is far outside any possible value.") % {"value": shown}
    return number


def _utf8(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8: JSON may carry half of a surrogate pair."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


_EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
_LARGEST_OFFSET = timedelta(hours=14)  # before it, a device's clock was never set


def _when(raw: Any, latest: datetime) -> datetime | str:
    if isinstance(raw, datetime):
        when = raw
    elif isinstance(raw, str):
        try:
            when = datetime.fromisoformat(raw)
        except ValueError:
            return _("Use ISO 8601 with a time zone, e.g. 2026-11-22T08:30:00+01:00.")
    else:
        return _("Use ISO 8601 with a time zone, e.g. 2026-11-22T08:30:00+01:00.")
    if when.tzinfo is None or (offset := when.utcoffset()) is None:
        return _("Include a time zone, e.g. 2026-11-22T08:30:00+01:00.")
    if abs(offset) > _LARGEST_OFFSET:
        # ISO 8601 allows up to ±23:59, but no place on Earth is more than 14 hours from UTC
        # (Kiribati, +14:00), and PostgreSQL refuses offsets beyond ±15:59: such a time is a
        # device's misconfiguration, refused whichever path it came by.
        return _("A time-zone offset is at most 14 hours from UTC, e.g. +01:00.")
    try:
        when.astimezone(UTC)  # 0001-01-01T00:10+01:00 is no instant a datetime can hold
    except OverflowError:
        if when.year > 1900:  # 9999-12-31T23:30-01:00
            return _("The time lies in the future; check the device clock.")
        when = _EARLIEST - timedelta(days=1)
    if when < _EARLIEST:
        return _("The time lies before 1900; check the device clock.")
    if when > latest:
        return _("The time lies in the future; check the device clock.")
    return when


def range_error(value: Decimal, lo: Decimal, hi: Decimal, unit_label: Any) -> str | None:
    if lo <= value <= hi:
        return None
    # Numbers as the reader's language writes them: 0,5 in Danish.
    return _("%(value)s %(unit)s is not a possible value; expected %(lo)s to %(hi)s.") % {
        "value": number_format(value.normalize()), "unit": unit_label, "lo": number_format(lo),
        "hi": number_format(hi)}


def reading_parse(item: Any, *, index: int, latest: datetime) -> Parsed | Errors:
    """Parse and normalise one reading item (a dict as decoded from JSON, or with Decimal and
    datetime values from Python callers). Returns the Parsed item or field -> messages."""
    if not isinstance(item, dict):
        return {"non_field_errors": [_("Each reading must be a JSON object.")]}
    errors: Errors = {}

    m: Measure | None = None
    original: dict[str, Any] = {}
    code = item.get("measure")
    if code is None:
        errors["measure"] = _required() if "measure" not in item else [_("This field may not be null.")]
    elif not isinstance(code, str) or (coding := coding_lookup(code)) is None:
        shown = code if not isinstance(code, str) or len(code) <= 40 else code[:40] + "…"  # not 100 KB back
        errors["measure"] = [_("Unknown measure %(m)s.") % {"m": shown}]
    else:
        m = coding.measure
        if coding.system is not None:
            original["system"], original["code"] = coding.system, coding.code

    unit = item.get("unit")
    if unit is None:
        errors["unit"] = _required()
    elif not isinstance(unit, str):
        errors["unit"] = [_("The unit must be a UCUM unit such as kg or mm[Hg].")]

    # Values: "value", or "systolic" + "diastolic" for blood pressure.
    raw_values: dict[str, Any] = {}
    if m is not None:
        names = ("systolic", "diastolic") if m.second is not None else ("value",)
        for other in {"value", "systolic", "diastolic"} - set(names):
            if other in item:
                errors[other] = [_("%(measure)s takes %(fields)s, not %(other)s.") % {
                    "measure": m.code, "fields": " and ".join(names), "other": other}]
        for name in names:
            if name not in item:
                errors[name] = _required()
                continue
            number = _number(item[name])
            if isinstance(number, str):
                errors[name] = [number]
            else:
                raw_values[name] = number

    value = value2 = None
    if m is not None and isinstance(unit, str) and "unit" not in errors and len(raw_values) == (
            2 if m.second is not None else 1):
        try:
            converted = [to_canonical(v, unit, m).quantize(_PLACES) for v in raw_values.values()]
        except UnitError as exc:
            errors["unit"] = [str(exc)]
        else:
            if unit != m.unit:
                original["unit"] = unit
                original.update({k: str(v) for k, v in raw_values.items()})
            value = converted[0]
            if m.second is None:
                if msg := range_error(value, m.minimum, m.maximum, m.unit_label):
                    errors["value"] = [msg]
            else:
                value2 = converted[1]
                s = m.second
                if msg := range_error(value, m.minimum, m.maximum, m.unit_label):
                    errors["systolic"] = [msg]
                if msg := range_error(value2, s.minimum, s.maximum, m.unit_label):
                    errors["diastolic"] = [msg]
                if "systolic" not in errors and "diastolic" not in errors and value <= value2:
                    errors["systolic"] = [_("The systolic pressure must be higher than the diastolic.")]

    if "effective_at" not in item:
        errors["effective_at"] = _required()
    else:
        when = _when(item["effective_at"], latest)
        if isinstance(when, str):
            errors["effective_at"] = [when]

    client_id = item.get("client_id")
    if client_id is not None:
        if isinstance(client_id, int) and not isinstance(client_id, bool):
            client_id = str(client_id)
        if not isinstance(client_id, str) or not client_id or len(client_id) > 100:
            errors["client_id"] = [_("Give a client_id of 1 to 100 characters.")]
        elif "\x00" in client_id or not _utf8(client_id):  # PostgreSQL's text cannot hold them
            errors["client_id"] = [_("A client_id cannot contain the NUL character or half a character.")]

    patient_ref = None
    if item.get("patient") is not None:
        try:
            patient_ref = uuid.UUID(str(item["patient"]))
        except ValueError:
            errors["patient"] = [_("Must be a valid UUID.")]
    device_id = item.get("device")
    if device_id is not None and (isinstance(device_id, bool) or not isinstance(device_id, int)):
        errors["device"] = [_("A valid integer is required.")]

    if errors or m is None or value is None:
        return errors
    return Parsed(
        index=index, measure=m.code, value=value, value2=value2, unit=m.unit,
        effective_at=when,  # type: ignore[arg-type]  # set above when no error
        client_id=client_id, original=original or None,
        unusual=m.is_unusual(value, value2), device_id=device_id, patient_ref=patient_ref,
    )


# --- storing: one transaction per batch ------------------------------------------------------

@dataclass(slots=True)
class _Row:
    """A reading already in the database that an item may repeat (what the dedupe query reads)."""

    id: int
    client_id: str | None
    device_id: int | None
    measure: str
    value: Decimal
    value2: Decimal | None
    effective_at: datetime
    unusual: bool


def _same(earlier: "_Row | Parsed", p: Parsed) -> bool:
    return (earlier.measure, earlier.value, earlier.value2, earlier.effective_at) == (
        p.measure, p.value, p.value2, p.effective_at)


def _natural_key(device_id: int | None, measure: str, effective_at: datetime,
                 value: Decimal, value2: Decimal | None) -> tuple[Any, ...]:
    # Equal Decimals hash equally (95 == 95.000) and so do aware datetimes of the same instant.
    return (device_id, measure, effective_at, value, value2)


class _Readings:
    """Builds the ``Reading`` model instances of one batch's results when a caller asks for
    them: new ones from the parsed values (no query), earlier ones with one query for all."""

    def __init__(self, *, patient_id: Any, source: Source, now: datetime, entered_by: Any) -> None:
        self.patient_id, self.source, self.now, self.entered_by = patient_id, source, now, entered_by
        self.new: dict[int, Parsed] = {}
        self.earlier: list[int] = []
        self.built: dict[int, Reading] = {}

    def get(self, pk: int) -> Reading:
        if pk not in self.built:
            p = self.new.get(pk)
            if p is not None:
                self.built[pk] = self._build(p)
            else:
                self.built.update(Reading.objects.in_bulk(self.earlier))
        return self.built[pk]

    def stored(self, pk: int) -> StoredReading:
        p = self.new[pk]
        return StoredReading(pk, self.patient_id, p.device_id, p.measure, p.value, p.value2, p.unit,
                             p.effective_at, self.now, p.client_id, self.source, p.unusual)

    def _build(self, p: Parsed) -> Reading:
        reading = Reading(
            pk=p.id, patient_id=self.patient_id, device_id=p.device_id, measure=p.measure, value=p.value,
            value2=p.value2, unit=p.unit, original=p.original, unusual=p.unusual,
            effective_at=p.effective_at, received_at=self.now, source=self.source,
            client_id=p.client_id, entered_by=self.entered_by,
        )
        reading._state.adding = False
        reading._state.db = Reading.objects.db
        return reading


def _lock_patient(patient: Patient) -> None:
    """Serialise concurrent ingests of one patient, so that the duplicate check below and the
    insert see the same world. A transaction-level advisory lock: released at commit.

    Repeats are also found by device, measure, time and value, under any client_id or none, and
    no constraint guards those: a gateway's retry under a new client_id while the first upload
    is still being stored waits here and then finds it. (uniq_reading_client_id alone would
    serialise repeats of the same client_id only.) The device fast path's one statement takes
    no lock: its window is the statement itself, about a millisecond (docs/architecture.md)."""
    if connection.vendor == "postgresql":
        with prepared_cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"reading:{patient.pk}"], prepare=True)


_MIDNIGHT = datetime.min.time()


@dataclass(frozen=True)
class _Lending:
    """The time a device is lent to its patient, as instants: from the start of its first day
    to the end of its last (Danish time). A reading the device measured outside it is another
    person's, e.g. the backlog of the patient who had the device before, uploaded after it was
    lent again: it must not land in this patient's record."""

    lent_from: date
    lent_to: date | None
    starts: datetime
    ends: datetime | None

    @classmethod
    def of(cls, lent_from: date, lent_to: date | None) -> "_Lending":
        zone = timezone.get_default_timezone()
        ends = None if lent_to is None else datetime.combine(lent_to + timedelta(days=1), _MIDNIGHT, tzinfo=zone)
        return cls(lent_from, lent_to, datetime.combine(lent_from, _MIDNIGHT, tzinfo=zone), ends)

    def refuses(self, effective_at: datetime) -> str | None:
        if effective_at < self.starts:
            return _("Measured before this device was lent to the patient (on %(date)s); it is not stored "
                     "in the patient's record.") % {"date": date_format(self.lent_from, "DATE_FORMAT")}
        if self.ends is not None and effective_at >= self.ends:
            return _("Measured after this device was returned (on %(date)s); it is not stored in the "
                     "patient's record.") % {"date": date_format(self.lent_to, "DATE_FORMAT")}
        return None


def readings_ingest(
    *,
    patient: Patient,
    items: list[Any],
    source: Source,
    device: Device | None = None,
    entered_by: Any = None,
    provenance: list[dict[str, Any] | None] | None = None,
) -> list[ItemResult]:
    """Validate and store a batch of readings for ``patient``; one result per item, in order.

    ``provenance`` (FHIR ingest only, one entry per item): what the sender said about the
    reading beyond its value — its code as sent, ``issued`` — kept in ``Reading.original["fhir"]``
    and given back (interop.mapping). A keyword, not an item field, so the REST API's JSON cannot
    put anything there.

    ``device`` is the sending device (device token): items may name only it and only its
    patient. Without it (a patient sending), items may name any device lent to the patient.
    Raises BatchTooLarge (nothing stored) for more than MAX_BATCH items."""
    if len(items) > MAX_BATCH:
        raise BatchTooLarge(len(items))
    now = timezone.now()
    results, candidates = _checked(patient=patient, items=items, device=device, now=now)
    if provenance:
        for p in candidates:
            if provenance[p.index]:
                p.original = {**(p.original or {}), "fhir": provenance[p.index]}
    readings = _Readings(patient_id=patient.pk, source=source, now=now, entered_by=entered_by)
    if _stored_in_one_statement(candidates, results=results, readings=readings):
        return results  # type: ignore[return-value]  # the one candidate's slot is filled
    for attempt in range(3):
        try:
            with transaction.atomic():
                _store(patient=patient, candidates=candidates, results=results, readings=readings)
            break
        except IntegrityError:
            # A concurrent request stored one of these client_ids first (_lock_patient): look again.
            for p in candidates:
                p.id = None
            if attempt == 2:
                raise
            readings = _Readings(patient_id=patient.pk, source=source, now=now, entered_by=entered_by)
    return results  # type: ignore[return-value]  # every slot is filled by now


def reading_device_store_one(*, item: Any, device: Device, token_id: int) -> ItemResult | None:
    """Store one reading with a client_id from a device by one statement that also checks that
    the device's token ``token_id`` is still unrevoked and the device still lent to the same
    patient for the same period as ``device`` says (PostgreSQL). For the device fast path
    (monitoring.device_fast_path, ADR 0016), which looks tokens up once a minute, not per request.

    The 201 result, or None when the request deserves any other answer: a field error, no
    client_id, a repeat or a reused client_id, a token or device that changed, another database.
    Nothing is stored then, and the caller leaves the request to the API view, which answers it."""
    now = timezone.now()
    results, candidates = _checked(patient=device.patient, items=[item], device=device, now=now)
    readings = _Readings(patient_id=device.patient_id, source=Source.DEVICE, now=now, entered_by=None)
    if _stored_in_one_statement(candidates, results=results, readings=readings, still_lent=(token_id, device)):
        return results[0]
    return None


def _kind_refuses(device: Device, measure: str) -> str:
    takes = sorted(str(MEASURES[m].label).lower() for m in KIND_MEASURES.get(device.kind, ()))
    return _("A %(kind)s measures %(takes)s, not %(measure)s; this device's token cannot send it.") % {
        "kind": device.get_kind_display().lower(), "takes": _(" and ").join(takes),
        "measure": str(MEASURES[measure].label).lower()}


def _checked(*, patient: Patient, items: list[Any], device: Device | None,
             now: datetime) -> tuple[list[ItemResult | None], list[Parsed]]:
    """Parse the items and check whom and which device they name and when they were measured:
    a result for each refused item, in its slot (the others None), and the candidates to store."""
    latest = now + timedelta(seconds=settings.READING_CLOCK_SKEW_SECONDS)
    born = datetime.combine(patient.birth_date, _MIDNIGHT, tzinfo=timezone.get_default_timezone())
    results: list[ItemResult | None] = [None] * len(items)
    parsed: list[Parsed] = []
    for index, item in enumerate(items):
        p = reading_parse(item, index=index, latest=latest)
        if isinstance(p, dict):
            results[index] = ItemResult(index, 400, errors=p)
        elif device is not None and p.measure not in KIND_MEASURES.get(device.kind, ()):
            results[index] = ItemResult(index, 400, errors={"measure": [_kind_refuses(device, p.measure)]})
        elif p.patient_ref is not None and p.patient_ref != patient.pk:
            results[index] = ItemResult(index, 404, errors={"patient": [_("No such patient.")]})
        elif p.effective_at < born:
            results[index] = ItemResult(index, 400, errors={"effective_at": [
                _("The time lies before the patient was born; check the device clock.")]})
        else:
            parsed.append(p)

    # Each device's lendings to this patient, the current one first (ADR 0015): the device row's.
    named = {p.device_id for p in parsed if p.device_id is not None}
    if device is not None:
        lendings = {device.pk: [_Lending.of(device.lent_from, device.lent_to)]}
    elif named:
        lendings = {pk: [_Lending.of(start, end)] for pk, start, end in Device.objects.filter(
            patient=patient, pk__in=named).values_list("pk", "lent_from", "lent_to")}
    else:
        lendings = {}
    candidates: list[Parsed] = []
    outside: list[Parsed] = []  # not in the device's current lending to this patient
    for p in parsed:
        if p.device_id is None:
            p.device_id = device.pk if device is not None else None
        elif device is not None and p.device_id != device.pk:
            # A device's token speaks for that device only: naming another one is refused as an
            # unknown device, whoever else it was lent to.
            results[p.index] = ItemResult(p.index, 404, errors={"device": [_("No such device.")]})
            continue
        current = lendings.get(p.device_id) if p.device_id is not None else None
        if p.device_id is None or (current and current[0].refuses(p.effective_at) is None):
            candidates.append(p)
        else:
            outside.append(p)
    if outside:
        # Rare (a backlog from an earlier lending to the same patient, a wrong clock, another
        # patient's backlog): the device's earlier lendings to this patient, newest first.
        for pk, start, end in DeviceLending.objects.filter(
                patient=patient, device_id__in={p.device_id for p in outside}).order_by("-lent_from").values_list(
                "device_id", "lent_from", "lent_to"):
            lendings.setdefault(pk, []).append(_Lending.of(start, end))
        for p in outside:
            periods = lendings.get(p.device_id)
            if not periods:
                results[p.index] = ItemResult(p.index, 404, errors={"device": [_("No such device.")]})
            elif any(period.refuses(p.effective_at) is None for period in periods):
                candidates.append(p)
            else:
                refused = periods[0].refuses(p.effective_at)
                results[p.index] = ItemResult(p.index, 400, errors={"effective_at": [refused]})
        candidates.sort(key=lambda p: p.index)
    return results, candidates


def _stored_in_one_statement(candidates: list[Parsed], *, results: list[ItemResult | None],
                             readings: _Readings, still_lent: tuple[int, Device] | None = None) -> bool:
    """Store a single candidate with a client_id by one statement (_insert_one), where it
    applies: PostgreSQL, and either autocommit or a caller's atomic block (in Django's manual
    transaction mode on_commit would refuse). False if it does not apply, or if the client_id is
    stored already: then the general path answers the repeat (200) or the conflict (409). With
    ``still_lent`` (a token id and the device it was looked up with), also False if the token or
    the device's lending changed since (_insert_one)."""
    if not (len(candidates) == 1 and candidates[0].client_id and connection.vendor == "postgresql"
            and (connection.get_autocommit() or connection.in_atomic_block)):
        return False
    batch = _insert_one(candidates[0], readings, still_lent=still_lent)
    if batch is None:
        return False
    _stored(candidates, batch=batch, results=results, readings=readings)
    return True


# Two index look-ups, one per way a repeat is found, each written so that its index serves all
# of its conditions: as one query joined by OR, the planner used only patient_id and filtered
# every reading of the patient (11 ms per 100-item upload for a patient with 10,000 readings).
_EARLIER_BY_CLIENT_ID = """
    SELECT id, client_id, device_id, measure, value, value2, effective_at, unusual
    FROM monitoring_reading WHERE patient_id = %(patient)s AND client_id = ANY(%(client_ids)s)
"""
_EARLIER_BY_TIME = """
    SELECT id, client_id, device_id, measure, value, value2, effective_at, unusual
    FROM monitoring_reading WHERE patient_id = %(patient)s AND measure = ANY(%(measures)s)
        AND effective_at = ANY(%(times)s)
"""
_EARLIER_SQL = {True: f"{_EARLIER_BY_CLIENT_ID} UNION {_EARLIER_BY_TIME}", False: _EARLIER_BY_TIME}


def _earlier(patient: Patient, candidates: list[Parsed]) -> list[_Row]:
    """The patient's stored readings that candidates may repeat: the same client_id (served by
    uniq_reading_client_id), or the same measure and effective time (reading_trend), with a
    client_id or without: a reading is the same reading under another client_id too."""
    client_ids = [p.client_id for p in candidates if p.client_id]
    times = [p.effective_at for p in candidates]
    fields = ("id", "client_id", "device_id", "measure", "value", "value2", "effective_at", "unusual")
    if connection.vendor == "postgresql":
        # Array parameters instead of a placeholder per value: at 1,000 items, binding a
        # thousand placeholders cost more than running the query. The client_id look-up is
        # left out when no item has one.
        params = {"patient": patient.pk, "client_ids": client_ids, "times": times,
                  "measures": sorted({p.measure for p in candidates})}
        with prepared_cursor() as cursor:
            cursor.execute(_EARLIER_SQL[bool(client_ids)], params, prepare=True)
            return [_Row(*row) for row in cursor.fetchall()]
    match = Q(pk__in=[])
    if client_ids:
        match |= Q(client_id__in=client_ids)
    if times:
        match |= Q(effective_at__in=times)
    return [_Row(*row) for row in Reading.objects.filter(patient=patient).filter(match).values_list(*fields)]


def _store(*, patient: Patient, candidates: list[Parsed], results: list[ItemResult | None],
           readings: _Readings) -> None:
    if not candidates:
        return
    _lock_patient(patient)
    by_client: dict[str, _Row | Parsed] = {}
    by_key: dict[tuple[Any, ...], _Row | Parsed] = {}
    for row in _earlier(patient, candidates):
        if row.client_id:
            by_client[row.client_id] = row
        by_key.setdefault(_natural_key(row.device_id, row.measure, row.effective_at, row.value, row.value2), row)
        readings.earlier.append(row.id)

    new: list[Parsed] = []
    pending: list[tuple[int, _Row | Parsed]] = []  # 200s, answered once every id is known
    for p in candidates:
        key = _natural_key(p.device_id, p.measure, p.effective_at, p.value, p.value2)
        if p.client_id and (earlier := by_client.get(p.client_id)) is not None:
            if _same(earlier, p):
                pending.append((p.index, earlier))
            else:
                results[p.index] = ItemResult(p.index, 409, errors={"client_id": [
                    _("This client_id was already used for another reading.")]})
            continue
        if (earlier := by_key.get(key)) is not None:  # the same reading, under another client_id or none
            pending.append((p.index, earlier))
            continue
        new.append(p)
        if p.client_id:
            by_client[p.client_id] = p
        by_key.setdefault(key, p)
    if new:
        _stored(new, batch=_insert(new, readings), results=results, readings=readings)
    for index, earlier in pending:
        results[index] = ItemResult(index, 200, id=earlier.id, unusual=earlier.unusual, _readings=readings)


def _stored(new: list[Parsed], *, batch: int, results: list[ItemResult | None], readings: _Readings) -> None:
    """Answer 201 for the readings just inserted as pending ``batch``, and ask for their
    evaluation once it is committed."""
    # robust: if the broker is down the readings stay committed and the 201 stays true; the
    # sweep (alerts.evaluation.sweep) evaluates them later.
    transaction.on_commit(lambda: request_soon(batch), robust=True)
    for p in new:
        results[p.index] = ItemResult(p.index, 201, id=p.id, unusual=p.unusual, _readings=readings)


# Columns written by COPY, and without the first ("id": its default) by _INSERT_ONE_SQL; every
# other column of monitoring_reading has a NULL/blank default. _row gives their values.
_COPY_COLUMNS = ("id", "patient_id", "device_id", "measure", "value", "value2", "unit", "original", "unusual",
                 "erroneous_reason", "effective_at", "received_at", "source", "client_id", "entered_by_id")


def _row(p: Parsed, readings: _Readings, entered_by_id: int | None) -> tuple[Any, ...]:
    """The values of _COPY_COLUMNS for one parsed item (``p.id`` None until it is reserved)."""
    return (
        p.id, readings.patient_id, p.device_id, p.measure, p.value, p.value2, p.unit,
        None if p.original is None else orjson.dumps(p.original).decode(), p.unusual, "",
        p.effective_at, readings.now, readings.source, p.client_id, entered_by_id,
    )


def _entered_by_id(readings: _Readings) -> int | None:
    return readings.entered_by.pk if readings.entered_by is not None else None
_COPY_SQL = f"COPY monitoring_reading ({', '.join(_COPY_COLUMNS)}) FROM STDIN"


# Reserves the ids and writes the evaluation inbox's row that lists them (ADR 0009, 0020) in one
# round trip.
_RESERVE_SQL = f"""
    WITH ids AS (
        SELECT nextval(%(seq)s::regclass) AS id FROM generate_series(1, %(n)s)
    ), pending AS (
        {reading_enqueue_sql(ids="jsonb_agg(id ORDER BY id)", size="%(n)s", at="%(now)s")} FROM ids RETURNING id
    )
    SELECT ids.id, (SELECT id FROM pending) FROM ids ORDER BY ids.id
"""  # noqa: S608 - the inbox's INSERT is fixed text; every value is a parameter


_sequence: dict[str, str] = {}  # database name -> name of monitoring_reading.id's sequence


def _reading_sequence(cursor: Any) -> str:
    """The name of monitoring_reading.id's sequence, looked up once per process and database:
    calling pg_get_serial_sequence for every reserved id cost more than the nextval itself."""
    database = cursor.connection.info.dbname
    if database not in _sequence:
        cursor.execute("SELECT pg_get_serial_sequence('monitoring_reading', 'id')")
        _sequence[database] = cursor.fetchone()[0]
    return _sequence[database]


# One new reading and its pending batch (ADR 0009) in one statement. Nothing is inserted, and
# the statement returns no row, when the patient already has the reading: its client_id
# (uniq_reading_client_id as the arbiter; a concurrent insert of it is waited for), or the same
# device, measure, time and value under another client_id (a gateway that makes up a new id
# for each retry). Parameters are named: psycopg binds each name once, however often it is used.
_INSERT_ONE_SQL = """
    WITH reading AS (
        INSERT INTO monitoring_reading ({columns})
        SELECT {values}
        WHERE {still_lent} NOT EXISTS (
            SELECT 1 FROM monitoring_reading e
            WHERE e.patient_id = %(patient_id)s AND e.measure = %(measure)s AND e.effective_at = %(effective_at)s
                AND e.value = %(value)s AND e.value2 IS NOT DISTINCT FROM %(value2)s
                AND e.device_id IS NOT DISTINCT FROM %(device_id)s)
        ON CONFLICT (patient_id, client_id) WHERE client_id IS NOT NULL DO NOTHING
        RETURNING id
    ), pending AS (
        {pending} FROM reading RETURNING id
    )
    SELECT reading.id, pending.id FROM reading, pending
"""
# ... and, for the device fast path, only if the device's token is unrevoked and the device is
# lent to the same patient for the same period as when the token was looked up (ADR 0016).
_STILL_LENT_SQL = """
    EXISTS (
        SELECT 1 FROM monitoring_devicetoken t JOIN monitoring_device d ON d.id = t.device_id
        WHERE t.id = %(token_id)s AND t.revoked_at IS NULL AND d.id = %(lent_device_id)s
            AND d.patient_id = %(lent_patient_id)s AND d.lent_from = %(lent_from)s
            AND d.lent_to IS NOT DISTINCT FROM %(lent_to)s::date) AND
"""


@lru_cache(maxsize=2)
def _insert_one_sql(still_lent: bool) -> str:
    """The statement's text, worked out once per process for PostgreSQL (the only database it
    runs on)."""
    columns = _COPY_COLUMNS[1:]
    # A SELECT, to take a WHERE; its parameters cast, as VALUES would take the columns' types.
    by_column = {f.column: f for f in Reading._meta.concrete_fields}
    # Without a length: a cast to varchar(n) would cut a longer value where VALUES refuses it.
    values = ", ".join(f"%({c})s::" + re.sub(r"^varchar\(\d+\)$", "varchar", by_column[c].cast_db_type(connection))
                       for c in columns)
    pending = reading_enqueue_sql(ids="jsonb_build_array(id)", size="1", at="%(received_at)s")
    return _INSERT_ONE_SQL.format(columns=", ".join(columns), values=values, pending=pending,
                                  still_lent=_STILL_LENT_SQL if still_lent else "")


def _insert_one(p: Parsed, readings: _Readings, *, still_lent: tuple[int, Device] | None = None) -> int | None:
    """Store one reading that has a client_id (PostgreSQL); returns its pending batch's id, or
    None if nothing was stored: the patient already has it (its client_id, or the same reading
    under another one), or (``still_lent``: a token id and the device it was looked up with) the
    token or the device's lending changed.
    A device's single upload, the common case, in one round trip: outside a transaction the
    statement commits on its own, all or nothing, where the general path (_store) costs BEGIN,
    the repeat lookup, the id reservation, COPY and COMMIT. Inside one (a caller's atomic block)
    it runs in a savepoint, so that a failure leaves the caller's transaction usable, as the
    general path does."""
    params: dict[str, Any] = dict(zip(_COPY_COLUMNS, _row(p, readings, _entered_by_id(readings)), strict=True))
    if still_lent is not None:
        token_id, device = still_lent
        params.update(token_id=token_id, lent_device_id=device.pk, lent_patient_id=device.patient_id,
                      lent_from=device.lent_from, lent_to=device.lent_to)
    savepoint = transaction.atomic() if connection.in_atomic_block else nullcontext()
    with savepoint, prepared_cursor() as cursor:
        cursor.execute(_insert_one_sql(still_lent is not None), params, prepare=True)
        row = cursor.fetchone()
    if row is None:
        return None
    p.id = row[0]
    readings.new[p.id] = p
    return row[1]


def _insert(new: list[Parsed], readings: _Readings) -> int:
    """Insert new readings, set their ids and record them as a pending batch; returns the
    batch's id. On PostgreSQL with COPY (ids reserved from the sequence first): Django's
    bulk_create spends most of a 1,000-row batch compiling the statement and building model
    instances. Elsewhere (SQLite, the embedded shape) bulk_create."""
    if connection.vendor != "postgresql":
        built = [readings._build(p) for p in new]
        for r in built:
            r._state.adding = True
        Reading.objects.bulk_create(built)
        for p, r in zip(new, built, strict=True):
            p.id = r.pk
            readings.new[r.pk] = p
            readings.built[r.pk] = r
        return enqueue(source=EvaluationSource.READING, ids=[r.pk for r in built], after_commit=False)
    entered_by_id = _entered_by_id(readings)
    with prepared_cursor() as cursor:
        cursor.execute(_RESERVE_SQL, {"n": len(new), "now": readings.now, "seq": _reading_sequence(cursor)},
                       prepare=True)
        rows = cursor.fetchall()
        batch = rows[0][1]
        for p, (pk, _) in zip(new, rows, strict=True):
            p.id = pk
            readings.new[pk] = p
        with cursor.copy(_COPY_SQL) as copy:
            write = copy.write_row
            for p in new:
                write(_row(p, readings, entered_by_id))
    return batch
