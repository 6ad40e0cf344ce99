from django.apps import AppConfig
from django.db.models import Exists, OuterRef


class QuestionnairesConfig(AppConfig):
    name = "questionnaires"

    def ready(self) -> None:
        from patients.access import unfinished_work_register

        # Completed answers nobody has marked as reviewed keep the team's access to the patient
        # after the grace period (patients.access.patients_for).
        unfinished_work_register("questionnaires.unreviewed", _answers_unreviewed)


def _answers_unreviewed(patient: OuterRef) -> Exists:
    from questionnaires.models import QuestionnaireResponse, ResponseStatus

    return Exists(QuestionnaireResponse.objects.filter(patient=patient, status=ResponseStatus.COMPLETED,
                                                       review__isnull=True))
