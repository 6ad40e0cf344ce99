from django.contrib import admin

from patients.models import CareTeam, Program

# The Patient admin (with its episodes, which get their questionnaire occurrences on save) spans
# patients and schedules, so it is registered in clinic/admin.py, above both in the layers.

admin.site.register(CareTeam, filter_horizontal=("members",))
admin.site.register(Program, filter_horizontal=("questionnaires",))
