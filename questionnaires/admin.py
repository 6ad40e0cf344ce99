from django.contrib import admin

from questionnaires.models import Questionnaire


@admin.register(Questionnaire)
class QuestionnaireAdmin(admin.ModelAdmin):
    list_display = ("title", "version", "url", "status")
