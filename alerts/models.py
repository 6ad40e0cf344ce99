from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Severity(models.TextChoices):
    RED = "red", _("Red")
    YELLOW = "yellow", _("Yellow")


class RuleKind(models.TextChoices):
    # The registry (alerts.rules.KINDS) is the source of the kinds; these are their names for
    # people in the admin, so that nobody types "treshold" (tests check the two agree).
    THRESHOLD = "threshold", _("Limit on a measurement")
    ANSWER = "answer", _("A particular answer")
    BANDS = "bands", _("Yellow and red bands on a measurement")
    ANSWER_SEVERITY = "answer-severity", _("The colours of the answers")
    SCORE = "score", _("A score or its worsening")
    CHANGE = "change", _("A change in a measurement (e.g. weight gain)")
    NEWS2 = "news2", _("NEWS2 from home vitals")
    COMBINATION = "combination", _("An answer together with a reading")
    MISSED = "missed", _("A missed questionnaire")
    SAFETY = "safety", _("The questionnaire's safety net")


class Rule(models.Model):
    """A declarative rule attached to a programme. ``params`` is validated by the kind's
    pydantic model (alerts.rules registry) when saved and parsed again when evaluated.

    Change rules through ``alerts.definitions.rule_save``: it bumps ``version`` and keeps the old
    definition as a RuleRevision, so every alert can say which definition raised it."""

    program = models.ForeignKey("patients.Program", on_delete=models.CASCADE, related_name="rules",
                                verbose_name=_("programme"))
    kind = models.CharField(_("kind of rule"), max_length=32, choices=RuleKind.choices)
    name = models.CharField(_("name"), max_length=200)
    # The colour of an alert when the kind does not decide it (four-band thresholds and
    # per-answer colours decide per finding).
    severity = models.CharField(_("colour"), max_length=8, choices=Severity.choices)
    params = models.JSONField(_("parameters"))
    version = models.PositiveIntegerField(_("version"), default=1)
    active = models.BooleanField(_("active"), default=True)
    # After an alert of this rule is resolved, findings of the same or a lower colour within
    # this time are added to it as evidence instead of raising a new alert.
    cooldown = models.DurationField(_("quiet after resolution"), default=timedelta(0))
    # The canonical URL of the instrument whose safety net this rule is (kind "safety"), or "".
    # Created by alerts.safety, never by hand; switched off only with a reason (a RuleRevision).
    safety_net_for = models.CharField(max_length=255, blank=True, default="", editable=False)

    class Meta:
        verbose_name = _("rule")
        verbose_name_plural = _("rules")
        constraints = [
            # One safety net per programme and instrument: two workers that find it missing at
            # the same moment create it once (alerts.safety.safety_rules_ensure).
            models.UniqueConstraint(fields=["program", "safety_net_for"], condition=~models.Q(safety_net_for=""),
                                    name="uniq_safety_net_per_program"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from alerts.rules import parse_params

        parse_params(self.kind, self.params)

    @property
    def is_safety_net(self) -> bool:
        return bool(self.safety_net_for)

    @property
    def switched_off_reason(self) -> str:
        """Why a switched-off safety net is off (the reason of the revision that switched it off)."""
        if self.active:
            return ""
        revision = self.revisions.filter(active=False).order_by("-version").first()
        return revision.reason if revision else ""


class RuleRevision(models.Model):
    """A rule as it was at one version: who changed it, when and why."""

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="revisions")
    version = models.PositiveIntegerField()
    kind = models.CharField(max_length=32)
    name = models.CharField(max_length=200)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    params = models.JSONField()
    active = models.BooleanField()
    cooldown = models.DurationField()
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    changed_at = models.DateTimeField(default=timezone.now)
    reason = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "version"], name="uniq_rule_revision")]

    def __str__(self) -> str:
        return f"{self.rule_id} v{self.version}"


class RuleOverride(models.Model):
    """Per-patient parameters for one rule (e.g. this patient's weight limit), merged over the
    rule's own. Never edited: a change ends the current row and adds a new one, so who changed
    what, when and why stays readable."""

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="overrides")
    patient = models.ForeignKey("patients.Patient", on_delete=models.CASCADE, related_name="rule_overrides")
    params = models.JSONField()
    reason = models.TextField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "patient"], condition=models.Q(ended_at=None), name="uniq_current_rule_override"
            )
        ]

    def __str__(self) -> str:
        return f"override of rule {self.rule_id} for {self.patient_id}"


