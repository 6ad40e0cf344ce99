"""Rows → FHIR resources for Bulk $export and the quality push: one generator per resource type.

Memory stays flat whatever the size: every query streams (``.iterator(chunk_size=...)``, a
named server-side cursor on PostgreSQL), rows arrive as tuples (no model instances on the hot
paths), mapped by the pure functions in interop.mapping and written one line at a time. What
grows with the export is only the per-patient pseudonym cache (one short string per patient)."""

import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.db.models import Q, QuerySet

from exports.privacy import Pseudonymiser, ResourceId, items_without_free_text, shift_date_str
from interop.mapping import (
    device_to_fhir,
    episode_to_fhir,
    observation_from_reading,
    observation_from_score,
    operation_outcome,
    patient_identified_for_export,
    patient_pseudonymised_to_fhir,
    questionnaire_response_for_export,
)
from monitoring.measures import MEASURES
from monitoring.models import Device, DeviceKind, Reading
from patients.models import Patient, Region, TreatmentEpisode
from questionnaires.models import QuestionnaireResponse, ResponseStatus

# In the order a reader wants them: patients before what refers to them.
TYPES = ("Patient", "EpisodeOfCare", "Device", "QuestionnaireResponse", "Observation")
CHUNK = 2000  # rows per server-side cursor fetch

Resource = dict[str, Any]
_ZERO = timedelta(0)


class Refs:
    """Ids, patient references and date shifts: the real ones, or keyed pseudonyms."""

    def __init__(self, pseudo: Pseudonymiser | None) -> None:
        self.pseudo = pseudo
        self._devices: dict[int, str] = {}

    def patient(self, patient_id: uuid.UUID) -> str:
        return self.pseudo.patient(patient_id) if self.pseudo else str(patient_id)

    def device(self, device_id: int) -> str:
        found = self._devices.get(device_id)
        if found is None:
            found = self._devices[device_id] = self.id("Device", device_id)
        return found

    def id(self, resource_type: str, id_: ResourceId) -> str:
        return self.pseudo.resource_id(resource_type, id_) if self.pseudo else str(id_)

    def shift(self, patient_id: uuid.UUID) -> timedelta:
        return self.pseudo.shift(patient_id) if self.pseudo else _ZERO


def _failed(resource_type: str, id_: ResourceId, exc: Exception) -> Resource:
    # No row content in the message: it may be read by someone who must not see the row.
    return operation_outcome("error", "exception", f"{resource_type} {id_} could not be exported "
                                                   f"({type(exc).__name__}); it was left out.")


def _iso(value: datetime, shift: timedelta) -> str:
    return (value + shift).isoformat()


def patients(scope: QuerySet[Patient], refs: Refs, since: datetime | None) -> Iterator[Resource]:
    qs = scope.order_by("pk")
    if since:
        # Each resource's own last change (FHIR Bulk Data: _since is meta.lastUpdated), so an
        # edit after creation is exported too.
        qs = qs.filter(updated_at__gte=since)
    if refs.pseudo is None:
        for patient in qs.iterator(chunk_size=CHUNK):
            yield patient_identified_for_export(patient)
        return
    for pk, sex, birth_date in qs.values_list("pk", "sex", "birth_date").iterator(chunk_size=CHUNK):
        # Birth date coarsened to the year; not shifted (a year is already coarse).
        yield patient_pseudonymised_to_fhir(pseudonym=refs.patient(pk), sex=sex, birth_year=birth_date.year)


def episodes(scope: QuerySet[Patient], refs: Refs, since: datetime | None) -> Iterator[Resource]:
    qs = TreatmentEpisode.objects.filter(patient__in=scope.values("pk"))
    if since:
        qs = qs.filter(updated_at__gte=since)
    rows = qs.order_by("pk").values_list("pk", "patient_id", "condition_code", "program__condition_display",
                                         "care_team_id", "care_team__name", "care_team__department",
                                         "care_team__region", "treatment_start", "end")
    regions = dict(Region.choices)
    for pk, pid, code, display, team_id, team, department, region, start, end in rows.iterator(chunk_size=CHUNK):
        shift = refs.shift(pid)
        yield episode_to_fhir(
            id_=refs.id("EpisodeOfCare", pk), patient_ref=refs.patient(pid), condition_code=code,
            condition_display=display, care_team_id=refs.id("CareTeam", team_id), care_team_name=team,
            department=department,
            region_code=region, region_display=regions.get(region, region),
            start=shift_date_str(start.isoformat(), shift), end=shift_date_str(end.isoformat(), shift) if end else None)


def devices(scope: QuerySet[Patient], refs: Refs, since: datetime | None) -> Iterator[Resource]:
    kinds = dict(DeviceKind.choices)
    qs = Device.objects.filter(patient__in=scope.values("pk"))
    if since:
        qs = qs.filter(updated_at__gte=since)
    rows = qs.order_by("pk").values_list("pk", "patient_id", "kind", "model", "serial")
    for pk, pid, kind, model, serial in rows.iterator(chunk_size=CHUNK):
        yield device_to_fhir(id_=refs.id("Device", pk), patient_ref=refs.patient(pid), kind=kind,
                             kind_display=str(kinds.get(kind, kind)), model=model,
                             serial=None if refs.pseudo else serial)


