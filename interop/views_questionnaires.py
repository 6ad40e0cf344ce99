"""FHIR Questionnaire and QuestionnaireResponse endpoints."""

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Role, User
from audit.models import Action
from interop import conditional
from interop.mapping import (
    operation_outcome,
    questionnaire_to_fhir,
    response_to_fhir,
)
from interop.validate import structure_issues, structure_outcome
from interop.views import FhirInvalid, FhirView
from patients.access import patient_or_404
from patients.models import Patient
from proplatform.parsers import JSONParser
from questionnaires.definition import Issue
from questionnaires.models import Questionnaire, QuestionnaireResponse
from questionnaires.services import QuestionnaireImportError, questionnaire_import_checked
from questionnaires.validation import ResponseError
from smart.principal import principal

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
        from interop.search_resources import parse_request, questionnaire_search

        return Response(questionnaire_search(request, parse_request(request, "Questionnaire"), _base(request)))

    @extend_schema(request=OpenApiTypes.OBJECT, responses={201: _FHIR, 400: _OUTCOME, 403: _OUTCOME},
                   parameters=[OpenApiParameter(
                       "Prefer", str, location=OpenApiParameter.HEADER,
                       description="handling=strict refuses warnings too; return=OperationOutcome answers "
                                   "201 with the import's warnings instead of the resource")],
                   tags=["fhir"])
    def post(self, request: Request) -> Response:
        """Import a Questionnaire (administrators). Errors refuse it, naming each linkId; features
        rendered in a simpler way are warnings (ADR 0004)."""
        from questionnaires.services import questionnaire_review

        # A system client (smart) is let through by authentication too; it has role "system".
        if principal(request).role != Role.ADMIN:
            raise exceptions.PermissionDenied("Only administrators add questionnaires.")
        if not isinstance(request.data, dict) or request.data.get("resourceType") != "Questionnaire":
            raise FhirInvalid("Questionnaire", "The body must be a FHIR Questionnaire resource.")
        if issues := structure_issues(request.data):
            return Response(structure_outcome(issues), status=status.HTTP_400_BAD_REQUEST)
        prefer = request.headers.get("Prefer", "")
        criteria = conditional.criteria(request.headers.get("If-None-Exist"), "Questionnaire")
        if criteria is not None:
            matches = conditional.questionnaires_matching(criteria)
            if len(matches) > 1:
                return conditional.several(criteria, "Questionnaire")
            if matches:
                return conditional.created(request, questionnaire_to_fhir(matches[0]), code=status.HTTP_200_OK,
                                           location=f"{_base(request)}/Questionnaire/{matches[0].pk}")
        try:
            questionnaire, new = questionnaire_import_checked(resource=request.data,
                                                              strict="handling=strict" in prefer)
        except QuestionnaireImportError as exc:  # refused by the review: the issues name the linkIds
            return Response(_issues_outcome(exc.issues), status=status.HTTP_400_BAD_REQUEST)
        except ValidationError as exc:
            return Response(validation_outcome(exc), status=status.HTTP_400_BAD_REQUEST)
        # The same url, version and content again is the stored version: 200, no new row.
        code = status.HTTP_201_CREATED if new else status.HTTP_200_OK
        outcome = None
        if conditional.prefer_return(request) == "OperationOutcome":
            outcome = _issues_outcome(questionnaire_review(resource=questionnaire.resource))
            if not outcome["issue"]:
                outcome["issue"] = [{"severity": "information", "code": "informational",
                                     "diagnostics": "Imported with no warnings." if new else
                                     "This version is already stored, with the same content."}]
        return conditional.created(request, questionnaire_to_fhir(questionnaire), code=code, outcome=outcome,
                                   location=f"{_base(request)}/Questionnaire/{questionnaire.pk}")


