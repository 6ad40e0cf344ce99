"""The evaluation inbox: one row per piece of work the rules still have to do, whatever its source."""

from django.db import models
from django.utils import timezone


class Source(models.TextChoices):
    """What an inbox row asks the rules to look at; its ``object_ids`` are ids of that model."""

    READING = "reading", "reading"  # monitoring.Reading: the readings one ingest transaction stored
    RESPONSE = "response", "response"  # questionnaires.QuestionnaireResponse: one completed answer
    MISSED = "missed", "missed"  # schedules.MissedOccurrence: one occurrence nobody answered


class PendingEvaluation(models.Model):
    """Work the rules have not done yet (ADR 0020): written by the source app in the transaction
    that stores the source rows (``alerts.evaluation.enqueue``), deleted in the transaction that
    evaluates them (the claim), so the work is done exactly once in effect: a worker killed
    half-way rolls the delete back with the alerts, a task delivered twice finds the row gone.

    One narrow row per ingest batch (a thousand readings, one row) instead of a flag on every
    source row: setting a flag rewrote each reading and its index entries a second time (ADR 0009).
    ``not_before`` holds work back: a missed questionnaire waits for its rules' grace periods."""

    source = models.CharField(max_length=16, choices=Source.choices)
    object_ids = models.JSONField()
    size = models.PositiveIntegerField()  # len(object_ids): coalescing and the sweep group by it
    created_at = models.DateTimeField(default=timezone.now)
    not_before = models.DateTimeField(default=timezone.now)

    class Meta:
        app_label = "alerts"
        indexes = [
            # coalescing: the reading batches created lately (alerts.evaluation.readings)
            models.Index(fields=["created_at"], name="inbox_created"),
            # the sweep: work due for a while that no task has claimed (alerts.evaluation.sweep)
            models.Index(fields=["not_before"], name="inbox_not_before"),
        ]

    def __str__(self) -> str:
        return f"{self.size} {self.source} pending since {self.created_at:%Y-%m-%d %H:%M:%S}"
