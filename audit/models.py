from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


# Labels in English as Django derived them before (so no migration), through gettext for the
# Danish admin.
class Action(models.TextChoices):
    READ = "read", _("Read")
    SEARCH = "search", _("Search")
    CREATE = "create", _("Create")
    UPDATE = "update", _("Update")
    EXPORT = "export", _("Export")
    LOGIN = "login", _("Login")


class Outcome(models.TextChoices):
    ALLOWED = "allowed", _("Allowed")
    DENIED = "denied", _("Denied")


class AppendOnlyError(Exception):
    pass


class AuditEvent(models.Model):
    """Who did what to which patient's data, when, from where. Append-only.

    Rows are never updated or deleted: the model refuses it, and on PostgreSQL a trigger
    (migration 0002) refuses it for raw SQL too. ``patient_ref`` is a plain UUID, not a foreign
    key, so the trail outlives the patient row and cannot be cascaded away."""

    at = models.DateTimeField(default=timezone.now)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, null=True, db_constraint=False
    )
    username = models.CharField(max_length=150, blank=True)
    role = models.CharField(max_length=16, blank=True)
    patient_ref = models.UUIDField(null=True, blank=True)
    action = models.CharField(max_length=8, choices=Action.choices)
    resource = models.CharField(max_length=300)
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        indexes = [
            # "who saw this patient's data?" — the question patients ask (mission: trust)
            models.Index(fields=["patient_ref", "at"], name="audit_patient_at"),
            models.Index(fields=["user", "at"], name="audit_user_at"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.username} {self.action} {self.resource} {self.outcome}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("Audit events cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Audit events cannot be deleted.")
