from datetime import datetime, tzinfo
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import ISO_8601, serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import PermissionDenied
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from accounts.authentication import BearerTokenAuthentication
from accounts.models import Role, User
from monitoring.authentication import DevicePrincipal, DeviceTokenAuthentication
from monitoring.ingest import MAX_BATCH, BatchTooLarge, ItemResult, readings_ingest
from monitoring.measures import MEASURES
from monitoring.models import Device, Reading, Source
from monitoring.rows import ReadingRow
from monitoring.services import readings_audit_created
from patients.models import Patient
from proplatform.parsers import unstorable_check


class AwareDateTimeField(serializers.DateTimeField):
    default_error_messages = {"naive": "Include a time zone, e.g. 2026-11-22T08:30:00+01:00."}

    def enforce_timezone(self, value: datetime) -> datetime:
        if value.tzinfo is None:
            self.fail("naive")
        return super().enforce_timezone(value)


class ReadingIn(serializers.Serializer[Any]):
    """The shape of one reading. For the OpenAPI schema only: the endpoint parses items with the
    plain functions of ``monitoring.ingest`` (a serializer per item is too slow for batches)."""

    measure = serializers.CharField(
        max_length=32,
        help_text=f"One of {sorted(MEASURES)}, its LOINC code, or a Danish NPU code (e.g. NPU03011).")
    value = serializers.DecimalField(max_digits=9, decimal_places=3, required=False,
                                     help_text="The value; every measure but blood-pressure.")
    systolic = serializers.DecimalField(max_digits=9, decimal_places=3, required=False,
                                        help_text="blood-pressure only: systolic pressure (> diastolic).")
    diastolic = serializers.DecimalField(max_digits=9, decimal_places=3, required=False,
                                         help_text="blood-pressure only: diastolic pressure.")
    unit = serializers.CharField(
        max_length=16,
        help_text="UCUM unit, converted to the measure's canonical unit where possible: "
                  "kg ([lb_av]), % , /min, Cel ([degF]), mm[Hg] (kPa), mmol/L (mg/dL).")
    effective_at = AwareDateTimeField(help_text="ISO 8601 with a time zone; late uploads are fine, "
                                                "the future (beyond the clock-skew allowance) is not.")
    client_id = serializers.CharField(max_length=100, required=False,
                                      help_text="Your id for this reading; a retry with it is stored once.")
    patient = serializers.UUIDField(required=False, help_text="Optional check: the patient you send for.")
    device = serializers.IntegerField(required=False, help_text="Device id, when a patient sends by hand.")


class ReadingBatchIn(serializers.Serializer[Any]):
    readings = ReadingIn(many=True, help_text=f"1 to {MAX_BATCH} readings. A bare JSON list works too.")


class ReadingOut(serializers.ModelSerializer[Reading]):
    class Meta:
        model = Reading
        fields = ["id", "patient", "device", "measure", "value", "value2", "unit", "effective_at",
                  "received_at", "client_id", "source", "unusual"]


# One instance answers every single-reading request: a ModelSerializer works out its fields from
# the model once per instance (~1 ms, a tenth of the request), and to_representation keeps no
# state between calls.
_READING_OUT = ReadingOut()


def reading_json(reading: Reading | ReadingRow) -> bytes:
    """One reading as the endpoint answers it (``ReadingOut`` written by DRF's JSONRenderer),
    byte for byte, at a fifth of their cost: the device fast path's 201 (ADR 0016). The
    serializer's own fields format the decimals; the times are converted to the current time
    zone (looked up once, not per field) and written as the serializer's DateTimeField writes
    them; orjson writes the rest, with U+2028 and U+2029 escaped as the renderer escapes them.
    tests/test_reading_json.py holds the two equal for every kind of value a reading has."""
    fields = _READING_OUT.fields
    value2 = reading.value2
    zone = timezone.get_current_timezone()
    return orjson.dumps({
        "id": reading.pk,
        "patient": reading.patient_id,
        "device": reading.device_id,
        "measure": reading.measure,
        "value": fields["value"].to_representation(reading.value),
        "value2": None if value2 is None else fields["value2"].to_representation(value2),
        "unit": reading.unit,
        "effective_at": _datetime_json(reading.effective_at, zone, fields["effective_at"]),
        "received_at": _datetime_json(reading.received_at, zone, fields["received_at"]),
        "client_id": reading.client_id,
        "source": reading.source,
        "unusual": reading.unusual,
    }).replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")


def _datetime_json(value: datetime | None, zone: tzinfo, field: serializers.Field[Any, Any, Any, Any]) -> str | None:
    """What ``field.to_representation`` writes for an aware time, given the current time zone
    ``zone``: ISO 8601 in that zone, UTC as Z. Anything else is left to the field."""
    output_format = getattr(field, "format", api_settings.DATETIME_FORMAT)
    if (value is None or value.tzinfo is None or hasattr(field, "timezone") or not settings.USE_TZ
            or not isinstance(output_format, str) or output_format.lower() != ISO_8601):
        shown: str | None = field.to_representation(value)
        return shown
    try:
        text = value.astimezone(zone).isoformat()
    except OverflowError:
        said: str = field.to_representation(value)  # which says so
        return said
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class ItemResultOut(serializers.Serializer[Any]):
    index = serializers.IntegerField(help_text="Position of the item in the batch, from 0.")
    status = serializers.IntegerField(help_text="201 stored, 200 already stored (retry), 400 field "
                                                "errors, 404 not your patient/device, 409 client_id reused.")
    id = serializers.IntegerField(required=False, help_text="The reading's id (201 and 200).")
    unusual = serializers.BooleanField(required=False, help_text="Possible but unusual: stored, flagged.")
    # The stubs type Serializer.errors (validation errors) on every serializer; in this output
    # serializer the field of that name is an item's field -> messages.
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()),  # type: ignore[assignment]  # above
                                   required=False, help_text="Field -> messages (400, 404, 409).")


