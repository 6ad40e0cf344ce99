"""REST endpoints of triage. Each view parses its input with a serializer (field-level errors),
finds the alert among the caller's patients (others answer 404, audited as denied), calls one
service from alerts.lifecycle and returns the alert's one JSON shape (alerts.selectors)."""

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role, User
from alerts import lifecycle
from alerts.lifecycle import NOTE_MAX, AlertConflict, SnoozeEnded
from alerts.models import Alert, Outcome, Snooze
from alerts.selectors import alert_payload, alerts_for, worklist
from audit.models import Action
from audit.models import Outcome as AuditOutcome
from audit.services import audit_record
from patients.access import patient_or_404, patients_for
from proplatform.middleware import current_request_id
from smart.principal import principal


class PatientRef(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    name = serializers.CharField()
    cpr = serializers.CharField(help_text="The patient's CPR number, as the worklist shows it.")
    age = serializers.IntegerField(help_text="Whole years today.")


class PersonRef(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField()


class AlertOut(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    patient = PatientRef()
    severity = serializers.ChoiceField(choices=["red", "yellow"])
    severity_label = serializers.CharField(help_text="The severity in words, in the caller's language.")
    status = serializers.ChoiceField(choices=["open", "acknowledged", "resolved"])
    reason = serializers.CharField()
    evidence = serializers.DictField()
    rule = serializers.CharField()
    program_id = serializers.IntegerField()
    program = serializers.CharField(help_text="The name of the programme whose rule raised the alert.")
    raised_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField(help_text="When the latest finding was added.")
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    acknowledged_by = serializers.CharField(allow_null=True)
    new_evidence = serializers.BooleanField(help_text="Acknowledged, and a finding was added since.")
    assigned_to = PersonRef(allow_null=True)
    finding_count = serializers.IntegerField()
    resolved_at = serializers.DateTimeField(allow_null=True)
    outcome = serializers.CharField(allow_null=True, help_text="How it was resolved (see ResolveIn.outcome).")
    url = serializers.CharField(help_text="The patient page, at this alert.")


class ConflictOut(AlertOut):
    detail = serializers.CharField(help_text="Who changed the alert first, in words.")


class AssignIn(serializers.Serializer[Any]):
    assignee = serializers.IntegerField(allow_null=True, help_text="User id of a clinician on one of the "
                                        "patient's care teams; null to unassign.")
    note = serializers.CharField(required=False, allow_blank=True, max_length=NOTE_MAX, default="")
    current_assignee = serializers.IntegerField(
        required=False, allow_null=True,
        help_text="The assignee the caller saw. If given and someone re-assigned the alert meanwhile, 409.")


class ResolveIn(serializers.Serializer[Any]):
    outcome = serializers.ChoiceField(choices=Outcome.choices)
    note = serializers.CharField(required=False, allow_blank=True, max_length=NOTE_MAX, default="",
                                 help_text='Required with outcome "no-action".')


class BulkAcknowledgeIn(serializers.Serializer[Any]):
    ids = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), min_length=1,
                                max_length=lifecycle.BULK_MAX)


class BulkItemOut(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    acknowledged = serializers.BooleanField()
    reason = serializers.CharField(help_text="Why it was not acknowledged (empty when it was).")
    alert = AlertOut(allow_null=True)


class BulkAcknowledgeOut(serializers.Serializer[Any]):
    results = BulkItemOut(many=True)


class SnoozeIn(serializers.Serializer[Any]):
    patient = serializers.UUIDField()
    measure = serializers.CharField(max_length=32)
    component = serializers.ChoiceField(choices=["value", "value2"], default="value",
                                        help_text='"value2": the diastolic part of blood pressure.')
    low = serializers.DecimalField(max_digits=9, decimal_places=3, required=False, allow_null=True)
    high = serializers.DecimalField(max_digits=9, decimal_places=3, required=False, allow_null=True)
    until = serializers.DateTimeField(help_text="At most 30 days ahead.")
    reason = serializers.CharField(max_length=NOTE_MAX)
    alert = serializers.IntegerField(required=False, allow_null=True,
                                     help_text="The alert this snooze is made from (gets a 'snoozed' event).")
    resolve = serializers.BooleanField(default=False,
                                       help_text="Also resolve that alert as 'no action needed'.")


class SnoozeOut(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    patient = serializers.UUIDField()
    measure = serializers.CharField()
    component = serializers.CharField()
    low = serializers.DecimalField(max_digits=9, decimal_places=3, allow_null=True)
    high = serializers.DecimalField(max_digits=9, decimal_places=3, allow_null=True)
    until = serializers.DateTimeField()
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)


def snooze_payload(s: Snooze) -> dict[str, Any]:
    return SnoozeOut({"id": s.pk, "patient": s.patient_id, "measure": s.measure, "component": s.component,
                      "low": s.low, "high": s.high, "until": s.until, "reason": s.reason,
                      "created_at": s.created_at, "ended_at": s.ended_at}).data


def _require_clinician(request: Request) -> User:
    """The clinician (or administrator) calling; a system client or anyone else is refused."""
    who = principal(request)
    if not isinstance(who, User) or who.role not in {Role.CLINICIAN, Role.ADMIN}:
        raise PermissionDenied("Only clinicians triage alerts.")
    return who


def _alert_or_404(request: Request, alert_id: int, what: str) -> Alert:
    alert = (alerts_for(request.user).select_related("patient", "rule__program", "acknowledged_by", "assigned_to",
                                                     "resolved_by")
             .filter(pk=alert_id).first())
    if alert is None:
        audit_record(user=request.user, action=Action.UPDATE, resource=f"Alert/{alert_id} {what}",
                     outcome=AuditOutcome.DENIED, request=request)
        raise Http404("No such alert.")
    return alert


def _field_errors(exc: DjangoValidationError) -> ApiValidationError:
    return ApiValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages})


