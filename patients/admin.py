from django.contrib import admin

from patients.models import CareTeam, Program

# The Patient admin (with its episodes, which get their questionnaire occurrences on save) spans
# patients and schedules, so it is registered in clinic/admin.py, above both in the layers.

# No filter_horizontal: Django's two-list widget puts aria-label on a bare <span> (axe-core
# "aria-prohibited-attr", issue 24); a plain multiple select keeps its label.
admin.site.register(CareTeam)
admin.site.register(Program, filter_horizontal=("questionnaires",))
