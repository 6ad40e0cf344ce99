import logging
from typing import Any

from django.contrib.auth import authenticate
from django_otp import devices_for_user, user_has_device
from drf_spectacular.utils import OpenApiResponse, extend_schema
from redis.exceptions import RedisError
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from accounts.models import ApiToken
from audit.models import Action, Outcome
from audit.services import audit_record
from proplatform.middleware import current_request_id

logger = logging.getLogger(__name__)


class TokenIn(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, trim_whitespace=False)
    otp_token = serializers.RegexField(r"^[0-9]{6}$", required=False,  # \d would take "１２３４５６"
                                       help_text="Six-digit TOTP code; required once two-factor login is on.")


class TokenOut(serializers.Serializer):
    token = serializers.CharField()
    token_type = serializers.CharField()
    expires_at = serializers.DateTimeField()


class ErrorOut(serializers.Serializer):
    detail = serializers.CharField(required=False)
    request_id = serializers.CharField()


class ThrottleStoreDown(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Sign-in is briefly unavailable; try again shortly."
    default_code = "unavailable"
    wait = 30  # seconds: DRF's exception handler sends it as Retry-After


class TokenView(APIView):
    """Exchange a username and password (and a TOTP code when enabled) for a bearer token."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth-token"

    def check_throttles(self, request: Request) -> None:
        # The attempts are counted in the cache (Redis). Without it the limit cannot be kept,
        # and guessing passwords unthrottled is not an option: the caller is asked to come back
        # (503 with Retry-After), not shown a server error.
        try:
            super().check_throttles(request)
        except (RedisError, OSError) as exc:
            logger.warning("auth-token throttle store unavailable: %s", exc)
            raise ThrottleStoreDown() from exc

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        # A bearer token is a secret; the caller is not authenticated yet, so NoStoreMiddleware
        # does not know to keep it out of caches.
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = "no-store"
        return response

    @extend_schema(
        request=TokenIn,
        responses={
            201: TokenOut,
            400: OpenApiResponse(description="Field errors, e.g. a missing password."),
            401: OpenApiResponse(ErrorOut, description="Wrong credentials or TOTP code."),
            429: OpenApiResponse(ErrorOut, description="Too many attempts; retry later."),
            503: OpenApiResponse(ErrorOut, description="The attempt counter is unavailable; retry after "
                                                       "Retry-After seconds."),
        },
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        data = TokenIn(data=request.data)
        data.is_valid(raise_exception=True)
        username = data.validated_data["username"]
        user = authenticate(request, username=username, password=data.validated_data["password"])
        ok = user is not None and _second_factor_ok(user, data.validated_data.get("otp_token"))
        audit_record(
            user=user if ok else None,
            action=Action.LOGIN,
            resource=f"api-token username={username[:100]}",
            outcome=Outcome.ALLOWED if ok else Outcome.DENIED,
            request=request,
        )
        if not ok:
            return Response({"detail": "Wrong username, password or code.", "request_id": current_request_id()},
                            status=status.HTTP_401_UNAUTHORIZED)
        token, raw = ApiToken.issue(user)
        out = TokenOut({"token": raw, "token_type": "Bearer", "expires_at": token.expires_at})
        return Response(out.data, status=status.HTTP_201_CREATED)


def _second_factor_ok(user, code: str | None) -> bool:  # type: ignore[no-untyped-def]
    if not user_has_device(user, confirmed=True):
        return True
    if not code:
        return False
    return any(d.verify_token(code) for d in devices_for_user(user, confirmed=True))
