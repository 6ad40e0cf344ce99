import logging
from typing import Any, cast

from django.conf import settings
from django.contrib.auth import authenticate, user_logged_in
from django.utils.translation import gettext as _
from django_otp import devices_for_user
from drf_spectacular.utils import OpenApiResponse, extend_schema
from redis.exceptions import RedisError
from rest_framework import exceptions, serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from accounts.lockout import is_locked_out, lockout_retry_after
from accounts.models import ApiToken, User
from accounts.services import LoginFactor, LoginPath, LoginResult, api_token_revoke, login_audit
from proplatform.middleware import current_request_id

logger = logging.getLogger(__name__)


class TokenIn(serializers.Serializer[Any]):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, trim_whitespace=False)
    otp_token = serializers.RegexField(r"^[0-9]{6}$", required=False,  # \d would take "１２３４５６"
                                       help_text="Six-digit TOTP code; required once two-factor login is on.")


class TokenOut(serializers.Serializer[Any]):
    token = serializers.CharField()
    token_type = serializers.CharField()
    expires_at = serializers.DateTimeField()


class ErrorOut(serializers.Serializer[Any]):
    detail = serializers.CharField(required=False)
    request_id = serializers.CharField()


class ThrottleStoreDown(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Sign-in is briefly unavailable; try again shortly."
    default_code = "unavailable"
    wait = 30  # seconds: DRF's exception handler sends it as Retry-After


class TokenView(APIView):
    """Exchange a username and password (and a TOTP code when enabled) for a bearer token."""

    authentication_classes: list[Any] = []
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
            403: OpenApiResponse(ErrorOut, description="A staff account without two-factor login, where "
                                                       "it is required: set it up first."),
            429: OpenApiResponse(ErrorOut, description="Too many attempts from this address, or this username "
                                                       "is locked after failed logins; Retry-After says how "
                                                       "long to wait."),
            503: OpenApiResponse(ErrorOut, description="The attempt counter is unavailable; retry after "
                                                       "Retry-After seconds."),
        },
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        data = TokenIn(data=request.data)
        data.is_valid(raise_exception=True)
        username = data.validated_data["username"]
        code = data.validated_data.get("otp_token")
        # The Django request, not DRF's wrapper: axes records the attempt on it and marks it
        # when the username is locked.
        django_request = request._request
        user = authenticate(django_request, username=username, password=data.validated_data["password"])
        if user is None:
            locked = is_locked_out(django_request)
            login_audit(request=request, path=LoginPath.API_TOKEN, factor=LoginFactor.PASSWORD,
                        result=LoginResult.LOCKED if locked else LoginResult.FAILURE, username=username)
            if locked:
                wait = lockout_retry_after(username)
                message = _("Too many failed logins for this username. It is locked: try again in "
                            "%(seconds)d seconds, or ask an administrator to unlock it.") % {"seconds": wait}
                return Response({"detail": message, "username": [message], "request_id": current_request_id()},
                                status=status.HTTP_429_TOO_MANY_REQUESTS, headers={"Retry-After": str(wait)})
            return _wrong()
        device = next(iter(devices_for_user(user, confirmed=True)), None)
        if device is None and user.is_staff_role and settings.REQUIRE_STAFF_TWO_FACTOR:
            login_audit(request=request, path=LoginPath.API_TOKEN, factor=LoginFactor.TOTP,
                        result=LoginResult.FAILURE, username=username)
            message = _("Staff log in with a code from an authenticator app. Set it up at "
                        "/account/two-factor/ first.")
            return Response({"detail": message, "otp_token": [message], "request_id": current_request_id()},
                            status=status.HTTP_403_FORBIDDEN)
        if device is not None and not (code and any(
                d.verify_token(code) for d in devices_for_user(user, confirmed=True))):
            login_audit(request=request, path=LoginPath.API_TOKEN, factor=LoginFactor.TOTP,
                        result=LoginResult.FAILURE, username=username)
            return _wrong()
        # A token login is a login: axes clears the username's earlier failures on this signal,
        # and Django records last_login.
        user_logged_in.send(sender=user.__class__, request=django_request, user=user)
        login_audit(request=request, path=LoginPath.API_TOKEN,
                    factor=LoginFactor.TOTP if device is not None else LoginFactor.PASSWORD,
                    result=LoginResult.SUCCESS, username=username, user=user)
        token, raw = ApiToken.issue(user)
        out = TokenOut({"token": raw, "token_type": "Bearer", "expires_at": token.expires_at})
        return Response(out.data, status=status.HTTP_201_CREATED)


def _wrong() -> Response:
    return Response({"detail": _("Wrong username, password or code."), "request_id": current_request_id()},
                    status=status.HTTP_401_UNAUTHORIZED)


class TokenRowOut(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)
    current = serializers.BooleanField(help_text="The token this request was made with.")


class TokenListView(APIView):
    """The caller's own person tokens, newest first (never the token itself: only its hash is kept)."""

    @extend_schema(responses={200: TokenRowOut(many=True)}, tags=["auth"])
    def get(self, request: Request) -> Response:
        current = request.auth.pk if isinstance(request.auth, ApiToken) else None
        rows = ApiToken.objects.filter(user=_person(request)).order_by("-created_at")[:100]
        return Response(TokenRowOut([{"id": t.pk, "created_at": t.created_at, "expires_at": t.expires_at,
                                      "revoked_at": t.revoked_at, "current": t.pk == current}
                                     for t in rows], many=True).data)


class TokenDetailView(APIView):
    """Revoke one of the caller's own tokens (the one in use, too: that is logging a program out)."""

    @extend_schema(responses={204: None, 404: OpenApiResponse(ErrorOut, description="No such token of yours.")},
                   tags=["auth"])
    def delete(self, request: Request, token_id: int) -> Response:
        person = _person(request)
        if not api_token_revoke(owner=person, token_id=token_id, by=person, request=request):
            raise NotFound(_("You have no token with this id."))
        return Response(status=status.HTTP_204_NO_CONTENT)


def _person(request: Request) -> User:
    # IsAuthenticated (the default permission) has let only a person through to these views.
    return cast(User, request.user)
