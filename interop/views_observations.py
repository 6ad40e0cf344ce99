"""FHIR ingest of home readings: POST /fhir/Observation and POST /fhir with a batch or
transaction Bundle of Observations. Parsing is interop.observation_in (pure); storing is the
same fast path as the REST batch endpoint (monitoring.ingest.readings_ingest)."""

import re
from collections.abc import Sequence
from typing import Any, NamedTuple

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.authentication import BearerTokenAuthentication
from accounts.models import Role, User
from audit.models import Action, Outcome
from audit.services import audit_record
from interop import conditional
from interop.mapping import operation_outcome, reading_to_observation, score_to_observation
from interop.observation_in import ParsedObservation, parse_observation
from interop.search_resources import observation_search, parse_request
from interop.services_bundle import TransactionRefused, observations_transaction_store
from interop.validate import bundle_issues, structure_outcome
from interop.views import FhirInvalid, FhirView
from interop.views_questionnaires import FhirJSONParser, _base
from monitoring.authentication import DevicePrincipal, DeviceTokenAuthentication
from monitoring.ingest import MAX_BATCH, ItemResult, readings_ingest
from monitoring.measures import MEASURES
from monitoring.models import Device, Reading, Source
from monitoring.services import readings_audit_created
from patients.access import patient_or_404
from patients.models import Patient
from proplatform.parsers import JSONParser
from questionnaires.models import QuestionnaireResponse
from smart.authentication import SystemTokenAuthentication

_OUTCOME = OpenApiResponse(OpenApiTypes.OBJECT, description="FHIR OperationOutcome")
_STATUS_TEXT = {200: "200 OK", 201: "201 Created", 400: "400 Bad Request", 404: "404 Not Found",
                409: "409 Conflict", 412: "412 Precondition Failed"}


class _Caller(NamedTuple):
    """Who sends readings: a patient's device, or the patient (``person``, who entered them)."""

    patient: Patient
    device: Device | None
    source: Source
    person: User | None


def _caller(request: Request) -> _Caller:
    user = request.user
    if isinstance(user, DevicePrincipal):
        return _Caller(user.device.patient, user.device, Source.DEVICE, None)
    if not isinstance(user, User) or user.role != Role.PATIENT or not hasattr(user, "patient"):
        raise exceptions.PermissionDenied("Observations are sent by patients and their devices.")
    return _Caller(user.patient, None, Source.API, user)


def _item(parsed: ParsedObservation) -> dict[str, Any]:
    item: dict[str, Any] = {"measure": parsed.measure, "unit": parsed.unit, "effective_at": parsed.effective_at}
    if parsed.is_panel:
        item["systolic"], item["diastolic"] = parsed.value, parsed.value2
    else:
        item["value"] = parsed.value
    if parsed.client_id:
        item["client_id"] = parsed.client_id
    if parsed.device_id is not None:
        item["device"] = parsed.device_id
    return item


def _problems_outcome(parsed: ParsedObservation) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "invalid", "diagnostics": p.message, "expression": [p.expression]}
        for p in parsed.problems]}


# Where in the Observation each of the ingest's fields came from (interop.observation_in).
_EXPRESSION = {
    "measure": "Observation.code", "value": "Observation.valueQuantity.value",
    "systolic": "Observation.component", "diastolic": "Observation.component",
    "unit": "Observation.valueQuantity.code", "effective_at": "Observation.effective",
    "client_id": "Observation.identifier", "device": "Observation.device", "patient": "Observation.subject",
}


def _result_outcome(result: ItemResult) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "conflict" if result.status == 409 else
         "not-found" if result.status == 404 else "invalid",
         "diagnostics": f"{field}: {message}", "expression": [_EXPRESSION.get(field, "Observation")]}
        for field, messages in result.errors.items() for message in messages]}


def _in_entry(outcome: dict[str, Any], index: int) -> list[dict[str, Any]]:
    """An entry's issues, as issues of the Bundle: diagnostics and expressions name the entry."""
    issues = []
    for issue in outcome["issue"]:
        issue = {**issue, "diagnostics": f"entry[{index}]: {issue.get('diagnostics', '')}"}
        if "expression" in issue:
            issue["expression"] = [f"Bundle.entry[{index}].resource" + e.removeprefix("Observation")
                                   if e.startswith("Observation") else e for e in issue["expression"]]
        issues.append(issue)
    return issues