class Status(models.TextChoices):
    OPEN = "open", _("Open")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged")
    RESOLVED = "resolved", _("Resolved")


class Outcome(models.TextChoices):
    CALLED_PATIENT = "called-patient", _("Called the patient")
    BOOKED_VISIT = "booked-visit", _("Booked a visit")
    CHANGED_TREATMENT = "changed-treatment", _("Changed treatment")
    REFERRED = "referred", _("Referred")
    NO_ACTION = "no-action", _("No action needed")


class Alert(models.Model):
    """One warning sign for one patient and rule, from the first finding until resolved.

    While it is not resolved, new findings of the same rule are added to it (AlertFinding)
    instead of raising another alert: a patient whose weight keeps rising has one alert that
    grows, not one per weighing. A partial unique constraint holds that line."""

    patient = models.ForeignKey("patients.Patient", on_delete=models.CASCADE, related_name="alerts")
    rule = models.ForeignKey(Rule, on_delete=models.PROTECT, related_name="alerts")
    rule_version = models.PositiveIntegerField()
    severity = models.CharField(max_length=8, choices=Severity.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    # The latest finding's reason and evidence (all findings are AlertFinding rows).
    reason = models.TextField()
    evidence = models.JSONField()
    # The finding that raised it: "reading:<id>", "response:<id>", "missed:<id>", ...
    source_key = models.CharField(max_length=64)
    raised_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="assigned_alerts"
    )
    # Steps taken up the escalation ladder while the alert stayed unacknowledged.
    escalation_level = models.PositiveSmallIntegerField(default=0)
    escalated_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    outcome = models.CharField(max_length=24, choices=Outcome.choices, blank=True)
    resolution_note = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "rule"],
                condition=~models.Q(status="resolved"),
                name="uniq_unresolved_alert_per_rule",
            )
        ]
        indexes = [
            # the worklist: open alerts of a set of patients, newest first
            models.Index(fields=["status", "raised_at"], name="alert_status_raised"),
        ]

    def __str__(self) -> str:
        return f"{self.severity} alert {self.pk} ({self.status})"


class AlertFinding(models.Model):
    """One time a rule fired: what it saw, as it was. Unique per (rule, source), so a task
    delivered twice (Celery is at-least-once) adds nothing the second time."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="findings")
    rule = models.ForeignKey(Rule, on_delete=models.PROTECT, related_name="+")
    rule_version = models.PositiveIntegerField()
    source_key = models.CharField(max_length=64)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    reason = models.TextField()
    evidence = models.JSONField()
    found_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rule", "source_key"], name="uniq_finding_rule_source")
        ]

    def __str__(self) -> str:
        return f"finding {self.source_key} of alert {self.alert_id}"


class EventKind(models.TextChoices):
    RAISED = "raised", _("Raised")
    EVIDENCE_ADDED = "evidence-added", _("Evidence added")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged")
    ASSIGNED = "assigned", _("Assigned")
    SNOOZED = "snoozed", _("Snoozed")
    ESCALATED = "escalated", _("Escalated")
    RESOLVED = "resolved", _("Resolved")


class AlertEvent(models.Model):
    """An alert's life as rows: every state change is one immutable event."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=EventKind.choices)
    at = models.DateTimeField(default=timezone.now)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    note = models.TextField(blank=True)
    # Kind-specific facts: the finding added, the assignee, the escalation step, the outcome.
    data = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.kind} {self.alert_id} at {self.at:%Y-%m-%d %H:%M}"


