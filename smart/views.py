"""SMART discovery (``/.well-known/smart-configuration``) and the token endpoint (``/oauth/token``)
of Backend Services (ADR 0018). Errors are RFC 6749 §5.2 JSON, never a page and never a 500."""

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.parsers import FormParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from proplatform.middleware import current_request_id
from smart.discovery import TOKEN_PATH
from smart.jwks import ALGORITHMS
from smart.scopes import RESOURCE_TYPES
from smart.services import OAuthError, system_token_issue

logger = logging.getLogger("django.request")
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def token_url(request: HttpRequest) -> str:
    """The token endpoint's absolute URL: what a client assertion's aud must be."""
    return settings.SMART_TOKEN_URL or request.build_absolute_uri(TOKEN_PATH)


def scopes_supported() -> list[str]:
    return ["system/*.read", "system/*.rs",
            *[f"system/{t}.{p}" for t in RESOURCE_TYPES for p in ("read", "rs")]]


@require_GET
def smart_configuration(request: HttpRequest) -> JsonResponse:
    """SMART App Launch 2.x discovery, for Backend Services only (no user-facing launch)."""
    return JsonResponse({
        "issuer": request.build_absolute_uri("/").rstrip("/"),
        "token_endpoint": token_url(request),
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(ALGORITHMS),
        "grant_types_supported": ["client_credentials"],
        "scopes_supported": scopes_supported(),
        "capabilities": ["client-confidential-asymmetric", "permission-v1", "permission-v2"],
    }, headers={"Cache-Control": "public, max-age=3600"})


def _oauth_error(error: str, description: str, status: int) -> Response:
    return Response({"error": error, "error_description": description}, status=status, headers=_NO_STORE)


class TokenView(APIView):
    """client_credentials with a private_key_jwt client assertion (RFC 7523, SMART Backend Services)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [FormParser]
    renderer_classes = [JSONRenderer]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "smart-token"

    @extend_schema(
        request={"application/x-www-form-urlencoded": OpenApiTypes.OBJECT},
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="access_token, token_type, expires_in, "
                                                                          "scope"),
                   400: OpenApiResponse(OpenApiTypes.OBJECT, description="RFC 6749 error"),
                   401: OpenApiResponse(OpenApiTypes.OBJECT, description="invalid_client")},
        tags=["auth"], operation_id="smart_token")
    def post(self, request: Request) -> Response:
        values: dict[str, str] = {}
        for name in ("grant_type", "client_assertion_type", "client_assertion", "scope"):
            given = request.data.getlist(name) if hasattr(request.data, "getlist") else []
            if len(given) > 1:
                return _oauth_error("invalid_request", f"{name} is given more than once.", 400)
            value = given[0] if given else ""
            if "\x00" in value:
                return _oauth_error("invalid_request", f"{name} contains a NUL character.", 400)
            if not value:
                return _oauth_error("invalid_request", f"{name} is required.", 400)
            values[name] = value
        try:
            issued = system_token_issue(
                grant_type=values["grant_type"], assertion_type=values["client_assertion_type"],
                assertion=values["client_assertion"], scope=values["scope"], token_url=token_url(request),
                request=request)
        except OAuthError as exc:
            return _oauth_error(exc.error, exc.description, exc.status)
        return Response({"access_token": issued.raw, "token_type": "bearer", "expires_in": issued.expires_in,
                         "scope": issued.scope}, headers=_NO_STORE)

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, exceptions.Throttled):
            # DRF sets Throttled.wait (None when the throttle names no wait); its stubs omit it.
            wait: float = getattr(exc, "wait", None) or 60
            response = _oauth_error("invalid_request", f"Too many token requests; retry in {wait:.0f} s.", 429)
            response["Retry-After"] = str(int(wait))
            return response
        if isinstance(exc, exceptions.UnsupportedMediaType):
            return _oauth_error("invalid_request", "Send the parameters as application/x-www-form-urlencoded.", 400)
        if isinstance(exc, exceptions.MethodNotAllowed):
            return _oauth_error("invalid_request", "Use POST.", 405)
        if isinstance(exc, RequestDataTooBig | TooManyFieldsSent):
            return _oauth_error("invalid_request", "The request is too large for a token request.", 413)
        if isinstance(exc, exceptions.APIException):
            return _oauth_error("invalid_request", str(getattr(exc, "detail", exc)), exc.status_code)
        logger.error("token request failed", exc_info=exc, extra={"status_code": 500, "request": self.request})
        return _oauth_error("server_error", f"The server failed; logged as request {current_request_id()}.", 500)

