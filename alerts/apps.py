from typing import Any

from django.apps import AppConfig
from django.db.models import Exists, OuterRef
from django.utils.translation import gettext_lazy as _


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = _("Alerts")  # the admin's section heading and breadcrumbs, in Danish

    def ready(self) -> None:
        from django.db.models.signals import m2m_changed

        from alerts.evaluation.dispatch import task_sender_set
        from alerts.evaluation.tasks import evaluate_send
        from patients.access import unfinished_work_register
        from patients.models import Program

        m2m_changed.connect(_questionnaires_joined, sender=Program.questionnaires.through,
                            dispatch_uid="alerts.safety_net")
        # An alert not resolved keeps the team's access to the patient after the grace period
        # (patients.access.patients_for): never an open alert on nobody's worklist.
        unfinished_work_register("alerts.unresolved", _alert_unresolved)
        # The inbox's enqueue side, imported by the source apps, queues the evaluation task
        # without importing it (the task imports the rules and, through them, the source apps).
        task_sender_set(evaluate_send)


def _alert_unresolved(patient: OuterRef) -> Exists:
    from alerts.models import Alert, Status

    return Exists(Alert.objects.filter(patient=patient, status__in=(Status.OPEN, Status.ACKNOWLEDGED)))


def _questionnaires_joined(sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kwargs: Any) -> None:
    """A questionnaire joined a programme (either side of the m2m): give it its safety net there
    (alerts.safety). Every way of adding — the admin, the demo, code — goes through this."""
    if action != "post_add" or not pk_set:
        return
    from alerts.safety import safety_rules_ensure_for_questionnaires

    if reverse:  # questionnaire.programs.add(program, ...)
        safety_rules_ensure_for_questionnaires(program_ids=pk_set, questionnaire_ids=[instance.pk])
    else:
        safety_rules_ensure_for_questionnaires(program_ids=[instance.pk], questionnaire_ids=pk_set)
