"""FHIR Questionnaire and QuestionnaireResponse endpoints."""

from django.core.exceptions import ValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Role
from audit.models import Action
from interop.mapping import operation_outcome, questionnaire_to_fhir, response_to_fhir, searchset
from interop.views import FhirView
from patients.access import patient_or_404
from questionnaires.models import Questionnaire, QuestionnaireResponse
from questionnaires.services import questionnaire_import

_FHIR = OpenApiResponse(OpenApiTypes.OBJECT, description="FHIR R4 resource")
_OUTCOME = OpenApiResponse(OpenApiTypes.OBJECT, description="FHIR OperationOutcome")


class FhirJSONParser(JSONParser):
    media_type = "application/fhir+json"


def _base(request: Request) -> str:
    return request.build_absolute_uri("/fhir").rstrip("/")


def validation_outcome(exc: ValidationError) -> dict:
    """Every message as its own issue, so a client sees all problems at once."""
    outcome = operation_outcome("error", "invalid", exc.messages[0])
    outcome["issue"] = [{"severity": "error", "code": "invalid", "diagnostics": m} for m in exc.messages]
    return outcome


class QuestionnaireCollectionView(FhirView):
    parser_classes = [FhirJSONParser, JSONParser]

    @extend_schema(
        parameters=[OpenApiParameter("url", str, description="canonical url"),
                    OpenApiParameter("version", str)],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="searchset Bundle")},
        tags=["fhir"], operation_id="fhir_Questionnaire_search",
    )
    def get(self, request: Request) -> Response:
        """Questionnaire definitions are not patient data: every signed-in user may read them."""
        found = Questionnaire.objects.order_by("url", "-created_at")
        if url := request.query_params.get("url"):
            found = found.filter(url=url)
        if version := request.query_params.get("version"):
            found = found.filter(version=version)
        return Response(searchset(_base(request), [questionnaire_to_fhir(q) for q in found[:200]]))

    @extend_schema(request=OpenApiTypes.OBJECT, responses={201: _FHIR, 400: _OUTCOME, 403: _OUTCOME},
                   tags=["fhir"])
    def post(self, request: Request) -> Response:
        """Import a Questionnaire (administrators). Unsupported features are refused by linkId."""
        if request.user.role != Role.ADMIN:
            raise exceptions.PermissionDenied("Only administrators add questionnaires.")
        if not isinstance(request.data, dict) or request.data.get("resourceType") != "Questionnaire":
            raise exceptions.ParseError("The body must be a FHIR Questionnaire resource.")
        try:
            questionnaire = questionnaire_import(resource=request.data)
        except ValidationError as exc:
            return Response(validation_outcome(exc), status=status.HTTP_400_BAD_REQUEST)
        body = questionnaire_to_fhir(questionnaire)
        return Response(body, status=status.HTTP_201_CREATED,
                        headers={"Location": f"{_base(request)}/Questionnaire/{questionnaire.pk}"})


class QuestionnaireReadView(FhirView):
    @extend_schema(responses={200: _FHIR, 404: _OUTCOME}, tags=["fhir"])
    def get(self, request: Request, questionnaire_id: str) -> Response:
        questionnaire = Questionnaire.objects.filter(pk=int(questionnaire_id) if questionnaire_id.isdigit()
                                                     else None).first()
        if questionnaire is None:
            raise exceptions.NotFound("No such Questionnaire.")
        return Response(questionnaire_to_fhir(questionnaire))


class QuestionnaireResponseSearchView(FhirView):
    parser_classes = [FhirJSONParser, JSONParser]

    @extend_schema(
        parameters=[OpenApiParameter("patient", str, required=True, description="Patient id")],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="searchset Bundle"),
                   400: _OUTCOME, 404: _OUTCOME},
        tags=["fhir"], operation_id="fhir_QuestionnaireResponse_search",
    )
    def get(self, request: Request) -> Response:
        """A patient's responses, for those who may see the patient (audited as a search)."""
        patient_id = request.query_params.get("patient", "").removeprefix("Patient/")
        if not patient_id:
            raise exceptions.ParseError("Search by patient: ?patient=<id>.")
        patient = patient_or_404(request, patient_id, action=Action.SEARCH,
                                 resource=f"QuestionnaireResponse?patient={patient_id}")
        responses = (QuestionnaireResponse.objects.filter(patient=patient, status="completed")
                     .select_related("questionnaire", "patient").order_by("-authored_at")[:500])
        return Response(searchset(_base(request), [response_to_fhir(r) for r in responses]))

