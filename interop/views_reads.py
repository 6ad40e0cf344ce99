"""Reads of resources the server refers to in what it hands out: ``GET /fhir/QuestionnaireResponse/<id>``
(where a create's Location and a score's ``derivedFrom`` point) and ``GET /fhir/Device/<id>`` (an
Observation's ``device``). Scoped through patients.access like every patient record: an unknown
id and one outside the caller's scope are answered alike (404), and both are audited."""

import re

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.authentication import BearerTokenAuthentication
from audit.models import Action, Outcome
from audit.services import audit_record
from interop.mapping import device_to_fhir, response_to_fhir
from interop.views import FhirView
from monitoring.models import Device, DeviceKind
from patients.access import patient_or_404
from questionnaires.models import QuestionnaireResponse, ResponseStatus

_OUTCOME = OpenApiResponse(OpenApiTypes.OBJECT, description="FHIR OperationOutcome")
_ID = re.compile(r"[0-9]{1,18}")


def _denied(request: Request, resource_type: str, id_: str) -> exceptions.NotFound:
    audit_record(user=request.user, action=Action.READ, outcome=Outcome.DENIED, request=request,
                 resource=f"{resource_type}/{id_ if _ID.fullmatch(id_) else '?'} (FHIR)")
    return exceptions.NotFound(f"No such {resource_type}.")


def _scoped(request: Request, patient_id: object, resource: str, resource_type: str) -> None:
    """Audited naming the patient (patient_or_404); a foreign patient is a 404 like a missing id."""
    try:
        patient_or_404(request, str(patient_id), resource=resource)
    except Http404:
        raise exceptions.NotFound(f"No such {resource_type}.") from None


class QuestionnaireResponseReadView(FhirView):
    authentication_classes = [BearerTokenAuthentication, SessionAuthentication]

    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="FHIR R4 QuestionnaireResponse"),
                              401: _OUTCOME, 404: _OUTCOME},
                   tags=["fhir"], operation_id="fhir_QuestionnaireResponse_read")
    def get(self, request: Request, response_id: str) -> Response:
        # Completed responses only, as the search serves: a draft is the author's unfinished work.
        found = (QuestionnaireResponse.objects.select_related("questionnaire", "patient")
                 .filter(pk=int(response_id), status=ResponseStatus.COMPLETED).first()
                 if _ID.fullmatch(response_id) else None)
        if found is None:
            raise _denied(request, "QuestionnaireResponse", response_id)
        _scoped(request, found.patient_id, f"QuestionnaireResponse/{found.pk} (FHIR)", "QuestionnaireResponse")
        return Response(response_to_fhir(found))


class DeviceReadView(FhirView):
    authentication_classes = [BearerTokenAuthentication, SessionAuthentication]

    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="FHIR R4 Device"),
                              401: _OUTCOME, 404: _OUTCOME},
                   tags=["fhir"], operation_id="fhir_Device_read")
    def get(self, request: Request, device_id: str) -> Response:
        found = Device.objects.filter(pk=int(device_id)).first() if _ID.fullmatch(device_id) else None
        if found is None:
            raise _denied(request, "Device", device_id)
        # A device is lent to one patient and its readings are theirs (ADR 0015): it is part of
        # that patient's record, its serial number included.
        _scoped(request, found.patient_id, f"Device/{found.pk} (FHIR)", "Device")
        kinds = dict(DeviceKind.choices)
        return Response(device_to_fhir(id_=str(found.pk), patient_ref=str(found.patient_id), kind=found.kind,
                                       kind_display=str(kinds.get(found.kind, found.kind)), model=found.model,
                                       serial=found.serial))
