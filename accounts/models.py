import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    PATIENT = "patient", _("Patient")
    # A relative or carer who may answer questionnaires for patients who granted it.
    RELATIVE = "relative", _("Relative")
    CLINICIAN = "clinician", _("Clinician")
    QUALITY = "quality", _("Quality staff")
    ADMIN = "admin", _("Administrator")


class User(AbstractUser):
    """A person who logs in. What they may see follows from ``role`` (see patients.access)."""

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.PATIENT)

    @property
    def is_staff_role(self) -> bool:
        return self.role in {Role.CLINICIAN, Role.QUALITY, Role.ADMIN}


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
    def issue(cls, user: User) -> tuple["ApiToken", str]:
        raw = new_raw_token("pp")
        lifetime = timedelta(hours=settings.API_TOKEN_LIFETIME_HOURS)
        token = cls.objects.create(
            user=user, key_hash=hash_token(raw), expires_at=timezone.now() + lifetime
        )
        return token, raw
