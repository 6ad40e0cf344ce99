import logging
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpRequest
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.parsers import FormParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder
from rest_framework.views import APIView

from audit.models import Action, Outcome
from audit.services import audit_record
from interop.mapping import CPR_SYSTEM, capability_statement, operation_outcome, patient_to_fhir
from patients.access import can_see_identifiers, patient_or_404
from proplatform.input import storable, storable_text
from proplatform.middleware import current_request_id
from proplatform.parsers import UnstorableText
from smart.principal import principal

logger = logging.getLogger("django.request")

# FHIR issue-type codes for the HTTP errors DRF raises
_ISSUE_CODES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found",
                405: "not-supported", 406: "not-supported", 415: "not-supported", 429: "throttled"}


def role_authorise(request: Request, *, allowed: tuple[str, ...], resource: str, refusal: str) -> None:
    """Refuse (403 OperationOutcome, audited as denied) a caller whose role is not ``allowed``:
    the aggregate resources (Group, Measure) that no patient-scoped check covers."""
    if principal(request).role not in allowed:
        audit_record(user=request.user, action=Action.READ, resource=resource, outcome=Outcome.DENIED,
                     request=request)
        raise exceptions.PermissionDenied(refusal)


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


class FhirInvalid(exceptions.ParseError):
    """400 naming the element at fault: the OperationOutcome's ``expression`` (FHIRPath)."""

    def __init__(self, expression: str, message: str) -> None:
        super().__init__(message)
        self.fhir_expression = [expression]


_drf_encoder = JSONEncoder()


class FhirJSONRenderer(JSONRenderer):
    """fhir+json through orjson: a searchset page of 100 Observations took ~4 ms in the standard
    library's encoder, under 0.5 ms here (bench/fhir_search.py). Types orjson does not know
    (Decimal, lazy strings) go through DRF's encoder, as before."""

    media_type = "application/fhir+json"
    format = "fhir"

    def render(self, data: Any, accepted_media_type: str | None = None,
               renderer_context: Mapping[str, Any] | None = None) -> bytes:
        if data is None:
            return b""
        return orjson.dumps(data, default=_drf_encoder.default)


# ``_format`` values that mean JSON (FHIR R4 http.html#mime-type); anything else (xml, ttl) is 406.
JSON_FORMATS = {"json", "application/json", "application/fhir+json", "fhir+json"}


class FhirView(APIView):
    """Base for FHIR endpoints: fhir+json, and every error as an OperationOutcome."""

    renderer_classes = [FhirJSONRenderer, JSONRenderer]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # Text the database cannot hold (NUL, half a surrogate pair) in a search parameter or an
        # id would fail the query, or the audit row that records the look-up: refused first.
        # (URL converters have made some kwargs UUIDs or ints already.)
        for name, value in [*request.query_params.lists(), *((k, [v]) for k, v in kwargs.items())]:
            if not storable(name) or not all(storable(v) for v in value if isinstance(v, str)):
                raise _UnstorableParameter(storable_text(name))
        # FHIR's _format overrides Accept. We speak JSON only: XML asked for is refused (406),
        # not answered with JSON the client cannot read. An Accept of XML alone is refused by
        # DRF's content negotiation, also as 406.
        wanted = request.query_params.get("_format")
        if wanted is not None and wanted.split(";")[0].strip().lower() not in JSON_FORMATS:
            raise exceptions.NotAcceptable(f"_format {wanted[:60]!r} is not supported: this server speaks "
                                           "FHIR JSON only (json, application/fhir+json).")
        super().initial(request, *args, **kwargs)

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, RequestDataTooBig):  # Django's limit, DATA_UPLOAD_MAX_MEMORY_SIZE
            return Response(operation_outcome("error", "too-costly", "The body is larger than this server accepts "
                                              f"({settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes)."), status=413)
        if not isinstance(exc, exceptions.APIException | Http404 | PermissionDenied):
            # A defect, not the caller's fault: logged with its traceback as Django would, and
            # answered as FHIR clients expect, not with an HTML page. Any atomic block it left
            # has rolled back on the way here: nothing is half-stored.
            logger.error("FHIR request failed: %s %s", self.request.method, self.request.path,
                         exc_info=exc, extra={"status_code": 500, "request": self.request})
            return Response(operation_outcome("fatal", "exception", "The server failed to process the request. "
                                              f"It is logged as request {current_request_id()}."), status=500)
        response = super().handle_exception(exc)
        detail = getattr(exc, "detail", None) or str(exc)
        response.data = operation_outcome(
            "error", _ISSUE_CODES.get(response.status_code, "processing"), str(detail),
            expression=getattr(exc, "fhir_expression", None),  # the element or header at fault, if known
        )
        if isinstance(exc, UnstorableText):
            response.data["issue"][0]["expression"] = [".".join(filter(None, (exc.resource_type, exc.path)))]
        elif isinstance(exc, _UnstorableParameter):
            response.data["issue"][0]["expression"] = [exc.name]
        return response


