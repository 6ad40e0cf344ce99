from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SchedulesConfig(AppConfig):
    name = "schedules"
    verbose_name = _("Schedules")

    def ready(self) -> None:
        from questionnaires.services import response_submitted_hook_register
        from schedules.services import occurrence_fulfil

        # A submitted answer completes the occurrence it fulfils, in the transaction that stores
        # it (questionnaires lies below schedules and does not import it).
        response_submitted_hook_register(occurrence_fulfil)
