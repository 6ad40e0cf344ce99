from django.contrib import admin

from exports.models import Destination, ExportJob, SendRecord


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    list_display = ("id", "requester", "client", "kind", "status", "progress", "created_at", "finished_at",
                    "expires_at")
    list_filter = ("status", "kind")
    readonly_fields = [f.name for f in ExportJob._meta.fields]


@admin.register(Destination)
class DestinationAdmin(admin.ModelAdmin):
    list_display = ("name", "base_url", "auth_env", "active")


@admin.register(SendRecord)
class SendRecordAdmin(admin.ModelAdmin):
    list_display = ("created_at", "cohort_name", "destination", "requested_by", "status", "bundle_count",
                    "resource_count", "http_status")
    list_filter = ("status", "destination")
    readonly_fields = [f.name for f in SendRecord._meta.fields]