def _observation(result: ItemResult) -> dict[str, Any]:
    reading = result.reading
    assert reading is not None  # called for stored readings only
    return _reading_observation(reading)


def _reading_observation(reading: Reading) -> dict[str, Any]:
    measure = MEASURES[reading.measure]
    return reading_to_observation(reading, loinc=measure.loinc, display=measure.display)


def _check(parsed: ParsedObservation, patient: Patient) -> tuple[dict[str, Any], int] | None:
    """A parse problem (400) or a subject that is not the caller's patient (404)."""
    if not parsed.ok:
        return _problems_outcome(parsed), 400
    if parsed.patient_id != str(patient.pk):
        return operation_outcome("error", "not-found", "No such patient."), 404
    return None


def _audit_stored(request: Request, patient: Patient, results: list[ItemResult]) -> None:
    """A person's new readings are audited, as through the REST endpoint; a device's are not
    (it is no person, and it writes only its own patient's record)."""
    if not isinstance(request.user, DevicePrincipal):
        readings_audit_created(user=request.user, patient=patient, results=results, request=request)


class ObservationCreateMixin:
    # SystemTokenAuthentication: system clients read (smart.permissions refuses their writes)
    authentication_classes: Sequence[type[BaseAuthentication]] = [
        SystemTokenAuthentication, DeviceTokenAuthentication, BearerTokenAuthentication, SessionAuthentication]
    parser_classes: Sequence[type[BaseParser]] = [FhirJSONParser, JSONParser]


class ObservationCollectionView(ObservationCreateMixin, FhirView):
    """POST /fhir/Observation (one reading) and GET /fhir/Observation?patient= (search)."""

    @extend_schema(
        parameters=[OpenApiParameter("patient", str, required=True, description="Patient id"),
                    OpenApiParameter("category", str, description="vital-signs (home readings) or survey "
                                                                  "(questionnaire scores); both when omitted"),
                    OpenApiParameter("code", str), OpenApiParameter("date", str), OpenApiParameter("_sort", str),
                    OpenApiParameter("_count", int), OpenApiParameter("_cursor", str)],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="searchset Bundle"),
                   400: _OUTCOME, 404: _OUTCOME},
        tags=["fhir"], operation_id="fhir_Observation_search",
    )
    def get(self, request: Request) -> Response:
        """A patient's observations: home readings (vital-signs, erroneous ones as
        entered-in-error) and scores computed from questionnaire responses (survey), newest first,
        in keyset pages (interop.search_resources.observation_search)."""
        if isinstance(request.user, DevicePrincipal):
            audit_record(user=request.user, action=Action.SEARCH, resource="Observation search (FHIR)",
                         outcome=Outcome.DENIED, request=request)
            raise exceptions.PermissionDenied("A device sends observations; it cannot read them.")
        search = parse_request(request, "Observation")
        return Response(observation_search(request, search, _base(request)))

    @extend_schema(request=OpenApiTypes.OBJECT,
                   responses={201: OpenApiResponse(OpenApiTypes.OBJECT, description="the stored Observation"),
                              200: OpenApiResponse(OpenApiTypes.OBJECT, description="already stored"),
                              400: _OUTCOME, 401: _OUTCOME, 403: _OUTCOME, 404: _OUTCOME, 409: _OUTCOME},
                   tags=["fhir"], operation_id="fhir_Observation_create")
    def post(self, request: Request) -> Response:
        patient, device, source, person = _caller(request)
        parsed = parse_observation(request.data)
        refused = _check(parsed, patient)
        if refused:
            return Response(refused[0], status=refused[1])
        # Conditional create: one of the patient's readings matching If-None-Exist is answered as
        # is (200) and nothing is stored; several are 412.
        criteria = conditional.criteria(request.headers.get("If-None-Exist"), "Observation")
        if criteria is not None:
            matches = conditional.readings_matching(patient, criteria)
            if len(matches) > 1:
                return conditional.several(criteria, "Observation")
            if matches:
                return conditional.created(request, _reading_observation(matches[0]), code=200,
                                           location=f"{_base(request)}/Observation/reading-{matches[0].pk}")
        [result] = readings_ingest(patient=patient, items=[_item(parsed)], source=source, device=device,
                                   entered_by=person, provenance=[parsed.provenance])
        _audit_stored(request, patient, [result])
        if result.reading is None:
            return Response(_result_outcome(result), status=result.status)
        return conditional.created(request, _observation(result), code=result.status,
                                   location=f"{_base(request)}/Observation/reading-{result.reading.pk}")


