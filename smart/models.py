"""System clients of SMART Backend Services (ADR 0018): registered by an administrator, they
authenticate with a JWT signed by their own private key and get short-lived access tokens."""

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from smart.jwks import jwks_parse
from smart.scopes import READ_ONLY, ScopeError, scopes_parse

CLIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{2,99}")


class SystemClient(models.Model):
    """A backend service (e.g. a quality database pulling $export). It acts for itself, never for
    a person: audit rows name it as ``system:<client_id>``."""

    client_id = models.CharField(
        _("client id"), max_length=100, unique=True,  # looked up on every token request
        validators=[RegexValidator(CLIENT_ID, _("3-100 letters, digits and . _ : -"))],
        help_text=_("The client's iss and sub in its signed assertions."))
    name = models.CharField(_("name"), max_length=200)
    jwks = models.JSONField(_("public keys (JWKS)"), null=True, blank=True,
                            help_text=_('The client\'s public JWKS, {"keys": [...]}: RSA (RS384) or EC P-384 '
                                        "(ES384) keys, each with a kid. Never a private key."))
    jwks_uri = models.URLField(_("JWKS address"), blank=True,
                               help_text=_("HTTPS address where the client publishes its public keys."))
    allowed_scopes = models.TextField(
        _("allowed scopes"),
        help_text=_("Space-separated read scopes, e.g. system/Patient.read system/Observation.rs or "
                    "system/*.read."))
    identified_allowed = models.BooleanField(
        _("may receive identified data"), default=False,
        help_text=_("Off: $export is pseudonymised only and patient data cannot be read over FHIR (ADR 0007)."))
    identified_purpose = models.TextField(_("purpose of identified access"), blank=True)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("system client")
        verbose_name_plural = _("system clients")

    def __str__(self) -> str:
        return f"{self.name} ({self.client_id})"

    def clean(self) -> None:
        errors: dict[str, Any] = {}
        if not self.jwks and not self.jwks_uri:
            errors["jwks"] = _("Give the client's public keys or the address where it publishes them.")
        if self.jwks:
            try:
                jwks_parse(self.jwks)
            except ValidationError as exc:
                errors["jwks"] = exc.messages
        if self.jwks_uri and not self.jwks_uri.startswith("https://"):
            errors["jwks_uri"] = _("The JWKS address must use HTTPS.")
        try:
            scopes = scopes_parse(self.allowed_scopes or "")
            if not scopes:
                errors["allowed_scopes"] = _("Give at least one scope.")
            elif any(not s.perms <= READ_ONLY for s in scopes):
                errors["allowed_scopes"] = _("System clients may only read: use .read or .rs scopes.")
        except ScopeError as exc:
            errors["allowed_scopes"] = str(exc)
        if self.identified_allowed and len(self.identified_purpose.strip()) < 10:
            errors["identified_purpose"] = _("State why this client may receive identified data "
                                             "(at least 10 characters).")
        if errors:
            raise ValidationError(errors)

    @property
    def actor(self) -> str:
        """How audit rows name this client."""
        return f"system:{self.client_id}"


class UsedAssertion(models.Model):
    """The ``jti`` of every client assertion accepted, kept until the assertion expires: inserting
    it is the claim, so a replayed assertion fails on the unique constraint even when two copies
    arrive at once. Rows past ``expires_at`` are deleted by beat (smart.tasks)."""

    client = models.ForeignKey(SystemClient, on_delete=models.CASCADE, related_name="+")
    jti = models.CharField(max_length=255)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client", "jti"], name="smart_assertion_jti_once")]
        # the cleanup: assertions past their expiry
        indexes = [models.Index(fields=["expires_at"], name="smart_assertion_expiry")]

    def __str__(self) -> str:
        return f"assertion {self.jti[:40]} of {self.client_id}"


class SystemAccessToken(models.Model):
    """An access token issued to a system client; only its SHA-256 hash is stored (as ApiToken)."""

    client = models.ForeignKey(SystemClient, on_delete=models.CASCADE, related_name="+")
    key_hash = models.CharField(max_length=64, unique=True)  # serves the lookup on every request
    scopes = models.TextField()  # granted, space-separated (smart.scopes form)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        # the cleanup of expired tokens
        indexes = [models.Index(fields=["expires_at"], name="smart_token_expiry")]

    def __str__(self) -> str:
        return f"token of {self.client_id} until {self.expires_at:%Y-%m-%d %H:%M}"
