from django.contrib import admin
from django.http import HttpRequest

from questionnaires.models import Questionnaire


@admin.register(Questionnaire)
class QuestionnaireAdmin(admin.ModelAdmin[Questionnaire]):
    """A stored version is what responses and scores were made against: its content and scoring
    are read-only here. Changes are new versions (questionnaires.services.questionnaire_revise,
    or POST /fhir/Questionnaire with a new version)."""

    list_display = ("title", "version", "url", "status")
    readonly_fields = ("url", "version", "resource", "scoring", "created_at")

    def has_add_permission(self, request: HttpRequest, obj: Questionnaire | None = None) -> bool:
        # Adding here crashed (issue 24: IntegrityError, NOT NULL resource — the resource is
        # read-only, so the form could never give one). A questionnaire is added by uploading its
        # FHIR file in the programme editor, which shows the import report and a preview first.
        return False