_READING_ID = re.compile(r"reading-(\d{1,18})")
_SCORE_ID = re.compile(r"qr(\d{1,18})-score(\d{1,4})")


class ObservationReadView(FhirView):
    """GET /fhir/Observation/<id>: a home reading (``reading-N``: where a create's Location points)
    or a questionnaire score (``qrN-scoreI``), for whoever may see the patient. Unknown and
    foreign ids are answered alike (404), and both are audited."""

    authentication_classes = [SystemTokenAuthentication, BearerTokenAuthentication, SessionAuthentication]

    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="FHIR R4 Observation"),
                              401: _OUTCOME, 404: _OUTCOME},
                   tags=["fhir"], operation_id="fhir_Observation_read")
    def get(self, request: Request, observation_id: str) -> Response:
        found: Any = None
        if match := _READING_ID.fullmatch(observation_id):
            found = Reading.objects.filter(pk=int(match[1])).first()
        elif match := _SCORE_ID.fullmatch(observation_id):
            found = QuestionnaireResponse.objects.filter(pk=int(match[1]), status="completed").first()
            index = int(match[2])
            if found is not None and not (isinstance(found.scores, list) and index < len(found.scores)):
                found = None
        resource = f"Observation/{observation_id if match else '?'} (FHIR)"
        if found is None:
            audit_record(user=request.user, action=Action.READ, outcome=Outcome.DENIED, resource=resource,
                         request=request)
            raise exceptions.NotFound("No such Observation.")
        try:
            patient_or_404(request, found.patient_id, resource=resource)
        except Http404:
            raise exceptions.NotFound("No such Observation.") from None
        if isinstance(found, Reading):
            measure = MEASURES[found.measure]
            return Response(reading_to_observation(found, loinc=measure.loinc, display=measure.display))
        return Response(score_to_observation(found, found.scores[index], index))


def _screen(i: int, entry: Any, patient: Patient) -> tuple[ParsedObservation, tuple[dict[str, Any], int] | None,
                                                           Reading | None]:
    """One Bundle entry, parsed and checked: its Observation, why it is refused (an outcome and a
    status) or None, and the reading its conditional create (ifNoneExist) matched, if one did."""
    resource = entry.get("resource") if isinstance(entry, dict) else None
    req = (entry.get("request") or {}) if isinstance(entry, dict) else {}
    req = req if isinstance(req, dict) else {}
    one = parse_observation(resource)
    if not isinstance(req, dict):
        return one, ({"resourceType": "OperationOutcome", "issue": [{
            "severity": "error", "code": "structure", "expression": [f"Bundle.entry[{i}].request"],
            "diagnostics": "Bundle.entry.request is an object with method and url."}]}, 400), None
    if req.get("method", "POST") != "POST" or str(req.get("url", "Observation")).split("?")[0] != "Observation":
        return one, (operation_outcome("error", "not-supported",
                                       "Only POST of Observation is supported in a Bundle."), 400), None
    if (problem := _check(one, patient)) is not None:
        return one, problem, None
    if req.get("ifNoneExist") is None:
        return one, None, None
    where = f"Bundle.entry[{i}].request.ifNoneExist"
    try:
        criteria = conditional.criteria(str(req["ifNoneExist"]), "Observation", where=where)
    except exceptions.ParseError as exc:
        return one, (operation_outcome("error", "invalid", str(exc.detail), expression=[where]), 400), None
    matches = conditional.readings_matching(patient, criteria) if criteria else []
    if criteria and len(matches) > 1:
        return one, (conditional.several(criteria, "Observation").data, 412), None
    return one, None, (matches[0] if matches else None)