def _issues_outcome(issues: list[Issue]) -> dict[str, Any]:
    """Import issues (questionnaires.definition.Issue) as OperationOutcome issues naming the linkId."""
    return {"resourceType": "OperationOutcome", "issue": [
        {"severity": issue.severity, "code": "invalid" if issue.severity == "error" else "business-rule",
         "diagnostics": str(issue),
         **({"expression": [f"Questionnaire.item.where(linkId='{issue.link_id}')"]} if issue.link_id else {})}
        for issue in issues]}


class QuestionnaireReadView(FhirView):
    @extend_schema(responses={200: _FHIR, 404: _OUTCOME}, tags=["fhir"])
    def get(self, request: Request, questionnaire_id: str) -> Response:
        questionnaire = (Questionnaire.objects.filter(pk=int(questionnaire_id)).first()
                         if questionnaire_id.isdigit() else None)
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
        from interop.search_resources import parse_request, questionnaire_response_search

        search = parse_request(request, "QuestionnaireResponse")
        return Response(questionnaire_response_search(request, search, _base(request)))


# A questionnaire response is a few kilobytes; anything near this is a mistake or an attack.
MAX_RESPONSE_BYTES = 512 * 1024


def _response_outcome(errors: list[ResponseError]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "invalid", "diagnostics": str(e.message),
         **({"expression": [f"QuestionnaireResponse.item.where(linkId='{e.link_id}')"]} if e.link_id else {})}
        for e in errors]}


