"""Django's own error answers (a URL no route matches, a request it refuses before any view)
in the shape of the API asked: an OperationOutcome under /fhir, the REST error shape under
/api/ — not an HTML page a client cannot read (issue 20: the published schema promises JSON,
and schemathesis found HTML 404s for ids a route's converter refuses, e.g. /fhir/$export-status/x)."""

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from proplatform.middleware import current_request_id

_ISSUE = {400: "invalid", 403: "forbidden", 404: "not-found", 500: "exception"}


def _api_error(request: HttpRequest, status: int, detail: str) -> HttpResponse | None:
    path = request.path_info
    if path == "/fhir" or path.startswith("/fhir/"):
        return JsonResponse({"resourceType": "OperationOutcome", "issue": [
            {"severity": "fatal" if status >= 500 else "error", "code": _ISSUE[status],
             "diagnostics": f"{detail} (request {current_request_id()})"}]},
            status=status, content_type="application/fhir+json")
    if path.startswith("/api/"):
        return JsonResponse({"detail": detail, "request_id": current_request_id()}, status=status)
    return None


def bad_request(request: HttpRequest, exception: Exception, **kwargs: Any) -> HttpResponse:
    return _api_error(request, 400, "Bad request.") or defaults.bad_request(request, exception, **kwargs)


def permission_denied(request: HttpRequest, exception: Exception, **kwargs: Any) -> HttpResponse:
    return _api_error(request, 403, "Forbidden.") or defaults.permission_denied(request, exception, **kwargs)


def page_not_found(request: HttpRequest, exception: Exception, **kwargs: Any) -> HttpResponse:
    return _api_error(request, 404, "Not found.") or defaults.page_not_found(request, exception, **kwargs)


def server_error(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    return _api_error(request, 500, "The server failed to process the request.") or defaults.server_error(
        request, **kwargs)
