from django.contrib import admin

from questionnaires.models import Questionnaire


@admin.register(Questionnaire)
class QuestionnaireAdmin(admin.ModelAdmin):
    """A stored version is what responses and scores were made against: its content and scoring
    are read-only here. Changes are new versions (questionnaires.services.questionnaire_revise,
    or POST /fhir/Questionnaire with a new version)."""

    list_display = ("title", "version", "url", "status")
    readonly_fields = ("url", "version", "resource", "scoring", "created_at")
