"""OpenAPI descriptions of our authentication schemes (drf-spectacular extensions). Imported from
the apps' ready() hook so that the schema generator knows them."""

import re
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.openapi import AutoSchema
from rest_framework.request import Request


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.BearerTokenAuthentication"
    name = "personToken"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        return {"type": "http", "scheme": "bearer",
                "description": "A person's token (pp_…) from POST /api/v1/auth/token."}


class DeviceTokenScheme(OpenApiAuthenticationExtension):
    target_class = "monitoring.authentication.DeviceTokenAuthentication"
    name = "deviceToken"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        return {"type": "http", "scheme": "bearer",
                "description": "A home device's token (dv_…), issued when the device is lent out."}


# The FHIR operations the server routes ($export, its status and files, $evaluate-measure).
_BULK_DATA = re.compile(r"(?<=/)(export(?:-status|-file)?|evaluate-measure)(?=/|$)")


def bulk_data_paths(result: dict[str, Any], generator: SchemaGenerator, request: Request | None,
                    public: bool) -> dict[str, Any]:
    """drf-spectacular's postprocessing hook: the FHIR operations (Bulk Data, $evaluate-measure)
    under their real names. drf-spectacular reads a "$" in a route as a regular expression's end anchor and drops
    it, so /fhir/$export was published as /fhir/export (a 404 for anyone who followed the schema)."""
    result["paths"] = {_BULK_DATA.sub(r"$\1", path) if path.startswith("/fhir/") else path: item
                       for path, item in result["paths"].items()}
    return result


_OPERATION_OUTCOME = {
    "type": "object", "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
        "issue": {"type": "array", "items": {"type": "object", "required": ["severity", "code"], "properties": {
            "severity": {"type": "string"}, "code": {"type": "string"}, "diagnostics": {"type": "string"},
            "expression": {"type": "array", "items": {"type": "string"}}}}},
    },
}
_ERROR = {
    "type": "object", "required": ["request_id"],
    "description": "detail (a message) or field -> messages, and the request id to quote to support.",
    "properties": {"detail": {"type": "string"}, "request_id": {"type": "string"}},
    "additionalProperties": True,
}
_WHY = {"400": "The request is malformed: field errors, a bad parameter, JSON that cannot be read.",
        "401": "Missing, wrong, expired or revoked token.",
        "403": "The caller's role may not do this.",
        "404": "No such resource, or not one the caller may see.",
        "413": "The body is larger than the server accepts."}


def error_responses(result: dict[str, Any], generator: SchemaGenerator, request: Request | None,
                    public: bool) -> dict[str, Any]:
    """drf-spectacular's postprocessing hook: the error answers every operation can give, where
    its view did not list them (issue 20: schemathesis found 401s, 403s and 404s the schema did
    not declare). FHIR answers them with an OperationOutcome, the REST API with ``Error``:
    400 always (a parameter or body the server refuses), 401 and 403 where a token is needed,
    404 where the path names something and on every FHIR read or search (a patient the caller
    may not see), 413 where there is a body."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("OperationOutcome", _OPERATION_OUTCOME)
    schemas.setdefault("Error", _ERROR)
    for path, item in result["paths"].items():
        fhir = path.startswith("/fhir")
        ref = {"$ref": "#/components/schemas/" + ("OperationOutcome" if fhir else "Error")}
        types = ("application/fhir+json", "application/json") if fhir else ("application/json",)
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            codes = ["400"]
            if any(requirement for requirement in operation.get("security", [{}])):
                codes += ["401", "403"]
            if "{" in path or fhir:
                codes.append("404")
            if "requestBody" in operation:
                codes.append("413")
            responses = operation["responses"]
            for code in codes:  # a view's own description of a code (perhaps of several shapes) stays
                if code not in responses:
                    responses[code] = {"description": _WHY[code],
                                       "content": {media: {"schema": ref} for media in types}}
    return result