class _UnstorableParameter(exceptions.ParseError):
    def __init__(self, name: str) -> None:
        super().__init__(f"The parameter {name} contains the NUL character or half a character (a lone "
                         "surrogate).")
        self.name = name


_OUTCOME = OpenApiResponse(OpenApiTypes.OBJECT, description="FHIR OperationOutcome")


class MetadataView(FhirView):
    permission_classes = [AllowAny]  # the capability statement is public by the FHIR spec

    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="FHIR R4 CapabilityStatement")},
                   tags=["fhir"])
    def get(self, request: Request) -> Response:
        return Response(capability_statement(request.build_absolute_uri("/fhir")))


class PatientReadView(FhirView):
    @extend_schema(
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="FHIR R4 Patient"),
                   401: _OUTCOME, 403: _OUTCOME, 404: _OUTCOME},
        tags=["fhir"],
    )
    def get(self, request: Request, patient_id: str) -> Response:
        if not can_see_identifiers(request.user):
            # A refused attempt on a patient's record belongs in the trail as much as a read.
            audit_record(user=request.user, action=Action.READ, resource=f"Patient/{patient_id} (FHIR)",
                         outcome=Outcome.DENIED, patient_id=_uuid_or_none(patient_id), request=request)
            raise exceptions.PermissionDenied("Quality staff read pseudonymised exports, not patients.")
        patient = patient_or_404(request, patient_id, resource=f"Patient/{patient_id} (FHIR)")
        return Response(patient_to_fhir(patient, identified=True))

    def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Response:
        raise exceptions.MethodNotAllowed(request.method or "")


class FhirFallbackView(FhirView):
    """The last route under /fhir: whatever no other route matched is answered as FHIR, never
    with Django's HTML page. A resource type this server serves with an interaction it does not
    offer (``_history``, ``$everything``, a compartment) is 405; anything else (an unknown type,
    a path that names nothing) is 404. The CapabilityStatement says what exists."""

    permission_classes = [AllowAny]  # it reveals nothing; a 401 would suggest something is here
    authentication_classes: list[Any] = []

    def _answer(self, request: Request, rest: str = "") -> Response:
        served = {r["type"] for r in capability_statement("")["rest"][0]["resource"]}
        first = rest.split("/", 1)[0]
        # Bulk Data's own operations exist; reaching here, their path named no job (an id that is
        # not one): a 404, as for an unknown id of a served type.
        if first not in ("$export", "$export-status", "$export-file") and (
                first in served or first in ("_history", "$everything") or first.startswith("$")):
            raise exceptions.MethodNotAllowed(
                request.method or "", detail=f"{request.method} /fhir/{rest[:100]} is not an interaction this "
                                             "server supports; GET /fhir/metadata lists those that exist.")
        raise exceptions.NotFound(f"/fhir/{rest[:100]} names no resource type or resource served here; "
                                  "GET /fhir/metadata lists them.")

    get = post = put = patch = delete = head = extend_schema(exclude=True)(_answer)

    @property
    def allowed_methods(self) -> list[str]:
        # The Allow header of a 405: nothing is offered at a path no route serves (RFC 9110
        # allows an empty Allow), not the methods this catch-all happens to answer.
        return []


class PatientSearchView(FhirView):
    """GET /fhir/Patient; POST /fhir/Patient/_search (PatientSearchPostView) takes the same
    parameters in a form body, the FHIR way to keep the CPR number out of the URL.
    interop.search_resources.patient_search decides and audits."""

    @extend_schema(
        parameters=[OpenApiParameter("identifier", str, description=f"{CPR_SYSTEM}|<CPR> (prefer POST _search)"),
                    OpenApiParameter("name", str), OpenApiParameter("family", str), OpenApiParameter("given", str),
                    OpenApiParameter("birthdate", str), OpenApiParameter("_id", str)],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="searchset Bundle"),
                   400: _OUTCOME, 401: _OUTCOME, 403: _OUTCOME},
        tags=["fhir"], operation_id="fhir_Patient_search",
    )
    def get(self, request: Request) -> Response:
        from interop.search_resources import parse_request, patient_search

        search = parse_request(request, "Patient", hidden=frozenset({"identifier"}))
        return Response(patient_search(request, search, request.build_absolute_uri("/fhir").rstrip("/")))


class PatientSearchPostView(FhirView):
    """POST /fhir/Patient/_search: the same search with its parameters in a form body."""

    parser_classes = [FormParser]

    @extend_schema(request={"application/x-www-form-urlencoded": OpenApiTypes.OBJECT},
                   responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="searchset Bundle"),
                              400: _OUTCOME, 401: _OUTCOME, 403: _OUTCOME},
                   tags=["fhir"], operation_id="fhir_Patient_search_post")
    def post(self, request: Request) -> Response:
        # The same search as GET, answered by its code (this view is no PatientSearchView, so that
        # it does not answer GET itself).
        return PatientSearchView.get(self, request)  # type: ignore[arg-type]
