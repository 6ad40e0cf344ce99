from django.contrib import admin

from smart.models import SystemAccessToken, SystemClient


@admin.register(SystemClient)
class SystemClientAdmin(admin.ModelAdmin):
    list_display = ("client_id", "name", "allowed_scopes", "identified_allowed", "active", "created_at")
    list_filter = ("active", "identified_allowed")
    search_fields = ("client_id", "name")
    readonly_fields = ("created_at",)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "jwks_uri":
            kwargs["assume_scheme"] = "https"  # the address must be HTTPS anyway (SystemClient.clean)
        return super().formfield_for_dbfield(db_field, request, **kwargs)


@admin.register(SystemAccessToken)
class SystemAccessTokenAdmin(admin.ModelAdmin):
    """Issued tokens, to see which client holds what; the raw token is never stored."""

    list_display = ("client", "scopes", "created_at", "expires_at")
    list_filter = ("client",)
    readonly_fields = [f.name for f in SystemAccessToken._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