class BundleView(ObservationCreateMixin, FhirView):
    """POST /fhir: a batch (each entry on its own) or transaction (all or nothing) Bundle of
    Observation creates."""

    @extend_schema(request=OpenApiTypes.OBJECT,
                   responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="batch-/transaction-response"),
                              400: _OUTCOME, 401: _OUTCOME, 403: _OUTCOME},
                   tags=["fhir"], operation_id="fhir_Bundle_process")
    def post(self, request: Request) -> Response:
        patient, device, source, person = _caller(request)
        bundle = request.data
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            raise FhirInvalid("Bundle", "The body must be a FHIR Bundle.")
        kind = bundle.get("type")
        if kind not in ("batch", "transaction"):
            raise FhirInvalid("Bundle.type", "Bundle.type must be batch or transaction.")
        entries = bundle.get("entry") or []
        if not isinstance(entries, list) or not entries or len(entries) > MAX_BATCH:
            raise FhirInvalid("Bundle.entry", f"A Bundle carries 1 to {MAX_BATCH} entries.")
        if issues := bundle_issues(bundle):  # the Bundle itself; entries are checked one by one below
            return Response(structure_outcome(issues), status=400)
        parsed: list[ParsedObservation] = []
        refused: dict[int, tuple[dict[str, Any], int]] = {}
        existing: dict[int, Reading] = {}  # conditional creates that matched: answered, not stored
        for i, entry in enumerate(entries):
            one, problem, match = _screen(i, entry, patient)
            parsed.append(one)
            if problem is not None:
                refused[i] = problem
            elif match is not None:
                existing[i] = match
        if kind == "transaction":
            return self._transaction(request, _Caller(patient, device, source, person), parsed, refused, existing)
        ok = [i for i in range(len(parsed)) if i not in refused and i not in existing]
        results = readings_ingest(patient=patient, items=[_item(parsed[i]) for i in ok], source=source,
                                  device=device, entered_by=person,
                                  provenance=[parsed[i].provenance for i in ok])
        _audit_stored(request, patient, results)
        by_index = dict(zip(ok, results, strict=True))
        response_entries = []
        for i in range(len(parsed)):
            if i in refused:
                outcome, code = refused[i]
                response_entries.append({"response": {"status": _STATUS_TEXT[code], "outcome": outcome}})
            elif i in existing:
                response_entries.append(self._existing_entry(existing[i]))
            else:
                response_entries.append(self._entry(request, by_index[i]))
        return Response({"resourceType": "Bundle", "type": "batch-response", "entry": response_entries})

    def _entry(self, request: Request, result: ItemResult) -> dict[str, Any]:
        if result.reading is None:
            return {"response": {"status": _STATUS_TEXT[result.status], "outcome": _result_outcome(result)}}
        return {"resource": _observation(result), "response": {
            "status": _STATUS_TEXT[result.status],
            "location": f"Observation/reading-{result.reading.pk}"}}

    def _existing_entry(self, reading: Reading) -> dict[str, Any]:
        return {"resource": _reading_observation(reading), "response": {
            "status": _STATUS_TEXT[200], "location": f"Observation/reading-{reading.pk}"}}

    def _transaction(self, request: Request, caller: _Caller, parsed: list[ParsedObservation],
                     refused: dict[int, tuple[dict[str, Any], int]], existing: dict[int, Reading]) -> Response:
        patient, device, source, person = caller
        if refused:  # every refused entry is reported, so the sender can mend them all at once
            issues = [issue for i in sorted(refused) for issue in _in_entry(refused[i][0], i)]
            return Response({"resourceType": "OperationOutcome", "issue": issues}, status=refused[min(refused)][1])
        todo = [i for i in range(len(parsed)) if i not in existing]
        try:
            by_index = observations_transaction_store(
                patient=patient, entries={i: _item(parsed[i]) for i in todo},
                provenance={i: parsed[i].provenance for i in todo}, source=source, device=device,
                entered_by=person)
        except TransactionRefused as exc:  # all or nothing: nothing of this Bundle is stored
            issues = [issue for i, r in exc.failed for issue in _in_entry(_result_outcome(r), i)]
            return Response({"resourceType": "OperationOutcome", "issue": issues}, status=exc.failed[0][1].status)
        _audit_stored(request, patient, list(by_index.values()))
        return Response({"resourceType": "Bundle", "type": "transaction-response", "entry": [
            self._existing_entry(existing[i]) if i in existing else self._entry(request, by_index[i])
            for i in range(len(parsed))]})


class BundleSlashView(BundleView):
    """The same at /fhir/ (some clients add the slash); documented once, at /fhir."""

    @extend_schema(exclude=True)
    def post(self, request: Request) -> Response:
        return super().post(request)
