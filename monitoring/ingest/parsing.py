"""Parsing one reading item: plain functions, no serializer per item (at 1,000 items a batch a
serializer cost more than storing them). Normalised to the measure's canonical unit and checked for
plausibility; the result is a ``Parsed`` item or field -> messages."""

import math
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils.formats import number_format
from django.utils.translation import gettext as _

from monitoring.measures import Measure, coding_lookup
from monitoring.rows import ReadingRow
from monitoring.units import UnitError, to_canonical
from proplatform.input import parse_decimal

_PLACES = Decimal("0.001")
# Reading.value is DecimalField(max_digits=9, decimal_places=3).
_LARGEST = Decimal("999999.999")

Errors = dict[str, list[str]]


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


def reading_parse(item: Any, *, index: int, latest: datetime) -> ReadingRow | Errors:
    """Parse and normalise one reading item (a dict as decoded from JSON, or with Decimal and
    datetime values from Python callers). Returns the parsed item (a ReadingRow, not stored yet)
    or field -> messages. Every field is checked, so that all its errors are told at once."""
    if not isinstance(item, dict):
        return {"non_field_errors": [_("Each reading must be a JSON object.")]}
    errors: Errors = {}
    original: dict[str, Any] = {}
    m = _measure(item, errors, original)
    unit = item.get("unit")
    if unit is None:
        errors["unit"] = _required()
    elif not isinstance(unit, str):
        errors["unit"] = [_("The unit must be a UCUM unit such as kg or mm[Hg].")]
    # Values: "value", or "systolic" + "diastolic" for blood pressure.
    raw_values = _raw_values(item, m, errors) if m is not None else {}
    value = value2 = None
    if m is not None and isinstance(unit, str) and "unit" not in errors and len(raw_values) == (
            2 if m.second is not None else 1):
        value, value2 = _values(m, unit, raw_values, errors, original)
    when = _effective_at(item, latest, errors)
    client_id = _client_id(item, errors)
    patient_ref = None
    if item.get("patient") is not None:
        try:
            patient_ref = uuid.UUID(str(item["patient"]))
        except ValueError:
            errors["patient"] = [_("Must be a valid UUID.")]
    device_id = item.get("device")
    if device_id is not None and (isinstance(device_id, bool) or not isinstance(device_id, int)):
        errors["device"] = [_("A valid integer is required.")]

    if errors or m is None or value is None or when is None:
        return errors
    return ReadingRow(
        index=index, measure=m.code, value=value, value2=value2, unit=m.unit, effective_at=when,
        client_id=client_id, original=original or None,
        unusual=m.is_unusual(value, value2), device_id=device_id, patient_ref=patient_ref,
    )


def _measure(item: dict[str, Any], errors: Errors, original: dict[str, Any]) -> Measure | None:
    """The item's measure (a code of ours, or LOINC / SNOMED CT), noting a foreign code in ``original``."""
    code = item.get("measure")
    if code is None:
        errors["measure"] = _required() if "measure" not in item else [_("This field may not be null.")]
    elif not isinstance(code, str) or (coding := coding_lookup(code)) is None:
        shown = code if not isinstance(code, str) or len(code) <= 40 else code[:40] + "…"  # not 100 KB back
        errors["measure"] = [_("Unknown measure %(m)s.") % {"m": shown}]
    else:
        if coding.system is not None:
            original["system"], original["code"] = coding.system, coding.code
        return coding.measure
    return None


def _raw_values(item: dict[str, Any], m: Measure, errors: Errors) -> dict[str, Decimal]:
    """The measure's value fields as numbers, as sent (units not converted yet)."""
    names = ("systolic", "diastolic") if m.second is not None else ("value",)
    for other in {"value", "systolic", "diastolic"} - set(names):
        if other in item:
            errors[other] = [_("%(measure)s takes %(fields)s, not %(other)s.") % {
                "measure": m.code, "fields": " and ".join(names), "other": other}]
    raw_values: dict[str, Decimal] = {}
    for name in names:
        if name not in item:
            errors[name] = _required()
            continue
        number = _number(item[name])
        if isinstance(number, str):
            errors[name] = [number]
        else:
            raw_values[name] = number
    return raw_values


def _values(m: Measure, unit: str, raw_values: dict[str, Decimal], errors: Errors,
            original: dict[str, Any]) -> tuple[Decimal | None, Decimal | None]:
    """The values in the measure's own unit, range-checked (the values as sent kept in
    ``original`` when converted); (None, None) when the unit does not fit the measure."""
    try:
        converted = [to_canonical(v, unit, m).quantize(_PLACES) for v in raw_values.values()]
    except UnitError as exc:
        errors["unit"] = [str(exc)]
        return None, None
    if unit != m.unit:
        original["unit"] = unit
        original.update({k: str(v) for k, v in raw_values.items()})
    value = converted[0]
    if m.second is None:
        if msg := range_error(value, m.minimum, m.maximum, m.unit_label):
            errors["value"] = [msg]
        return value, None
    value2 = converted[1]
    s = m.second
    if msg := range_error(value, m.minimum, m.maximum, m.unit_label):
        errors["systolic"] = [msg]
    if msg := range_error(value2, s.minimum, s.maximum, m.unit_label):
        errors["diastolic"] = [msg]
    if "systolic" not in errors and "diastolic" not in errors and value <= value2:
        errors["systolic"] = [_("The systolic pressure must be higher than the diastolic.")]
    return value, value2


def _effective_at(item: dict[str, Any], latest: datetime, errors: Errors) -> datetime | None:
    if "effective_at" not in item:
        errors["effective_at"] = _required()
        return None
    when = _when(item["effective_at"], latest)
    if isinstance(when, str):
        errors["effective_at"] = [when]
        return None
    return when


def _client_id(item: dict[str, Any], errors: Errors) -> Any:
    """The sender's id for the reading (text; a whole number is taken as its text), or None."""
    client_id = item.get("client_id")
    if client_id is None:
        return None
    if isinstance(client_id, int) and not isinstance(client_id, bool):
        client_id = str(client_id)
    if not isinstance(client_id, str) or not client_id or len(client_id) > 100:
        errors["client_id"] = [_("Give a client_id of 1 to 100 characters.")]
    elif "\x00" in client_id or not _utf8(client_id):  # PostgreSQL's text cannot hold them
        errors["client_id"] = [_("A client_id cannot contain the NUL character or half a character.")]
    return client_id