def _responses(scope: QuerySet[Patient], since: datetime | None) -> QuerySet[QuestionnaireResponse]:
    # Drafts are not outcome data: completed responses only.
    qs = QuestionnaireResponse.objects.filter(patient__in=scope.values("pk"), status=ResponseStatus.COMPLETED)
    if since:
        qs = qs.filter(updated_at__gte=since)
    return qs.order_by("pk")


def questionnaire_responses(scope: QuerySet[Patient], refs: Refs, since: datetime | None) -> Iterator[Resource]:
    qs = _responses(scope, since).values_list("pk", "patient_id", "questionnaire__url",
                                              "questionnaire__version", "status", "authored_at", "items")
    for pk, pid, url, version, status, authored, items in qs.iterator(chunk_size=CHUNK):
        try:
            shift = refs.shift(pid)
            yield questionnaire_response_for_export(
                id_=refs.id("QuestionnaireResponse", pk), patient_ref=refs.patient(pid),
                questionnaire=f"{url}|{version}", status=status, authored=_iso(authored, shift),
                items=items_without_free_text(items, shift) if refs.pseudo else items)
        except (KeyError, TypeError, ValueError) as exc:
            yield _failed("QuestionnaireResponse", pk, exc)


def observations(scope: QuerySet[Patient], refs: Refs, since: datetime | None) -> Iterator[Resource]:
    """Home readings (vital signs), then the scores computed from responses (survey)."""
    readings = Reading.objects.filter(patient__in=scope.values("pk"))
    if since:
        # A reading marked erroneous after it arrived changed then.
        readings = readings.filter(Q(received_at__gte=since) | Q(erroneous_at__gte=since))
    rows = readings.order_by("pk").values_list("pk", "patient_id", "device_id", "measure", "value", "value2",
                                               "unit", "erroneous_at", "effective_at", "received_at", "original")
    codes = {slug: (m.loinc, m.display) for slug, m in MEASURES.items()}
    pseudo = refs.pseudo is not None
    for pk, pid, device_id, measure, value, value2, unit, erroneous_at, effective, received, original in rows.iterator(
            chunk_size=CHUNK):
        try:
            shift = refs.shift(pid)
            loinc, display = codes[measure]
            yield observation_from_reading(
                id_=refs.id("Observation", f"reading-{pk}") if pseudo else f"reading-{pk}",
                patient_ref=refs.patient(pid), loinc=loinc, display=display,
                erroneous=erroneous_at is not None, value=value, value2=value2, unit=unit,
                effective=_iso(effective, shift), issued=_iso(received, shift),
                device_ref=refs.device(device_id) if device_id else None,
                # the sender's codes and issued time; no free text (code.text, displays) when pseudonymised
                original=original, free_text=not pseudo,
                shift=partial(shift_date_str, shift=shift) if pseudo else None)
        except (KeyError, TypeError, ValueError) as exc:
            yield _failed("Observation", f"reading-{pk}", exc)
    scored = _responses(scope, since).exclude(scores=[]).values_list("pk", "patient_id", "authored_at", "scores")
    for pk, pid, authored, scores in scored.iterator(chunk_size=CHUNK):
        for index, score in enumerate(scores or []):
            local = f"qr{pk}-score{index}"
            try:
                yield observation_from_score(
                    id_=refs.id("Observation", local) if pseudo else local, patient_ref=refs.patient(pid),
                    effective=_iso(authored, refs.shift(pid)),
                    response_ref=refs.id("QuestionnaireResponse", pk), score=score)
            except (KeyError, TypeError, ValueError) as exc:
                yield _failed("Observation", local, exc)


GENERATORS: dict[str, Callable[[QuerySet[Patient], Refs, datetime | None], Iterator[Resource]]] = {
    "Patient": patients,
    "EpisodeOfCare": episodes,
    "Device": devices,
    "QuestionnaireResponse": questionnaire_responses,
    "Observation": observations,
}


def estimate(resource_type: str, scope: QuerySet[Patient], since: datetime | None) -> int:
    """Roughly how many rows a type will stream (for X-Progress); one COUNT per type."""
    ids = scope.values("pk")
    changed = {"updated_at__gte": since} if since else {}
    if resource_type == "Patient":
        return scope.filter(**changed).count()
    if resource_type == "EpisodeOfCare":
        return TreatmentEpisode.objects.filter(patient__in=ids, **changed).count()
    if resource_type == "Device":
        return Device.objects.filter(patient__in=ids, **changed).count()
    if resource_type == "QuestionnaireResponse":
        return _responses(scope, since).count()
    readings = Reading.objects.filter(patient__in=ids)
    if since:
        readings = readings.filter(Q(received_at__gte=since) | Q(erroneous_at__gte=since))
    return readings.count() + _responses(scope, since).exclude(scores=[]).count()
