from django.contrib import admin

from alerts.models import Alert, Rule


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    list_display = ("name", "program", "kind", "severity", "version", "active")


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("patient", "severity", "status", "reason", "raised_at")
    list_filter = ("severity", "status")