def _conflict(exc: AlertConflict, request: Request) -> Response:
    """409 with the alert as it now is: a read of the patient's alert, audited as one."""
    audit_record(user=request.user, action=Action.READ, resource=f"Alert/{exc.alert.pk} (conflict)",
                 patient_id=exc.alert.patient_id, request=request)
    return Response({**alert_payload(exc.alert), "detail": exc.message}, status=status.HTTP_409_CONFLICT)


_ERRORS = {
    400: OpenApiResponse(description="Field-level errors: {field: [message]}."),
    403: OpenApiResponse(description="Not a clinician."),
    404: OpenApiResponse(description="No such alert among the caller's patients."),
}


class AlertListView(APIView):
    @extend_schema(responses={200: AlertOut(many=True), 403: OpenApiResponse(description="Not a clinician.")},
                   tags=["alerts"])
    def get(self, request: Request) -> Response:
        """The caller's worklist: open red, open yellow, then acknowledged; oldest first."""
        _require_clinician(request)
        audit_record(user=request.user, action=Action.SEARCH, resource="Alert?worklist", request=request)
        return Response([alert_payload(a) for a in worklist(request.user)])


class AlertAcknowledgeView(APIView):
    @extend_schema(
        request=None,
        responses={
            200: AlertOut,
            403: OpenApiResponse(description="Not a clinician."),
            404: OpenApiResponse(description="No such alert among the caller's patients."),
            400: OpenApiResponse(description="Field-level errors: {field: [message]}."),
            409: OpenApiResponse(ConflictOut, description="Already acknowledged (the body says by whom), or "
                                                          "its colour is no longer expected_severity."),
        },
        parameters=[OpenApiParameter(
            "expected_severity", str, enum=["red", "yellow"], required=False,
            description="The colour the caller saw; if the alert has another colour now, 409 instead of "
                        "acknowledging (the worklist sends it: a yellow alert turned red is not acknowledged "
                        "by a click meant for yellow).")],
        tags=["alerts"],
    )
    def post(self, request: Request, alert_id: int) -> Response:
        clinician = _require_clinician(request)
        expected = request.query_params.get("expected_severity")
        if expected is not None and expected not in ("red", "yellow"):
            return Response({"expected_severity": [_("Give red or yellow.")], "request_id": current_request_id()},
                            status=status.HTTP_400_BAD_REQUEST)
        alert = _alert_or_404(request, alert_id, "acknowledge")
        try:
            alert = lifecycle.alert_acknowledge(alert=alert, user=clinician, expected_severity=expected,
                                                request=request)
        except AlertConflict as exc:
            return _conflict(exc, request)
        return Response(alert_payload(alert))


class AlertAssignView(APIView):
    @extend_schema(request=AssignIn, responses={
        200: AlertOut, **_ERRORS,
        409: OpenApiResponse(ConflictOut, description="Resolved, or re-assigned by someone else meanwhile."),
    }, tags=["alerts"])
    def post(self, request: Request, alert_id: int) -> Response:
        """Assign an unresolved alert to a clinician on one of the patient's care teams."""
        clinician = _require_clinician(request)
        data = AssignIn(data=request.data)
        data.is_valid(raise_exception=True)
        alert = _alert_or_404(request, alert_id, "assign")
        assignee = None
        if data.validated_data["assignee"] is not None:
            assignee = User.objects.filter(pk=data.validated_data["assignee"]).first()
            if assignee is None:
                raise ApiValidationError({"assignee": ["Choose a clinician on one of the patient's care teams."]})
        extra = {}
        if "current_assignee" in data.validated_data:
            extra["expected_assignee_id"] = data.validated_data["current_assignee"]
        try:
            alert = lifecycle.alert_assign(alert=alert, assignee=assignee, user=clinician,
                                           note=data.validated_data["note"], request=request, **extra)
        except DjangoValidationError as exc:
            raise _field_errors(exc) from exc
        except AlertConflict as exc:
            return _conflict(exc, request)
        return Response(alert_payload(alert))


