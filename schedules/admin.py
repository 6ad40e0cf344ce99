from django.contrib import admin
from django.http import HttpRequest

from audit.admin_reads import PatientDataAdmin
from schedules.models import MissedOccurrence, Occurrence, Pause, ReminderDelivery, Schedule


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin[Schedule]):
    # Saving runs Schedule.clean(): the spec and the timing are validated there.
    list_display = ("name", "program", "kind", "questionnaire_url", "window", "active")
    list_filter = ("program", "kind", "active")
    # Set when created; its date and time inputs had no labels of their own (axe-core, issue 24).
    readonly_fields = ("created_at",)


@admin.register(Occurrence)
class OccurrenceAdmin(PatientDataAdmin):
    list_display = ("patient", "questionnaire_url", "due_at", "closes_at", "status")
    list_filter = ("status",)
    raw_id_fields = ("patient", "episode", "response", "questionnaire")
    # Status changes go through schedules.services, which records them.
    readonly_fields = ("status", "completed_at", "response")


@admin.register(Pause)
class PauseAdmin(PatientDataAdmin):
    list_display = ("patient", "starts_on", "ends_on", "reason", "withdrawn")
    raw_id_fields = ("patient",)

    def has_change_permission(self, request: HttpRequest, obj: Pause | None = None) -> bool:
        # Creating or ending a pause re-computes occurrences: only through pause_create/pause_end.
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(MissedOccurrence)
class MissedOccurrenceAdmin(PatientDataAdmin):
    patient_path = "occurrence.patient_id"
    list_display = ("occurrence", "recorded_at", "processed_at")


@admin.register(ReminderDelivery)
class ReminderDeliveryAdmin(PatientDataAdmin):
    patient_path = "occurrence.patient_id"
    list_display = ("occurrence", "channel", "kind", "attempted_at", "status", "error")
    list_filter = ("status", "channel")
