"""Conditional create and the Prefer header on creates (FHIR R4 http.html#ccreate, #ops).

``If-None-Exist`` (and a Bundle entry's ``request.ifNoneExist``) carries search parameters: no
match creates, one match answers 200 with the stored resource and stores nothing, several are 412.
Supported parameters: ``identifier`` (``system|value`` or ``value``) for Observation and
QuestionnaireResponse, ``url`` and ``version`` for Questionnaire; any other is refused (400) rather
than ignored, since ignoring it would create the duplicate the client guards against.

Matching is scoped: an Observation or a response matches only within the caller's patient, so a
conditional create never tells anyone that another patient's record exists."""

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from django.db.models import Q, QuerySet
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response

from interop.mapping import operation_outcome
from monitoring.models import Reading
from patients.models import Patient
from questionnaires.models import Questionnaire, QuestionnaireResponse

SUPPORTED = {"Observation": {"identifier"}, "QuestionnaireResponse": {"identifier"},
             "Questionnaire": {"url", "version"}}


class CriteriaInvalid(exceptions.ParseError):
    """400, with the header or Bundle element it concerns as the OperationOutcome's expression."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.fhir_expression = [where]


@dataclass(frozen=True)
class Criteria:
    where: str  # what the OperationOutcome names: "If-None-Exist" or Bundle.entry[i].request.ifNoneExist
    params: dict[str, str]


def criteria(raw: str | None, resource_type: str, *, where: str = "If-None-Exist") -> Criteria | None:
    """The parsed search parameters; None when there are none. Refuses what it cannot honour."""
    if raw is None or not str(raw).strip():
        return None
    query = str(raw).strip()
    if "?" in query:  # some clients send "Observation?identifier=..."
        prefix, _, query = query.partition("?")
        if prefix.strip("/").split("/")[-1] not in ("", resource_type):
            raise CriteriaInvalid(where, f"{prefix[:40]!r} is not {resource_type}.")
    pairs = parse_qsl(query, keep_blank_values=True)
    params: dict[str, str] = {}
    for name, value in pairs:
        if name not in SUPPORTED[resource_type]:
            raise CriteriaInvalid(where, f"parameter {name[:40]!r} is not supported for {resource_type}; "
                                         f"supported: {', '.join(sorted(SUPPORTED[resource_type]))}.")
        if not value or name in params:
            raise CriteriaInvalid(where, f"{name} needs one non-empty value.")
        params[name] = value
    if not params:
        raise CriteriaInvalid(where, "no search parameters given.")
    return Criteria(where, params)


def readings_matching(patient: Patient, found: Criteria) -> list[Reading]:
    """The caller's readings with that identifier (Reading.client_id is ``system|value``)."""
    system, bar, value = found.params["identifier"].rpartition("|")
    qs: QuerySet[Reading] = Reading.objects.filter(patient=patient)
    qs = qs.filter(client_id=f"{system}|{value}") if bar else qs.filter(
        Q(client_id__endswith=f"|{value}") | Q(client_id=value))
    return list(qs.order_by("pk")[:2])


def responses_matching(patient: Patient, found: Criteria) -> list[QuestionnaireResponse]:
    """The patient's responses with that identifier value. The sender's identifier system is not
    stored (QuestionnaireResponse.identifier keeps the value), so a system given is not compared."""
    _, _, value = found.params["identifier"].rpartition("|")
    return list(QuestionnaireResponse.objects.filter(patient=patient, identifier=value)
                .select_related("questionnaire", "patient").order_by("pk")[:2])


def questionnaires_matching(found: Criteria) -> list[Questionnaire]:
    qs = Questionnaire.objects.all()
    if "url" in found.params:
        qs = qs.filter(url=found.params["url"])
    if "version" in found.params:
        qs = qs.filter(version=found.params["version"])
    return list(qs.order_by("pk")[:2])


def several(found: Criteria, resource_type: str) -> Response:
    return Response(operation_outcome(
        "error", "duplicate", f"{found.where}: more than one {resource_type} matches; nothing was created. "
                              "Make the criteria selective (identifier system|value).",
        expression=[found.where]), status=status.HTTP_412_PRECONDITION_FAILED)


def prefer_return(request: Request) -> str:
    """``return=minimal|representation|OperationOutcome`` from Prefer (representation by default)."""
    for part in request.headers.get("Prefer", "").split(","):
        for token in part.split(";"):
            name, _, value = token.strip().partition("=")
            if name.strip().lower() == "return" and value.strip().strip('"') in ("minimal", "OperationOutcome"):
                return value.strip().strip('"')
    return "representation"


def created(request: Request, resource: dict[str, Any], *, code: int, location: str,
            outcome: dict[str, Any] | None = None) -> Response:
    """A create's answer as the client preferred: the resource, nothing (but the Location), or an
    OperationOutcome (``outcome``, else an informational one)."""
    headers = {"Location": location}
    wanted = prefer_return(request)
    if wanted == "minimal":
        return Response(None, status=code, headers=headers)
    if wanted == "OperationOutcome":
        if outcome is None:
            text = "Created." if code == status.HTTP_201_CREATED else "Already stored; nothing was created."
            outcome = operation_outcome("information", "informational", f"{text} {location}")
        return Response(outcome, status=code, headers=headers)
    return Response(resource, status=code, headers=headers)
