from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from alerts.lifecycle import AlreadyAcknowledged, alert_acknowledge
from alerts.selectors import alert_payload, alerts_for, worklist
from audit.models import Action, Outcome
from audit.services import audit_record


class AlertOut(serializers.Serializer):
    id = serializers.IntegerField()
    patient = serializers.DictField()
    severity = serializers.ChoiceField(choices=["red", "yellow"])
    status = serializers.ChoiceField(choices=["open", "acknowledged", "resolved"])
    reason = serializers.CharField()
    evidence = serializers.DictField()
    rule = serializers.CharField()
    raised_at = serializers.DateTimeField()
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    acknowledged_by = serializers.CharField(allow_null=True)


def _require_clinician(request: Request) -> None:
    if request.user.role not in {Role.CLINICIAN, Role.ADMIN}:
        raise PermissionDenied("Only clinicians triage alerts.")


class AlertListView(APIView):
    @extend_schema(responses={200: AlertOut(many=True), 403: OpenApiResponse(description="Not a clinician.")},
                   tags=["alerts"])
    def get(self, request: Request) -> Response:
        """The caller's worklist: open alerts red first, then yellow, then acknowledged; oldest first."""
        _require_clinician(request)
        audit_record(user=request.user, action=Action.SEARCH, resource="Alert?worklist", request=request)
        alerts = worklist(request.user).select_related("rule")
        return Response([alert_payload(a) for a in alerts])


class AlertAcknowledgeView(APIView):
    @extend_schema(
        request=None,
        responses={
            200: AlertOut,
            403: OpenApiResponse(description="Not a clinician."),
            404: OpenApiResponse(description="No such alert among the caller's patients."),
            409: OpenApiResponse(AlertOut, description="Already acknowledged; the body says by whom."),
        },
        tags=["alerts"],
    )
    def post(self, request: Request, alert_id: int) -> Response:
        _require_clinician(request)
        alert = alerts_for(request.user).select_related("patient", "rule").filter(pk=alert_id).first()
        if alert is None:
            audit_record(user=request.user, action=Action.UPDATE, resource=f"Alert/{alert_id} acknowledge",
                         outcome=Outcome.DENIED, request=request)
            raise Http404("No such alert.")
        try:
            alert = alert_acknowledge(alert=alert, user=request.user, request=request)
        except AlreadyAcknowledged as exc:
            return Response(alert_payload(exc.alert), status=status.HTTP_409_CONFLICT)
        return Response(alert_payload(alert))
