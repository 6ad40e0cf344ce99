"""The token endpoint's one service: a client assertion in, an access token out (ADR 0018).

SMART App Launch 2.x "Backend Services" / RFC 7523: the client signs a JWT with its private key
(RS384 or ES384) naming itself as ``iss`` and ``sub``, our token endpoint as ``aud``, an ``exp``
at most five minutes ahead and a ``jti`` it never uses again. Every refusal is an ``OAuthError``
carrying the RFC 6749 §5.2 error code and the HTTP status to answer with."""

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import hash_token, new_raw_token
from audit.models import Action, Outcome
from audit.services import audit_record
from smart.jwks import ALGORITHMS, JwksUnavailable, PublicKey, jwks_fetch, jwks_parse
from smart.models import CLIENT_ID, SystemAccessToken, SystemClient, UsedAssertion
from smart.principal import SystemPrincipal
from smart.scopes import ScopeError, scopes_grant, scopes_parse, scopes_text

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_LIFETIME = timedelta(minutes=5)  # SMART: exp no more than five minutes in the future
# Allowance for the client's clock: an exp this far past is still accepted, and this far beyond
# the five minutes too. Small, because a replayed assertion is only caught while its jti is kept.
CLOCK_SKEW = timedelta(seconds=30)
MAX_ASSERTION_BYTES = 16 * 1024
TOKEN_PREFIX = "sb"  # noqa: S105 - "system backend": the authentication class tells its tokens by this


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


def _client_error(description: str) -> OAuthError:
    # RFC 6749 §5.2: a failed client authentication is invalid_client; 401 as the client
    # authenticated (with its assertion) and failed.
    return OAuthError("invalid_client", description, 401)


@dataclass(frozen=True)
class IssuedToken:
    raw: str
    expires_in: int
    scope: str


def _key(client: SystemClient, *, kid: str, algorithm: str) -> PublicKey | None:
    """The client's key with this kid for this algorithm: the pasted JWKS first, then the one at
    its jwks_uri (so a key server that is down does not stop a client whose key is pasted)."""
    pasted = jwks_parse(client.jwks) if client.jwks else []
    found = next((k for k in pasted if k.kid == kid and k.algorithm == algorithm), None)
    if found is not None or not client.jwks_uri:
        return found
    try:
        published = jwks_fetch(client.jwks_uri)
    except JwksUnavailable as exc:
        raise _client_error(f"The client's keys could not be loaded: {exc}.") from None
    return next((k for k in published if k.kid == kid and k.algorithm == algorithm), None)


def _claims(assertion: str, *, token_url: str) -> tuple[SystemClient, dict[str, Any]]:
    """The checked claims of a client assertion, and its client."""
    try:
        header = jwt.get_unverified_header(assertion)
        unverified = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise _client_error("client_assertion is not a well-formed JWT.") from None
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        # Checked before anything else: "none" and HS256 (a shared secret — or our public key
        # abused as one) must never reach a verifier.
        raise _client_error(f"client_assertion must be signed with RS384 or ES384, not {str(algorithm)[:20]!r}.")
    iss, sub = unverified.get("iss"), unverified.get("sub")
    if not isinstance(iss, str) or not iss or iss != sub:
        raise _client_error("client_assertion's iss and sub must both be the client_id.")
    # Only a string that can be a client id reaches the database: a JSON-escaped NUL ("\u0000")
    # inside the signed payload passes the form's NUL check and would fail in PostgreSQL.
    client = SystemClient.objects.filter(client_id=iss).first() if CLIENT_ID.fullmatch(iss) else None
    if client is None:
        raise _client_error("Unknown client.")
    if not client.active:
        raise _client_error("This client is not active.")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _client_error("client_assertion's header must name its key (kid).")
    key = _key(client, kid=kid, algorithm=algorithm)
    if key is None:
        raise _client_error(f"No {algorithm} key with kid {kid[:60]!r} is registered for this client.")
    try:
        claims = jwt.decode(assertion, key.key, algorithms=[algorithm], audience=token_url, issuer=client.client_id,
                            leeway=CLOCK_SKEW, options={"require": ["iss", "sub", "aud", "exp", "jti"]})
    except jwt.ExpiredSignatureError:
        raise _client_error("client_assertion has expired.") from None
    except jwt.InvalidAudienceError:
        raise _client_error(f"client_assertion's aud must be the token endpoint, {token_url}.") from None
    except jwt.InvalidSignatureError:
        raise _client_error("client_assertion's signature does not verify with the registered key.") from None
    except jwt.MissingRequiredClaimError as exc:
        raise _client_error(f"client_assertion lacks the claim {exc.claim}.") from None
    except jwt.PyJWTError as exc:
        raise _client_error(f"client_assertion was refused: {exc}.") from None
    # Compared as numbers first: an exp in the year 10^12 must be refused, not overflow a datetime.
    if claims["exp"] > time.time() + (MAX_ASSERTION_LIFETIME + CLOCK_SKEW).total_seconds():
        raise _client_error("client_assertion's exp is more than five minutes ahead.")
    jti = claims["jti"]
    if not isinstance(jti, str) or not jti or len(jti) > 255 or not jti.isprintable():
        raise _client_error("client_assertion's jti must be 1-255 printable characters.")
    return client, claims