class AlertResolveView(APIView):
    @extend_schema(request=ResolveIn, responses={
        200: AlertOut, **_ERRORS,
        409: OpenApiResponse(ConflictOut, description="Already resolved; the body says by whom."),
    }, tags=["alerts"])
    def post(self, request: Request, alert_id: int) -> Response:
        """Resolve an alert with what was done (acknowledging it too if nobody had)."""
        clinician = _require_clinician(request)
        data = ResolveIn(data=request.data)
        data.is_valid(raise_exception=True)
        alert = _alert_or_404(request, alert_id, "resolve")
        try:
            alert = lifecycle.alert_resolve(alert=alert, outcome=data.validated_data["outcome"],
                                            note=data.validated_data["note"], user=clinician, request=request)
        except DjangoValidationError as exc:
            raise _field_errors(exc) from exc
        except AlertConflict as exc:
            return _conflict(exc, request)
        return Response(alert_payload(alert))


class AlertBulkAcknowledgeView(APIView):
    @extend_schema(operation_id="api_v1_alerts_acknowledge_bulk", request=BulkAcknowledgeIn, responses={
        200: BulkAcknowledgeOut,
        400: OpenApiResponse(description="Field-level errors: {field: [message]}."),
        403: OpenApiResponse(description="Not a clinician."),
    }, tags=["alerts"])
    def post(self, request: Request) -> Response:
        """Acknowledge several yellow alerts. Per id: acknowledged, or refused with a reason (red
        alerts are refused: they are acknowledged one at a time; unknown ids: "No such alert")."""
        clinician = _require_clinician(request)
        data = BulkAcknowledgeIn(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            results = lifecycle.alerts_acknowledge_bulk(alert_ids=data.validated_data["ids"],
                                                        scope=alerts_for(request.user), user=clinician,
                                                        request=request)
        except DjangoValidationError as exc:
            raise _field_errors(exc) from exc
        for r in results:
            if r.alert is None:
                audit_record(user=request.user, action=Action.UPDATE, resource=f"Alert/{r.id} acknowledge (bulk)",
                             outcome=AuditOutcome.DENIED, request=request)
            elif not r.acknowledged:  # refused (red, or changed meanwhile), answered with the alert: a read
                audit_record(user=request.user, action=Action.READ, resource=f"Alert/{r.id} (bulk, not acknowledged)",
                             patient_id=r.alert.patient_id, request=request)
        return Response({"results": [
            {"id": r.id, "acknowledged": r.acknowledged, "reason": r.reason,
             "alert": alert_payload(r.alert) if r.alert is not None else None}
            for r in results]})


class SnoozeCreateView(APIView):
    @extend_schema(request=SnoozeIn, responses={
        201: SnoozeOut,
        400: OpenApiResponse(description="Field-level errors: {field: [message]}."),
        403: OpenApiResponse(description="Not a clinician."),
        404: OpenApiResponse(description="No such patient among the caller's patients."),
        409: OpenApiResponse(ConflictOut, description="With resolve: the alert was resolved meanwhile."),
    }, tags=["alerts"])
    def post(self, request: Request) -> Response:
        """Snooze an expected level of one measure for one patient (at most 30 days): findings
        inside [low, high] raise no alert; the rule still fires beyond it."""
        clinician = _require_clinician(request)
        data = SnoozeIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        patient = patient_or_404(request, v["patient"], action=Action.CREATE, resource="Snooze (API)")
        alert = None
        if v.get("alert") is not None:
            alert = alerts_for(request.user).filter(pk=v["alert"], patient=patient).first()
            if alert is None:
                raise ApiValidationError({"alert": ["No such alert for this patient."]})
        try:
            snooze = lifecycle.snooze_create(
                patient=patient, measure=v["measure"], component=v["component"], low=v.get("low"),
                high=v.get("high"), until=v["until"], reason=v["reason"], user=clinician, alert=alert,
                resolve=v["resolve"], request=request)
        except DjangoValidationError as exc:
            raise _field_errors(exc) from exc
        except AlertConflict as exc:
            return _conflict(exc, request)
        return Response(snooze_payload(snooze), status=status.HTTP_201_CREATED)


class SnoozeEndView(APIView):
    @extend_schema(request=None, responses={
        200: SnoozeOut,
        403: OpenApiResponse(description="Not a clinician."),
        404: OpenApiResponse(description="No such snooze among the caller's patients."),
        409: OpenApiResponse(SnoozeOut, description="Already ended (or expired)."),
    }, tags=["alerts"])
    def post(self, request: Request, snooze_id: int) -> Response:
        """End a snooze now."""
        clinician = _require_clinician(request)
        snooze = Snooze.objects.filter(pk=snooze_id, patient__in=patients_for(request.user).values("pk")).first()
        if snooze is None:
            audit_record(user=request.user, action=Action.UPDATE, resource=f"Snooze/{snooze_id} end",
                         outcome=AuditOutcome.DENIED, request=request)
            raise Http404("No such snooze.")
        try:
            snooze = lifecycle.snooze_end(snooze=snooze, user=clinician, request=request)
        except SnoozeEnded as exc:
            return Response(snooze_payload(exc.snooze), status=status.HTTP_409_CONFLICT)
        return Response(snooze_payload(snooze))