class QuestionnaireResponseCollectionView(QuestionnaireResponseSearchView):
    @extend_schema(request=OpenApiTypes.OBJECT,
                   responses={201: _FHIR, 200: OpenApiResponse(OpenApiTypes.OBJECT,
                                                               description="Already stored under this identifier"),
                              400: _OUTCOME, 403: _OUTCOME, 404: _OUTCOME, 413: _OUTCOME},
                   tags=["fhir"])
    def post(self, request: Request) -> Response:
        """Submit a completed response as the patient, or as a relative the patient has allowed.

        Validated against the questionnaire version it names; errors name the linkId. A
        resubmission with the same identifier stores one response. ``authored`` (with time and
        zone) is the answer's own time, by which rules and schedules judge it — a late upload
        completes the occurrence it answered; it is refused in the future beyond the clock-skew
        allowance and before the patient's enrolment. Without it, the time of receipt."""
        from questionnaires.services import AuthoredInvalid, ResponseConflict, ResponseInvalid, response_submit

        if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_RESPONSE_BYTES:
            return Response(operation_outcome("error", "too-costly", "The response is too large."),
                            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        data = request.data
        if not isinstance(data, dict) or data.get("resourceType") != "QuestionnaireResponse":
            raise FhirInvalid("QuestionnaireResponse", "The body must be a FHIR QuestionnaireResponse resource.")
        if issues := structure_issues(data):  # before anything is looked up or stored (ADR 0001)
            return Response(structure_outcome(issues), status=status.HTTP_400_BAD_REQUEST)
        author = principal(request)
        if not isinstance(author, User) or author.role not in {Role.PATIENT, Role.RELATIVE}:
            # A system client (smart) is no person: it answers no questionnaire.
            raise exceptions.PermissionDenied("Responses are submitted by patients or their relatives.")
        if data.get("status") != "completed":
            raise FhirInvalid("QuestionnaireResponse.status",
                              "Only completed responses are accepted (status 'completed').")
        subject = (data.get("subject") or {}).get("reference", "")
        if not subject.startswith("Patient/"):
            raise FhirInvalid("QuestionnaireResponse.subject", "subject must reference the Patient, e.g. Patient/<id>.")
        patient = patient_or_404(request, subject.removeprefix("Patient/"), action=Action.CREATE,
                                 resource="QuestionnaireResponse (FHIR)", purpose="answer")
        questionnaire = _assigned_questionnaire(patient, str(data.get("questionnaire") or ""))
        criteria = conditional.criteria(request.headers.get("If-None-Exist"), "QuestionnaireResponse")
        if criteria is not None:  # conditional create, within this patient's responses
            matches = conditional.responses_matching(patient, criteria)
            if len(matches) > 1:
                return conditional.several(criteria, "QuestionnaireResponse")
            if matches:
                return conditional.created(request, response_to_fhir(matches[0]), code=status.HTTP_200_OK,
                                           location=f"{_base(request)}/QuestionnaireResponse/{matches[0].pk}")
        identifier = (data.get("identifier") or {}).get("value") if isinstance(data.get("identifier"), dict) else None
        existing = (QuestionnaireResponse.objects.filter(patient=patient, identifier=identifier).first()
                    if isinstance(identifier, str) else None)
        try:
            authored_at = _authored(data.get("authored"))
        except ValueError as exc:
            return Response(_authored_outcome(str(exc)), status=status.HTTP_400_BAD_REQUEST)
        try:
            response = response_submit(patient=patient, questionnaire=questionnaire, items=data.get("item") or [],
                                       author=author, identifier=identifier, refuse_disabled=True,
                                       authored_at=authored_at)
        except AuthoredInvalid as exc:
            return Response(_authored_outcome(exc.errors[0].message), status=status.HTTP_400_BAD_REQUEST)
        except ResponseInvalid as exc:
            return Response(_response_outcome(exc.errors), status=status.HTTP_400_BAD_REQUEST)
        except ResponseConflict as exc:
            return Response(operation_outcome("error", "conflict", " ".join(exc.messages)),
                            status=status.HTTP_409_CONFLICT)
        except ValidationError as exc:
            return Response(validation_outcome(exc), status=status.HTTP_400_BAD_REQUEST)
        return conditional.created(
            request, response_to_fhir(response),
            code=status.HTTP_200_OK if existing is not None else status.HTTP_201_CREATED,
            location=f"{_base(request)}/QuestionnaireResponse/{response.pk}")


def _authored(raw: object) -> datetime | None:
    """``QuestionnaireResponse.authored`` as an aware datetime; None when absent (FHIR makes it
    optional: the answer's time is then the receipt). A date without a time, or a time without a
    zone, names no instant and is refused (ValueError) rather than guessed at: the rules pair
    the answer with readings by this time."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ValueError(_("authored must be a FHIR dateTime string, e.g. 2026-03-01T09:30:00+01:00."))
    try:
        parsed = parse_datetime(raw)
    except ValueError:  # well-formed but no instant: 2026-02-30, 24:00, a leap second
        parsed = None
    if parsed is None:
        raise ValueError(_("authored (%(value)s) is not a valid date and time.") % {"value": raw[:40]})
    if parsed.tzinfo is None:
        raise ValueError(_("authored must include a time zone, e.g. 2026-03-01T09:30:00+01:00."))
    return parsed


def _authored_outcome(message: str) -> dict[str, Any]:
    return operation_outcome("error", "invalid", message, expression=["QuestionnaireResponse.authored"])


def _assigned_questionnaire(patient: Patient, canonical: str) -> Questionnaire:
    """The version the response names, if its questionnaire belongs to one of the patient's
    programmes. Without "|version", the newest version."""
    url, _, version = canonical.partition("|")
    if not url:
        raise FhirInvalid("QuestionnaireResponse.questionnaire",
                          "questionnaire must give the canonical url (url|version).")
    assigned = Questionnaire.objects.filter(url=url, programs__episodes__patient=patient)
    if not assigned.exists():
        raise exceptions.NotFound("That questionnaire is not one of this patient's.")
    found = Questionnaire.objects.filter(url=url)
    # Without a version: the newest one that is not retired.
    questionnaire = (found.filter(version=version) if version
                     else found.exclude(status="retired").order_by("-created_at")).first()
    if questionnaire is None:
        raise exceptions.NotFound(f"Version {version} of that questionnaire does not exist.")
    return questionnaire
