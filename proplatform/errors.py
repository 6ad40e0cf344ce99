"""The site's 403, 404 and 500 answers (handler403/404/500 in proplatform.urls).

Pages are the site's layout (templates/base.html) in the user's language, Danish by default,
with a way back. FHIR paths answer an OperationOutcome and REST paths JSON, as their views do
(interop.views.FhirView, proplatform.api): these handlers only see what no view answered — a
path no route matches, a refusal or a failure in middleware.

The 500 page is rendered without the request (no context processors: no session, no user, no
database) and falls back to fixed HTML if even that fails: the page that reports a failure must
not fail itself, least of all when the database is what failed."""

import logging
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.views import defaults

from proplatform.middleware import current_request_id

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
_FHIR_CODES = {400: "invalid", 403: "forbidden", 404: "not-found", 500: "exception"}


def _machine(request: HttpRequest, status: int, message: str) -> HttpResponse | None:
    """The JSON answer for a FHIR or REST path; None for a page."""
    path = request.path
    if path == "/fhir" or path.startswith("/fhir/"):
        severity = "fatal" if status >= 500 else "error"
        return JsonResponse({"resourceType": "OperationOutcome", "issue": [
            {"severity": severity, "code": _FHIR_CODES[status], "diagnostics": message}]},
            status=status, content_type=FHIR_JSON)
    if path.startswith("/api/"):
        return JsonResponse({"detail": message, "request_id": current_request_id()}, status=status)
    return None


def _page(request: HttpRequest, template: str, status: int, context: dict[str, Any]) -> HttpResponse:
    return HttpResponse(loader.render_to_string(template, context, request=request), status=status)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    # e.g. a Host header Django refuses, or a body it cannot read, before any view: the published
    # schema promises JSON under /api/ and /fhir (schemathesis found HTML there).
    machine = _machine(request, 400, "Bad request.")
    return machine or defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    machine = _machine(request, 403, "You do not have access to this resource.")
    return machine or _page(request, "403.html", 403, {})


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    machine = _machine(request, 404, "No such resource.")
    return machine or _page(request, "404.html", 404, {})


# Used only if rendering 500.html itself fails (e.g. a static file missing from the manifest).
_FALLBACK_500 = (
    '<!doctype html><html lang="da"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1"><title>Fejl · proplatform</title></head>'
    '<body><main><h1>Der skete en fejl</h1><p>Siden kunne ikke vises. Prøv igen om lidt.</p>'
    '<p><a href="/">Til forsiden</a></p><p>Reference: {request_id}</p></main></body></html>'
)


def server_error(request: HttpRequest) -> HttpResponse:
    request_id = current_request_id()
    machine = _machine(request, 500, f"The server failed to process the request. It is logged as request "
                                     f"{request_id}.")
    if machine is not None:
        return machine
    try:
        # No request: no context processors, so nothing here reads the session or the database.
        body: str = loader.render_to_string("500.html", {"request_id": request_id})
    except Exception:  # noqa: BLE001 - the error page must answer whatever broke
        log.exception("rendering 500.html failed")
        body = _FALLBACK_500.format(request_id=request_id)
    return HttpResponse(body, status=500)
