from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Severity(models.TextChoices):
    RED = "red", _("Red")
    YELLOW = "yellow", _("Yellow")


class Rule(models.Model):
    """A declarative rule attached to a programme. ``params`` is validated by the kind's
    pydantic model (alerts.rules registry) when saved and parsed again when evaluated."""

    program = models.ForeignKey("patients.Program", on_delete=models.CASCADE, related_name="rules")
    kind = models.CharField(max_length=32)
    name = models.CharField(max_length=200)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    params = models.JSONField()
    version = models.PositiveIntegerField(default=1)
    active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from alerts.rules import parse_params

        parse_params(self.kind, self.params)


class Status(models.TextChoices):
    OPEN = "open", _("Open")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged")
    RESOLVED = "resolved", _("Resolved")


class Alert(models.Model):
    patient = models.ForeignKey("patients.Patient", on_delete=models.CASCADE, related_name="alerts")
    rule = models.ForeignKey(Rule, on_delete=models.PROTECT, related_name="alerts")
    rule_version = models.PositiveIntegerField()
    severity = models.CharField(max_length=8, choices=Severity.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    reason = models.TextField()
    # What the rule fired on, as it was then (values, times, the answer text).
    evidence = models.JSONField()
    # "reading:<id>" or "response:<id>". With ``rule`` it makes evaluation idempotent.
    source_key = models.CharField(max_length=64)
    raised_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            # A task delivered twice (Celery is at-least-once) raises one alert, not two.
            models.UniqueConstraint(fields=["rule", "source_key"], name="uniq_alert_rule_source")
        ]
        indexes = [
            # the worklist: open alerts of a set of patients, newest first
            models.Index(fields=["status", "raised_at"], name="alert_status_raised"),
        ]

    def __str__(self) -> str:
        return f"{self.severity} alert {self.pk} ({self.status})"


class EventKind(models.TextChoices):
    RAISED = "raised", _("Raised")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged")


class AlertEvent(models.Model):
    """An alert's life as rows: every state change is one immutable event."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=EventKind.choices)
    at = models.DateTimeField(default=timezone.now)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    note = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{self.kind} {self.alert_id} at {self.at:%Y-%m-%d %H:%M}"
