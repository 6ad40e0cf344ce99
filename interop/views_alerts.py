"""Alerts over FHIR: ``GET /fhir/Flag?patient=&status=``, ``GET /fhir/Flag/<id>``,
``GET /fhir/DetectedIssue?patient=`` and ``GET /fhir/DetectedIssue/<id>``.

Access is the patient's (patients.access): an alert on a patient outside the caller's scope is
404, exactly like an alert that does not exist. Every search and read is audited. The mapping is
interop.mapping_alerts."""

import re
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Role
from alerts.models import Alert, AlertFinding
from audit.models import Action, Outcome
from audit.services import audit_record
from interop.mapping_alerts import alert_to_detected_issue, alert_to_flag
from interop.search_resources import DETECTED_ISSUE_STATUSES, FLAG_STATUSES, alert_search, parse_request
from interop.views import FhirView
from interop.views_questionnaires import _base
from patients.access import patient_or_404
from smart.principal import principal

_OUTCOME = OpenApiResponse(OpenApiTypes.OBJECT, description="FHIR OperationOutcome")
_BUNDLE = OpenApiResponse(OpenApiTypes.OBJECT, description="searchset Bundle")
_PATIENT = OpenApiParameter("patient", str, required=True, description="Patient id (Patient/<id> also accepted)")
_ID = re.compile(r"[0-9]{1,18}")


class _AlertView(FhirView):
    """Alerts are the care team's working data: the reason as worded for clinicians, who
    acknowledged and resolved them, their notes. Patients learn whether their answers were seen
    on their own pages ("My answers": a nurse's ResponseReview, questionnaires.review), not from these
    resources."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if principal(request).role not in {Role.CLINICIAN, Role.ADMIN}:
            raise exceptions.PermissionDenied("Flag and DetectedIssue are for the patient's care team.")


def _alerts() -> QuerySet[Alert]:
    return Alert.objects.select_related("rule", "acknowledged_by", "resolved_by")


def _alert_or_404(request: Request, alert_id: str, resource_type: str) -> Alert:
    """The alert if its patient is in the caller's scope; 404 alike for unknown and foreign
    alerts, so a foreign one's existence is not revealed. Both are audited."""
    alert = _alerts().filter(pk=int(alert_id)).first() if _ID.fullmatch(alert_id) else None
    if alert is None:
        audit_record(user=request.user, action=Action.READ, outcome=Outcome.DENIED, request=request,
                     resource=f"{resource_type}/{alert_id if _ID.fullmatch(alert_id) else '?'} (FHIR)")
        raise exceptions.NotFound(f"No such {resource_type}.")
    try:
        patient_or_404(request, alert.patient_id, resource=f"{resource_type}/{alert.pk} (FHIR)")
    except Http404:
        raise exceptions.NotFound(f"No such {resource_type}.") from None
    return alert


def _with_findings(alerts: QuerySet[Alert]) -> QuerySet[Alert]:
    return alerts.prefetch_related(Prefetch("findings", queryset=AlertFinding.objects.order_by("found_at", "id")))


class FlagSearchView(_AlertView):
    @extend_schema(
        parameters=[_PATIENT, OpenApiParameter("status", str, enum=["active", "inactive"],
                                               description="active: unresolved alerts; inactive: resolved")],
        responses={200: _BUNDLE, 400: _OUTCOME, 401: _OUTCOME, 404: _OUTCOME},
        tags=["fhir"], operation_id="fhir_Flag_search",
    )
    def get(self, request: Request) -> Response:
        """A patient's alerts as Flags for the banner, newest first, in keyset pages."""
        search = parse_request(request, "Flag")
        return Response(alert_search(request, search, _base(request), qs=_alerts(), to_fhir=alert_to_flag,
                                     status_codes={"active": "open", "inactive": "resolved"}, statuses=FLAG_STATUSES))


class FlagReadView(_AlertView):
    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="FHIR R4 Flag"),
                              401: _OUTCOME, 404: _OUTCOME},
                   tags=["fhir"], operation_id="fhir_Flag_read")
    def get(self, request: Request, flag_id: str) -> Response:
        return Response(alert_to_flag(_alert_or_404(request, flag_id, "Flag")))


class DetectedIssueSearchView(_AlertView):
    @extend_schema(
        parameters=[_PATIENT],
        responses={200: _BUNDLE, 400: _OUTCOME, 401: _OUTCOME, 404: _OUTCOME},
        tags=["fhir"], operation_id="fhir_DetectedIssue_search",
    )
    def get(self, request: Request) -> Response:
        """A patient's alerts as DetectedIssues with their evidence, newest first, in keyset pages."""
        search = parse_request(request, "DetectedIssue")
        return Response(alert_search(request, search, _base(request), qs=_with_findings(_alerts()), to_fhir=_issue,
                                     status_codes={"preliminary": "open", "final": "resolved"},
                                     statuses=DETECTED_ISSUE_STATUSES))


class DetectedIssueReadView(_AlertView):
    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="FHIR R4 DetectedIssue"),
                              401: _OUTCOME, 404: _OUTCOME},
                   tags=["fhir"], operation_id="fhir_DetectedIssue_read")
    def get(self, request: Request, detected_issue_id: str) -> Response:
        alert = _alert_or_404(request, detected_issue_id, "DetectedIssue")
        findings = list(AlertFinding.objects.filter(alert=alert).order_by("found_at", "id"))
        return Response(alert_to_detected_issue(alert, findings=findings))


def _issue(alert: Alert) -> dict[str, Any]:
    return alert_to_detected_issue(alert, findings=list(alert.findings.all()))
