"""FHIR Bulk Data Access v2: kick-off, status, files (ADR 0007). Views parse, authorise through
exports.selectors (built on patients.access), call one service and answer in FHIR."""

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.http import FileResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.http import http_date
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from audit.models import Action, Outcome
from audit.services import audit_record
from exports.models import ExportJob, ExportKind, ExportStatus
from exports.privacy import PseudonymKeyMissing
from exports.selectors import ExportError
from exports.services import (
    export_file_record_download,
    export_job_cancel,
    export_job_create,
    export_parameters,
    job_dir,
)
from interop.mapping import operation_outcome
from interop.views import FhirView
from interop.views_questionnaires import FhirJSONParser
from proplatform.parsers import JSONParser
from smart.principal import SystemPrincipal, principal

_KNOWN = {"_type", "_since", "_outputFormat", "identified", "purpose", "dateShift"}
_OUTCOME = OpenApiResponse(OpenApiTypes.OBJECT, description="FHIR OperationOutcome")


def _error(status: int, code: str, message: str) -> Response:
    return Response(operation_outcome("error", code, message), status=status)


def _bool(name: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if str(raw).lower() in {"true", "1"}:
        return True
    if str(raw).lower() in {"false", "0", ""}:
        return False
    raise ExportError(400, "invalid", f"{name} is true or false.")


# value[x] each kick-off parameter may carry in a Parameters body: the Bulk Data IG's types
# (_since an instant, the others strings), plus strings for our booleans as in a query string.
_VALUE_TYPES: dict[str, tuple[str, ...]] = {
    "_type": ("valueString",), "_since": ("valueInstant", "valueString"), "_outputFormat": ("valueString",),
    "purpose": ("valueString",), "identified": ("valueBoolean", "valueString"),
    "dateShift": ("valueBoolean", "valueString"),
}


def _invalid(message: str) -> ExportError:
    return ExportError(400, "invalid", message)


def _body_parameters(body: Any) -> list[tuple[str, Any]]:
    """The (name, value) pairs of a FHIR Parameters body, checked at the boundary: whatever a
    client sends, a malformed body is a 400 that says what is wrong, never a 500."""
    if not isinstance(body, dict):
        raise _invalid(f"POST $export takes a FHIR Parameters resource (a JSON object); got a JSON "
                       f"{type(body).__name__ if body is not None else 'null'}.")
    if body.get("resourceType") != "Parameters":
        raise _invalid(f"POST $export takes a FHIR Parameters resource; resourceType is "
                       f"{body.get('resourceType')!r}.")
    parameters = body.get("parameter", [])
    if not isinstance(parameters, list):
        raise _invalid("Parameters.parameter must be a list of parameters.")
    pairs = []
    for index, parameter in enumerate(parameters):
        where = f"Parameters.parameter[{index}]"
        if not isinstance(parameter, dict):
            raise _invalid(f"{where} must be an object with a name and one value[x].")
        name = parameter.get("name")
        if not isinstance(name, str) or not name:
            raise _invalid(f"{where}.name must be a non-empty string.")
        values = {k: v for k, v in parameter.items() if k.startswith("value")}
        if len(values) != 1:
            raise _invalid(f"{where} ({name}) must have exactly one value[x].")
        (key, value), = values.items()
        allowed = _VALUE_TYPES.get(name)
        if allowed is not None:  # unknown names are refused by _parse as not-supported
            if key not in allowed:
                raise _invalid(f"{where} ({name}) takes {' or '.join(allowed)}, not {key}.")
            if not isinstance(value, bool if key == "valueBoolean" else str):
                raise _invalid(f"{where}.{key} ({name}) must be a JSON "
                               f"{'boolean' if key == 'valueBoolean' else 'string'}.")
        pairs.append((name, value))
    return pairs


def _raw_parameters(request: Request) -> dict[str, list[Any]]:
    """Query parameters (GET, or POST with a query) and, for POST, a FHIR Parameters body."""
    raw: dict[str, list[Any]] = {k: request.query_params.getlist(k) for k in request.query_params}
    if request.method == "POST" and request.body:
        for name, value in _body_parameters(request.data):
            raw.setdefault(name, []).append(value)
    return raw


def _parse(raw: dict[str, list[Any]]) -> dict[str, Any]:
    unknown = sorted(set(raw) - _KNOWN)
    if unknown:
        raise ExportError(400, "not-supported", f"Unsupported $export parameter(s): {', '.join(unknown)}.")
    types = [t.strip() for value in raw.get("_type", []) for t in str(value).split(",") if t.strip()]
    since = None
    if raw.get("_since"):
        text = str(raw["_since"][-1])
        try:
            since = parse_datetime(text)
        except ValueError:
            since = None
        if since is None or since.tzinfo is None:
            raise ExportError(400, "invalid", f"_since must be a FHIR instant with a time zone, e.g. "
                                              f"2026-01-01T00:00:00Z; got {text!r}.")
        if since > timezone.now():
            raise ExportError(400, "invalid", "_since lies in the future.")
    output_format = str(raw["_outputFormat"][-1]) if raw.get("_outputFormat") else None
    return export_parameters(
        types=types, since=since, output_format=output_format,
        identified=_bool("identified", raw["identified"][-1]) if raw.get("identified") else False,
        purpose=str(raw["purpose"][-1]) if raw.get("purpose") else "",
        shift_dates=_bool("dateShift", raw["dateShift"][-1]) if raw.get("dateShift") else False)


def _own_job(request: Request, job_id: str) -> ExportJob | None:
    """The requester's job, else None: someone else's job answers 404 like a missing one. A
    system client's jobs are the client's, whichever of its tokens kicked them off."""
    who = principal(request)
    if isinstance(who, SystemPrincipal):
        return ExportJob.objects.filter(pk=job_id, client=who.client).first()
    return ExportJob.objects.filter(pk=job_id, requester=who).select_related("requester").first()


def _scope_refusal(request: Request, types: list[str]) -> Response | None:
    """A system client's token must cover the types it polls, cancels or downloads (ADR 0018):
    a token narrowed since the kick-off gets 403, not the data."""
    who = principal(request)
    if not isinstance(who, SystemPrincipal):
        return None
    missing = [t for t in types if t != "OperationOutcome" and not who.may(t, "rs")]
    if not missing:
        return None
    audit_record(user=who, action=Action.EXPORT, outcome=Outcome.DENIED, request=request,
                 resource=f"{request.method} {request.path} scopes lack {','.join(missing)}"[:300])
    return _error(403, "forbidden", f"This token's scopes do not cover {', '.join(missing)}.")


class ExportKickoffView(FhirView):
    parser_classes = [FhirJSONParser, JSONParser]
    kind = ExportKind.SYSTEM

    @extend_schema(
        parameters=[OpenApiParameter("Prefer", str, OpenApiParameter.HEADER, required=True,
                                     description="respond-async"),
                    OpenApiParameter("_type", str), OpenApiParameter("_since", str),
                    OpenApiParameter("_outputFormat", str),
                    OpenApiParameter("identified", bool, description="identified export (admin, clinician)"),
                    OpenApiParameter("purpose", str, description="required with identified=true; audited"),
                    OpenApiParameter("dateShift", bool, description="shift dates per patient")],
        responses={202: None, 400: _OUTCOME, 401: _OUTCOME, 403: _OUTCOME, 404: _OUTCOME, 429: _OUTCOME},
        tags=["fhir"])
    def get(self, request: Request, group_id: str = "") -> Response:
        """Bulk Data kick-off (asynchronous): 202 with the status URL in Content-Location."""
        return self._kickoff(request, group_id)

    @extend_schema(request=OpenApiTypes.OBJECT, responses={202: None, 400: _OUTCOME, 429: _OUTCOME},
                   tags=["fhir"])
    def post(self, request: Request, group_id: str = "") -> Response:
        """Kick-off with a FHIR Parameters body."""
        return self._kickoff(request, group_id)

    def _kickoff(self, request: Request, group_id: str) -> Response:
        prefer = {p.strip().lower() for p in request.headers.get("Prefer", "").split(",")}
        if "respond-async" not in prefer:
            return _error(400, "invalid", "$export runs asynchronously: send the header Prefer: respond-async.")
        try:
            params = _parse(_raw_parameters(request))
            job = export_job_create(user=principal(request), kind=self.kind, group_id=group_id, params=params,
                                    request_url=request.build_absolute_uri(), request=request)
        except ExportError as exc:
            response = _error(exc.status, exc.code, exc.message)
            if exc.status == 429:
                response["Retry-After"] = str(settings.EXPORT_RETRY_AFTER_SECONDS * 12)
            return response
        except PseudonymKeyMissing:
            return _error(503, "exception", "Pseudonymised exports are not configured on this server "
                                            "(the pseudonym key is missing).")
        response = Response(status=202)
        response["Content-Location"] = request.build_absolute_uri(f"/fhir/$export-status/{job.pk}")
        return response


class PatientExportKickoffView(ExportKickoffView):
    kind = ExportKind.PATIENT


class GroupExportKickoffView(ExportKickoffView):
    kind = ExportKind.GROUP


class ExportStatusView(FhirView):
    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="Bulk Data manifest"),
                              202: None, 404: _OUTCOME, 500: _OUTCOME}, tags=["fhir"])
    def get(self, request: Request, job_id: str) -> Response:
        """Poll: 202 with X-Progress while running, then the manifest."""
        job = _own_job(request, job_id)
        if job is None or job.status == ExportStatus.CANCELLED:
            return _error(404, "not-found", "No such export.")
        if refused := _scope_refusal(request, job.params.get("types", [])):
            return refused
        if job.status in (ExportStatus.QUEUED, ExportStatus.RUNNING):
            response = Response(status=202)
            response["X-Progress"] = (f"{job.progress}%" + (f" ({job.progress_text})" if job.progress_text else "")
                                      if job.status == ExportStatus.RUNNING else "queued")
            response["Retry-After"] = str(settings.EXPORT_RETRY_AFTER_SECONDS)
            return response
        if job.status == ExportStatus.FAILED:
            return _error(500, "exception", job.failure or "The export failed.")
        response = Response(self._manifest(request, job), content_type="application/json")
        if job.expires_at:
            response["Expires"] = http_date(job.expires_at.timestamp())
        return response

    def _manifest(self, request: Request, job: ExportJob) -> dict[str, Any]:
        def url(name: str) -> str:
            return request.build_absolute_uri(f"/fhir/$export-file/{job.pk}/{name}")

        return {
            "transactionTime": job.transaction_time.isoformat() if job.transaction_time else None,
            "request": job.request_url,
            "requiresAccessToken": True,
            "output": [{"type": f["type"], "url": url(f["name"]), "count": f["count"]} for f in job.files],
            "error": [{"type": "OperationOutcome", "url": url(e["name"]), "count": e["count"]}
                      for e in job.errors],
            "extension": {"https://proplatform.dk/fhir/bulk/pseudonymised": not job.identified,
                          "https://proplatform.dk/fhir/bulk/expires": job.expires_at.isoformat()
                          if job.expires_at else None},
        }

    @extend_schema(responses={202: None, 404: _OUTCOME}, tags=["fhir"])
    def delete(self, request: Request, job_id: str) -> Response:
        """Cancel the export (and delete its files)."""
        job = _own_job(request, job_id)
        if job is None or job.status in (ExportStatus.CANCELLED, ExportStatus.FAILED):
            return _error(404, "not-found", "No such export.")
        if refused := _scope_refusal(request, job.params.get("types", [])):
            return refused
        export_job_cancel(job=job, user=principal(request), request=request)
        return Response(status=202)


