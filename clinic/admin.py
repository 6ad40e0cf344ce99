"""Admin registrations that span several apps: a patient with their treatment episodes, where a
new episode gets its questionnaire occurrences (schedules) at once."""

from functools import partial
from typing import Any

from django.contrib import admin
from django.db import transaction
from django.http import HttpRequest

from audit.admin_reads import PatientDataAdmin
from patients.models import Patient, TreatmentEpisode
from schedules.tasks import generate_occurrences_for_episode


class EpisodeInline(admin.TabularInline[TreatmentEpisode, Patient]):
    model = TreatmentEpisode
    extra = 0


@admin.register(Patient)
class PatientAdmin(PatientDataAdmin):
    # No CPR in the list: it is shown (and audited) only on the one patient's page.
    list_display = ("given_name", "family_name", "birth_date", "sex")
    search_fields = ("family_name", "given_name")
    inlines = [EpisodeInline]
    patient_path = "pk"

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        super().save_formset(request, form, formset, change)
        if formset.model is TreatmentEpisode:
            # A new episode gets its questionnaire occurrences now, not at the daily sweep.
            for episode in formset.new_objects:
                transaction.on_commit(partial(generate_occurrences_for_episode.delay, episode.pk), robust=True)
