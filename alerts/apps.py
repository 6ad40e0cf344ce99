from typing import Any

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = _("Alerts")  # the admin's section heading and breadcrumbs, in Danish

    def ready(self) -> None:
        from django.db.models.signals import m2m_changed

        from patients.models import Program

        m2m_changed.connect(_questionnaires_joined, sender=Program.questionnaires.through,
                            dispatch_uid="alerts.safety_net")


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