class Snooze(models.Model):
    """"This patient's SpO2 is usually 90-92 %": findings on ``measure`` whose value lies within
    [low, high] are not alerts until ``until``. The rule still fires beyond the snoozed level."""

    patient = models.ForeignKey("patients.Patient", on_delete=models.CASCADE, related_name="snoozes")
    measure = models.CharField(max_length=32)
    component = models.CharField(max_length=8, default="value")  # "value2": diastolic
    low = models.DecimalField(max_digits=9, decimal_places=3, null=True, blank=True)
    high = models.DecimalField(max_digits=9, decimal_places=3, null=True, blank=True)
    until = models.DateTimeField()
    reason = models.TextField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"snooze {self.measure} {self.low}-{self.high} for {self.patient_id} until {self.until:%Y-%m-%d}"

    def covers(self, measure: str, component: str, value: Decimal, at: datetime) -> bool:
        if self.ended_at is not None or at >= self.until or (measure, component) != (self.measure, self.component):
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


class RuleError(models.Model):
    """A rule that raised an exception on some input. Recorded and shown to administrators;
    the other rules of the batch still run."""

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="errors")
    rule_version = models.PositiveIntegerField()
    source_key = models.CharField(max_length=64)
    error = models.TextField()
    at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"rule {self.rule_id} failed on {self.source_key}"


class EscalationPolicy(models.Model):
    """How a team's red alerts climb when nobody acknowledges them: after ``after`` the on-call
    nurse is notified, after twice that the team lead. Driven by a periodic job from database
    state (alerts.escalation.alerts_escalate), so a restart never loses a pending step."""

    care_team = models.OneToOneField("patients.CareTeam", on_delete=models.CASCADE, related_name="escalation",
                                     verbose_name=_("care team"))
    after = models.DurationField(_("on-call notified after"), default=timedelta(minutes=30))
    on_call = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("on-call nurse"),
    )
    lead = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("team lead"),
    )

    class Meta:
        verbose_name = _("escalation policy")
        verbose_name_plural = _("escalation policies")

    def __str__(self) -> str:
        return f"escalation of {self.care_team_id} after {self.after}"


class DeliveryStatus(models.TextChoices):
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")


class Notification(models.Model):
    """One attempt to tell someone about an alert — or about an overdue review of a response
    (alerts.review_escalation): exactly one of ``alert`` and ``response`` — through one transport
    (alerts/transports/), with its error if it failed. Claimed by inserting the "sending" row
    first, so a re-delivered task does not notify twice."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="notifications", null=True, blank=True)
    response = models.ForeignKey("questionnaires.QuestionnaireResponse", on_delete=models.CASCADE,
                                 related_name="+", null=True, blank=True)
    channel = models.CharField(max_length=32)
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=32)  # e.g. "escalation-1", "review-escalation-1"
    attempted_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=8, choices=DeliveryStatus.choices, default=DeliveryStatus.SENDING)
    error = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["alert", "channel", "recipient", "reason"],
                condition=~models.Q(status="failed"),
                name="uniq_notification_attempt",
            ),
            # The same claim for overdue reviews (NULL alert ids never collide above).
            models.UniqueConstraint(
                fields=["response", "channel", "recipient", "reason"],
                condition=~models.Q(status="failed") & models.Q(response__isnull=False),
                name="uniq_review_notification_attempt",
            ),
            models.CheckConstraint(
                condition=models.Q(alert__isnull=False, response__isnull=True)
                | models.Q(alert__isnull=True, response__isnull=False),
                name="notification_about_one_thing",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} to {self.recipient_id} about {self.alert_id or self.response_id}: {self.status}"


class ReviewEscalation(models.Model):
    """One step of the escalation ladder climbed for a response whose review is overdue
    (alerts.review_escalation): the same ladder as red alerts (EscalationPolicy), counted from
    the response's ``review_due_at``. The unique (response, level) is the claim: two beat runs
    at once record a step once, and the ladder's position is read from these rows."""

    response = models.ForeignKey("questionnaires.QuestionnaireResponse", on_delete=models.CASCADE,
                                 related_name="review_escalations")
    level = models.PositiveSmallIntegerField()
    at = models.DateTimeField(default=timezone.now)
    recipients = models.JSONField(default=list)  # user ids notified at this step
    teams = models.JSONField(default=list)  # care team ids whose policies applied

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["response", "level"], name="uniq_review_escalation_step"),
        ]

    def __str__(self) -> str:
        return f"review of response {self.response_id} escalated to step {self.level}"


# The evaluation inbox's table belongs to this app; its model lives with the rest of the inbox.
from alerts.evaluation.models import PendingEvaluation  # noqa: E402, F401
