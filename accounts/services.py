"""Login audit, ending a person's logins, and revoking their tokens."""

from enum import StrEnum

from django.contrib.auth import update_session_auth_hash
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import ApiToken, User
from audit.models import Action, Outcome
from audit.services import audit_record


class LoginPath(StrEnum):
    PAGE = "page"            # /login/
    ADMIN = "admin"          # /login/?next=/admin/… (the admin's own login redirects there)
    API_TOKEN = "api-token"  # noqa: S105 - a path name; POST /api/v1/auth/token
    TWO_FACTOR = "two-factor"  # confirming a new authenticator app at /account/two-factor/


class LoginFactor(StrEnum):
    PASSWORD = "password"  # noqa: S105 - a factor name
    TOTP = "totp"


class LoginResult(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    LOCKED = "locked"


def login_audit(*, request: HttpRequest, path: LoginPath, factor: LoginFactor, result: LoginResult,
                username: str, user: User | None = None) -> None:
    """One audit row per login attempt. The attempted username is recorded (it says whose
    account was tried); the attempted password or code never is."""
    audit_record(
        user=user if result == LoginResult.SUCCESS else None,
        action=Action.LOGIN,
        resource=f"{path} factor={factor} result={result} username={username[:100]}",
        outcome=Outcome.ALLOWED if result == LoginResult.SUCCESS else Outcome.DENIED,
        request=request,
    )


def user_logins_end(*, user: User, keep_request: HttpRequest | None = None, reason: str) -> int:
    """End every session and API token of ``user`` — except the session of ``keep_request``,
    the person's own, which stays logged in. Returns the number of tokens revoked.

    Sessions end because the epoch is part of the session hash Django checks on each request;
    no session table is scanned (and it works for any session backend)."""
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(auth_epoch=F("auth_epoch") + 1)
        user.refresh_from_db(fields=["auth_epoch"])
        revoked = ApiToken.revoke_all(user)
        audit_record(user=user, action=Action.UPDATE,
                     resource=f"logins ended: {reason}; tokens revoked={revoked}", request=keep_request)
    if keep_request is not None:
        update_session_auth_hash(keep_request, user)
    return revoked


def api_token_revoke(*, owner: User, token_id: int, by: User, request: HttpRequest | None = None) -> bool:
    """Revoke ``owner``'s token ``token_id``. False when ``owner`` has no such token (the
    caller answers 404: someone else's token id is not told apart from a missing one)."""
    tokens = ApiToken.objects.filter(pk=token_id, user=owner)
    if not tokens.exists():
        return False
    # Revoking a revoked token again changes nothing and is no error (DELETE is idempotent).
    if tokens.filter(revoked_at=None).update(revoked_at=timezone.now()):
        audit_record(user=by, action=Action.UPDATE, resource=f"api-token {token_id} of user {owner.pk} revoked",
                     request=request)
    return True
