from django.contrib import admin

from patients.models import CareTeam, Patient, Program, TreatmentEpisode


class EpisodeInline(admin.TabularInline):
    model = TreatmentEpisode
    extra = 0


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = ("given_name", "family_name", "birth_date", "sex")
    search_fields = ("family_name", "given_name")
    inlines = [EpisodeInline]


admin.site.register(CareTeam, filter_horizontal=("members",))
admin.site.register(Program, filter_horizontal=("questionnaires",))
