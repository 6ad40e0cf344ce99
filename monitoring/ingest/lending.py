"""Whom and which device an item names, and whether the device was lent to the patient when it
measured (ADR 0015): a reading measured outside the lending is another person's."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from monitoring.ingest.parsing import reading_parse
from monitoring.ingest.storage import ItemResult
from monitoring.measures import MEASURES
from monitoring.models import KIND_MEASURES, Device, DeviceLending
from monitoring.rows import ReadingRow
from patients.models import Patient

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
        if self.lent_to is not None and self.ends is not None and effective_at >= self.ends:
            return _("Measured after this device was returned (on %(date)s); it is not stored in the "
                     "patient's record.") % {"date": date_format(self.lent_to, "DATE_FORMAT")}
        return None


def _kind_refuses(device: Device, measure: str) -> str:
    takes = sorted(str(MEASURES[m].label).lower() for m in KIND_MEASURES.get(device.kind, ()))
    return _("A %(kind)s measures %(takes)s, not %(measure)s; this device's token cannot send it.") % {
        "kind": device.get_kind_display().lower(), "takes": _(" and ").join(takes),
        "measure": str(MEASURES[measure].label).lower()}


def _checked(*, patient: Patient, items: list[Any], device: Device | None,
             now: datetime) -> tuple[list[ItemResult | None], list[ReadingRow]]:
    """Parse the items and check whom and which device they name and when they were measured:
    a result for each refused item, in its slot (the others None), and the candidates to store."""
    latest = now + timedelta(seconds=settings.READING_CLOCK_SKEW_SECONDS)
    born = datetime.combine(patient.birth_date, _MIDNIGHT, tzinfo=timezone.get_default_timezone())
    results: list[ItemResult | None] = [None] * len(items)
    parsed: list[ReadingRow] = []
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
    candidates: list[ReadingRow] = []
    outside: list[ReadingRow] = []  # not in the device's current lending to this patient
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
        _outside_checked(patient=patient, outside=outside, lendings=lendings, results=results,
                         candidates=candidates)
    return results, candidates


def _outside_checked(*, patient: Patient, outside: list[ReadingRow], lendings: dict[int, list[_Lending]],
                     results: list[ItemResult | None], candidates: list[ReadingRow]) -> None:
    """Readings outside their device's current lending to this patient: a candidate if an earlier
    lending to this patient took them, else refused in their result slot. Candidates stay in
    item order."""
    # Rare (a backlog from an earlier lending to the same patient, a wrong clock, another
    # patient's backlog): the device's earlier lendings to this patient, newest first.
    for pk, start, end in DeviceLending.objects.filter(
            patient=patient, device_id__in={p.device_id for p in outside}).order_by("-lent_from").values_list(
            "device_id", "lent_from", "lent_to"):
        lendings.setdefault(pk, []).append(_Lending.of(start, end))
    for p in outside:
        assert p.device_id is not None  # a reading without a device is never outside a lending
        periods = lendings.get(p.device_id)
        if not periods:
            results[p.index] = ItemResult(p.index, 404, errors={"device": [_("No such device.")]})
        elif any(period.refuses(p.effective_at) is None for period in periods):
            candidates.append(p)
        else:
            refused = periods[0].refuses(p.effective_at)
            assert refused is not None  # no period took it, so the latest refuses it
            results[p.index] = ItemResult(p.index, 400, errors={"effective_at": [refused]})
    candidates.sort(key=lambda p: p.index)
