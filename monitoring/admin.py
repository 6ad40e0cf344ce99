from django.contrib import admin

from monitoring.models import Device, Reading


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ("kind", "serial", "patient", "lent_from", "lent_to")


@admin.register(Reading)
class ReadingAdmin(admin.ModelAdmin):
    list_display = ("patient", "measure", "value", "unit", "effective_at", "source")
    list_filter = ("measure", "source")
