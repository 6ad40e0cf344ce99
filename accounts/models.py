import hashlib
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    PATIENT = "patient", _("Patient")
    # A relative or carer who may answer questionnaires for patients who granted it.
    RELATIVE = "relative", _("Relative")
    CLINICIAN = "clinician", _("Clinician")
    QUALITY = "quality", _("Quality staff")
    # Sees the outcome indicators, their dashboards and downloads, and nothing else: aggregates
    # only, never a patient, a cohort's membership or an export (issue 23, the OSCAR principle).
    ANALYST = "analyst", _("Analyst (aggregates only)")
    ADMIN = "admin", _("Administrator")


class User(AbstractUser):
    """A person who logs in. What they may see follows from ``role`` (see patients.access)."""

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.PATIENT)
    # Raised to end every session of this user at once (accounts.services.user_logins_end): it
    # is part of the session hash Django checks on every request, as the password is.
    auth_epoch = models.PositiveIntegerField(default=0, editable=False)

    @property
    def is_staff_role(self) -> bool:
        return self.role in {Role.CLINICIAN, Role.QUALITY, Role.ADMIN}

    if TYPE_CHECKING:
        # Set on every request's user by django_otp's OTPMiddleware.
        def is_verified(self) -> bool: ...

    def _get_session_auth_hash(self, secret: str | None = None) -> str:
        if not self.auth_epoch:
            # Epoch 0 keeps Django's own hash, so sessions from before this field survive.
            # Django's private method (AbstractBaseUser), which its stubs leave out
            hashed: str = super()._get_session_auth_hash(secret=secret)  # type: ignore[misc]
            return hashed
        return salted_hmac("accounts.User.session_auth_hash", f"{self.password}:{self.auth_epoch}",
                           secret=secret, algorithm="sha256").hexdigest()

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Every way a password is changed or an account closed (admin, changepassword, a
        # service) ends up here, so this is where the person's API tokens end too. Sessions
        # need nothing: Django's session hash covers the password, and an inactive user's
        # session finds no user.
        update_fields = kwargs.get("update_fields")
        watched = update_fields is None or {"password", "is_active"} & set(update_fields)
        # set by AbstractBaseUser.set_password until the save; the stubs do not declare it
        password_changed = self._password is not None  # type: ignore[attr-defined]
        super().save(*args, **kwargs)
        # An inactive user's save revokes again what is already revoked: one cheap UPDATE,
        # simpler and safer than tracking the previous value of is_active.
        if watched and (password_changed or not self.is_active):
            ApiToken.revoke_all(self)


def hash_token(raw: str) -> str:
    # Tokens are 256-bit random strings, so one SHA-256 round is enough: there is nothing to
    # brute-force, and a stolen table of hashes cannot be replayed.
    return hashlib.sha256(raw.encode()).hexdigest()


def new_raw_token(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


class ApiToken(models.Model):
    """A bearer token for a person's program (issued by POST /api/v1/auth/token).

    Only the hash is stored; the raw token is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key_hash = models.CharField(max_length=64, unique=True)  # serves the lookup on every request
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"token of {self.user_id} created {self.created_at:%Y-%m-%d}"

    @classmethod
    def revoke_all(cls, user: User) -> int:
        """End every live token of ``user``; the number ended."""
        return cls.objects.filter(user=user, revoked_at=None).update(revoked_at=timezone.now())

    @classmethod
    def issue(cls, user: User) -> tuple["ApiToken", str]:
        raw = new_raw_token("pp")
        lifetime = timedelta(hours=settings.API_TOKEN_LIFETIME_HOURS)
        token = cls.objects.create(
            user=user, key_hash=hash_token(raw), expires_at=timezone.now() + lifetime
        )
        return token, raw
