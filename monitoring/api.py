from datetime import datetime

from django.core.exceptions import ValidationError
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import PermissionDenied
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import BearerTokenAuthentication
from accounts.models import Role
from audit.models import Action
from audit.services import audit_record
from monitoring.authentication import DevicePrincipal, DeviceTokenAuthentication
from monitoring.measures import MEASURES
from monitoring.models import Device, Reading, Source
from monitoring.services import DuplicateConflict, reading_ingest
from patients.models import Patient


class AwareDateTimeField(serializers.DateTimeField):
    default_error_messages = {"naive": "Include a time zone, e.g. 2026-11-22T08:30:00+01:00."}

    def enforce_timezone(self, value: datetime) -> datetime:
        if value.tzinfo is None:
            self.fail("naive")
        return super().enforce_timezone(value)


class ReadingIn(serializers.Serializer):
    measure = serializers.CharField(max_length=32, help_text=f"One of {sorted(MEASURES)} or its LOINC code.")
    value = serializers.DecimalField(max_digits=9, decimal_places=3)
    unit = serializers.CharField(max_length=16, help_text="UCUM unit, e.g. kg, %, /min, Cel.")
    effective_at = AwareDateTimeField()
    client_id = serializers.CharField(max_length=100, required=False,
                                      help_text="Your id for this reading; a retry with it is stored once.")
    patient = serializers.UUIDField(required=False, help_text="Optional check: the patient you send for.")
    device = serializers.IntegerField(required=False, help_text="Device id, when a patient sends by hand.")


class ReadingOut(serializers.ModelSerializer):
    class Meta:
        model = Reading
        fields = ["id", "patient", "device", "measure", "value", "unit", "effective_at",
                  "received_at", "client_id", "source"]


class ReadingCreateView(APIView):
    """Submit one home reading: as a device (device token) or as the patient (token or session)."""

    authentication_classes = [DeviceTokenAuthentication, BearerTokenAuthentication,
                              SessionAuthentication]

    @extend_schema(
        request=ReadingIn,
        responses={
            201: ReadingOut,
            200: OpenApiResponse(ReadingOut, description="Already stored under this client_id."),
            400: OpenApiResponse(description="Field errors; nothing was stored."),
            401: OpenApiResponse(description="Missing, wrong or revoked token."),
            403: OpenApiResponse(description="The caller is not a patient or a device."),
            404: OpenApiResponse(description="The patient or device is not the caller's."),
            409: OpenApiResponse(description="client_id was used for a different reading."),
        },
        tags=["readings"],
    )
    def post(self, request: Request) -> Response:
        data = ReadingIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        patient, device, source = self._subject(request, v.get("device"))
        if "patient" in v and v["patient"] != patient.pk:
            raise Http404("No such patient.")
        try:
            result = reading_ingest(
                patient=patient, measure=v["measure"], value=v["value"], unit=v["unit"],
                effective_at=v["effective_at"], source=source, device=device,
                client_id=v.get("client_id"),
                entered_by=None if isinstance(request.user, DevicePrincipal) else request.user,
            )
        except ValidationError as exc:
            raise ApiValidationError(exc.message_dict) from exc
        except DuplicateConflict:
            return Response({"client_id": ["This client_id was already used for another reading."]},
                            status=status.HTTP_409_CONFLICT)
        if not isinstance(request.user, DevicePrincipal):
            audit_record(user=request.user, action=Action.CREATE,
                         resource=f"Reading/{result.reading.pk}", patient_id=patient.pk, request=request)
        return Response(ReadingOut(result.reading).data,
                        status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)

    def _subject(self, request: Request, device_id: int | None) -> tuple[Patient, Device | None, Source]:
        if isinstance(request.user, DevicePrincipal):
            device = request.user.device
            if device_id is not None and device_id != device.pk:
                raise Http404("No such device.")
            return device.patient, device, Source.DEVICE
        if request.user.role != Role.PATIENT or not hasattr(request.user, "patient"):
            raise PermissionDenied("Readings are sent by patients and their devices.")
        patient = request.user.patient
        device = None
        if device_id is not None:
            device = Device.objects.filter(pk=device_id, patient=patient).first()
            if device is None:
                raise Http404("No such device.")
        return patient, device, Source.API