class BatchOut(serializers.Serializer[Any]):
    results = ItemResultOut(many=True)


_REQUEST = PolymorphicProxySerializer(
    component_name="ReadingOrBatch",
    serializers=[ReadingIn, ReadingBatchIn],
    resource_type_field_name=None,
)


class ReadingCreateView(APIView):
    """Submit home readings: as a device (device token) or as the patient (token or session).

    One reading (a JSON object) is answered as before: 201 with the reading, 200 for a retry,
    400/404/409. A batch (a JSON list, or {"readings": [...]}) of up to 1,000 stores the good
    items and answers {"results": [...]} per index: HTTP 200 if any item was stored (or was
    already), 400 if none; more than 1,000 items is a 400 and nothing is stored."""

    authentication_classes = [DeviceTokenAuthentication, BearerTokenAuthentication,
                              SessionAuthentication]

    @extend_schema(
        request=_REQUEST,
        responses={
            201: ReadingOut,
            200: OpenApiResponse(
                PolymorphicProxySerializer(component_name="ReadingOrBatchResult",
                                           serializers=[ReadingOut, BatchOut],
                                           resource_type_field_name=None),
                description="One reading: already stored under this client_id. A batch: per-item "
                            "results; at least one item was stored."),
            400: OpenApiResponse(description="Field errors, or a batch with no item stored (per-item "
                                             "results), or over 1,000 items; nothing was stored."),
            401: OpenApiResponse(description="Missing, wrong or revoked token."),
            403: OpenApiResponse(description="The caller is not a patient or a device."),
            404: OpenApiResponse(description="The patient or device is not the caller's."),
            409: OpenApiResponse(description="client_id was used for a different reading."),
        },
        tags=["readings"],
    )
    def post(self, request: Request) -> Response | HttpResponse:
        patient, device, source = self._subject(request)
        data = self._body(request)
        if isinstance(data, dict) and "readings" in data:
            data = data["readings"]
            if not isinstance(data, list):
                raise ApiValidationError({"readings": ["Give a list of readings."]})
        single = not isinstance(data, list)
        if not single and not data:
            raise ApiValidationError({"readings": ["Give at least one reading."]})
        # A person enters readings; a device (DevicePrincipal) is no User and is not audited.
        entered_by = request.user if isinstance(request.user, User) else None
        try:
            results = readings_ingest(patient=patient, items=[data] if single else data,
                                      source=source, device=device, entered_by=entered_by)
        except BatchTooLarge as exc:
            raise ApiValidationError({"readings": [
                f"At most {MAX_BATCH:,} readings per request; this one has {exc.size:,}. "
                "Nothing was stored."]}) from exc
        if entered_by is not None:
            readings_audit_created(user=request.user, patient=patient, results=results, request=request)
        if single:
            return self._single(results[0])
        stored = any(r.id is not None for r in results)
        # Plain values only (ids, flags, messages), so orjson writes the answer directly: the
        # renderer's json.dumps was a visible share of a 1,000-item request.
        return HttpResponse(orjson.dumps({"results": [r.as_json() for r in results]}),
                            content_type="application/json",
                            status=status.HTTP_200_OK if stored else status.HTTP_400_BAD_REQUEST)

    @staticmethod
    def _body(request: Request) -> Any:
        """The decoded JSON body. orjson decodes a 1,000-reading body several times faster than
        the JSONParser (the standard library's json). Whatever orjson refuses (malformed JSON,
        another charset or content type, integers beyond 64 bits) goes to DRF's parsing, so
        errors and edge cases are answered exactly as before."""
        if request.content_type == "application/json" and (request.content_params or {}).get(
                "charset", "utf-8").lower() in ("utf-8", "utf8"):
            try:
                data = orjson.loads(request.body)
            except (orjson.JSONDecodeError, RequestDataTooBig):
                pass  # the body is not read yet when it is too big: DRF reads it as before
            else:
                unstorable_check(data, request.body)  # as the JSON parser would (a byte scan)
                return data
        return request.data

    def _single(self, result: ItemResult) -> Response:
        if result.status == 404:  # field-level, as in a batch: {"device": ["No such device."]}
            return Response(result.errors, status=status.HTTP_404_NOT_FOUND)
        if result.status == 409:
            return Response(result.errors, status=status.HTTP_409_CONFLICT)
        if result.status == 400:
            raise ApiValidationError(result.errors)
        reading = result.reading
        assert reading is not None  # a 200 or 201 carries the stored reading
        return Response(_READING_OUT.to_representation(reading), status=result.status)

    def _subject(self, request: Request) -> tuple[Patient, Device | None, Source]:
        user = request.user
        if isinstance(user, DevicePrincipal):
            device = user.device
            return device.patient, device, Source.DEVICE
        if not isinstance(user, User) or user.role != Role.PATIENT or not hasattr(user, "patient"):
            raise PermissionDenied("Readings are sent by patients and their devices.")
        return user.patient, None, Source.API