def system_token_issue(*, grant_type: str, assertion_type: str, assertion: str, scope: str, token_url: str,
                       request: HttpRequest | None = None) -> IssuedToken:
    """Check a client-credentials request and issue an access token. The assertion's jti, the
    token and the audit row are written in one transaction: a refused request stores nothing
    but its audit row."""
    if grant_type != "client_credentials":
        raise OAuthError("unsupported_grant_type", "This server issues tokens for grant_type=client_credentials.")
    if assertion_type != ASSERTION_TYPE:
        raise OAuthError("invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}.")
    if len(assertion) > MAX_ASSERTION_BYTES:
        raise _client_error("client_assertion is too long.")
    try:
        requested = scopes_parse(scope)
    except ScopeError as exc:
        raise OAuthError("invalid_scope", str(exc)) from None
    if not requested:
        raise OAuthError("invalid_request", "scope is required: the system scopes the client asks for.")
    client, claims = _claims(assertion, token_url=token_url)
    principal = SystemPrincipal(client=client, scopes=[])
    granted = scopes_grant(requested=requested, allowed=scopes_parse(client.allowed_scopes))
    if not granted:
        audit_record(user=principal, action=Action.LOGIN, outcome=Outcome.DENIED, request=request,
                     resource=f"smart-token scope={scopes_text(requested)[:200]} not allowed")
        raise OAuthError("invalid_scope", "None of the requested scopes is allowed for this client.")
    lifetime = settings.SMART_ACCESS_TOKEN_SECONDS
    raw = new_raw_token(TOKEN_PREFIX)
    now = timezone.now()
    try:
        with transaction.atomic():
            UsedAssertion.objects.create(client=client, jti=claims["jti"],
                                         expires_at=datetime.fromtimestamp(claims["exp"], tz=UTC) + CLOCK_SKEW)
            SystemAccessToken.objects.create(client=client, key_hash=hash_token(raw), scopes=scopes_text(granted),
                                             created_at=now, expires_at=now + timedelta(seconds=lifetime))
            audit_record(user=principal, action=Action.LOGIN, request=request,
                         resource=f"smart-token scope={scopes_text(granted)[:250]}")
    except IntegrityError:
        audit_record(user=principal, action=Action.LOGIN, outcome=Outcome.DENIED, request=request,
                     resource="smart-token jti reused")
        raise _client_error("client_assertion's jti was used before; sign a new assertion for every request.") \
            from None
    return IssuedToken(raw=raw, expires_in=lifetime, scope=scopes_text(granted))


def smart_clear_expired(*, now: datetime | None = None) -> dict[str, int]:
    """Beat: delete assertion ids past their expiry (a replay of those fails on exp anyway) and
    access tokens expired more than a day ago."""
    now = now or timezone.now()
    assertions, _ = UsedAssertion.objects.filter(expires_at__lt=now).delete()
    tokens, _ = SystemAccessToken.objects.filter(expires_at__lt=now - timedelta(days=1)).delete()
    return {"assertions": assertions, "tokens": tokens}
