from typing import Any

from django import forms
from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from smart.models import SystemAccessToken, SystemClient


@admin.register(SystemClient)
class SystemClientAdmin(admin.ModelAdmin[SystemClient]):
    list_display = ("client_id", "name", "allowed_scopes", "identified_allowed", "active", "created_at")
    list_filter = ("active", "identified_allowed")
    search_fields = ("client_id", "name")
    readonly_fields = ("created_at",)

    def formfield_for_dbfield(self, db_field: models.Field[Any, Any], request: HttpRequest,
                              **kwargs: Any) -> forms.Field | None:
        if db_field.name == "jwks_uri":
            kwargs["assume_scheme"] = "https"  # the address must be HTTPS anyway (SystemClient.clean)
        return super().formfield_for_dbfield(db_field, request, **kwargs)


@admin.register(SystemAccessToken)
class SystemAccessTokenAdmin(admin.ModelAdmin[SystemAccessToken]):
    """Issued tokens, to see which client holds what; the raw token is never stored."""

    list_display = ("client", "scopes", "created_at", "expires_at")
    list_filter = ("client",)
    readonly_fields = [f.name for f in SystemAccessToken._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
