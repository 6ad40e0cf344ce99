"""``Authorization: Bearer sb_…``: an access token issued to a system client (ADR 0018).

Listed first in DEFAULT_AUTHENTICATION_CLASSES; tokens of other kinds are left to the classes
after it. A system token is good for the FHIR API only: on any other path it is refused, so a
backend service never reaches the person-facing REST API or pages."""

from typing import Any

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from accounts.authentication import bearer_token
from accounts.models import hash_token
from smart.models import SystemAccessToken
from smart.permissions import system_access_check
from smart.principal import SystemPrincipal
from smart.scopes import ScopeError, scopes_parse
from smart.services import TOKEN_PREFIX


class SystemTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        raw = bearer_token(request)
        if raw is None or not raw.startswith(f"{TOKEN_PREFIX}_"):
            return None
        if not request.path.startswith("/fhir/") and request.path != "/fhir":
            raise exceptions.AuthenticationFailed("A backend-services token is for the FHIR API (/fhir) only.")
        token = (SystemAccessToken.objects.select_related("client")
                 .filter(key_hash=hash_token(raw), expires_at__gt=timezone.now()).first())
        if token is None or not token.client.active:
            raise exceptions.AuthenticationFailed("Invalid or expired token.")
        try:
            scopes = scopes_parse(token.scopes)
        except ScopeError:  # written by us; only a scope grammar change could get here
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        principal = SystemPrincipal(client=token.client, scopes=scopes)
        system_access_check(request, principal)
        return principal, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="fhir"'