class _AnyAccept(BaseContentNegotiation):
    """Bulk clients ask for files with Accept: application/fhir+ndjson, which no DRF renderer
    names; the file is what it is, and errors come as OperationOutcome JSON."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(self, request: Request, renderers: Iterable[BaseRenderer],
                        format_suffix: str | None = None) -> tuple[BaseRenderer, str]:
        first = next(iter(renderers))  # FhirView names two
        return first, first.media_type


class ExportFileView(FhirView):
    content_negotiation_class = _AnyAccept
    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.BINARY, description="NDJSON"),
                              404: _OUTCOME, 410: _OUTCOME}, tags=["fhir"])
    def get(self, request: Request, job_id: str, name: str) -> Response | FileResponse:
        """One NDJSON file of a finished export: the requester only, until it expires; audited."""
        job = _own_job(request, job_id)
        if job is None or job.status != ExportStatus.COMPLETED:
            return _error(404, "not-found", "No such file.")
        listed = {f["name"]: f for f in [*job.files, *job.errors]}
        if name not in listed:
            return _error(404, "not-found", "No such file.")
        if refused := _scope_refusal(request, [listed[name]["type"]]):
            return refused
        if job.files_deleted_at or (job.expires_at and job.expires_at <= timezone.now()):
            return _error(410, "expired", "This export's files have expired; start a new export.")
        path = job_dir(job) / name
        if not path.is_file():
            return _error(410, "expired", "This export's files are gone; start a new export.")
        export_file_record_download(job=job, user=principal(request), resource_type=listed[name]["type"],
                                    count=listed[name]["count"], request=request)
        response = FileResponse(path.open("rb"), content_type="application/fhir+ndjson")
        response["Cache-Control"] = "no-store"
        return response

