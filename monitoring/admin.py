from django.contrib import admin, messages
from django.utils import timezone

from audit.models import Action
from audit.services import audit_record
from monitoring.models import Device, DeviceToken, Reading


class DeviceTokenInline(admin.TabularInline):
    """Tokens are shown once, when issued (the action below); here only their dates."""

    model = DeviceToken
    extra = 0
    fields = ("created_at", "revoked_at")
    readonly_fields = ("created_at", "revoked_at")
    can_delete = False

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ("kind", "serial", "model", "patient", "lent_from", "lent_to")
    list_filter = ("kind",)
    search_fields = ("serial", "model")
    inlines = [DeviceTokenInline]
    actions = ["issue_token", "revoke_tokens"]

    @admin.action(description="Issue a new token (shown once; earlier tokens are revoked)")
    def issue_token(self, request, queryset):  # type: ignore[no-untyped-def]
        for device in queryset:
            DeviceToken.objects.filter(device=device, revoked_at=None).update(revoked_at=timezone.now())
            _token, raw = DeviceToken.issue(device)
            audit_record(user=request.user, action=Action.CREATE, resource=f"DeviceToken for Device/{device.pk}",
                         patient_id=device.patient_id, request=request)
            # The raw token exists only in this message; the database keeps its hash.
            messages.warning(request, f"Token for {device}: {raw} — copy it into the device now; "
                                      "it cannot be shown again.")

    @admin.action(description="Revoke all tokens (the device is refused at once)")
    def revoke_tokens(self, request, queryset):  # type: ignore[no-untyped-def]
        revoked = DeviceToken.objects.filter(device__in=queryset, revoked_at=None).update(revoked_at=timezone.now())
        for device in queryset:
            audit_record(user=request.user, action=Action.UPDATE, resource=f"DeviceToken of Device/{device.pk} revoke",
                         patient_id=device.patient_id, request=request)
        messages.success(request, f"{revoked} token(s) revoked.")


@admin.register(Reading)
class ReadingAdmin(admin.ModelAdmin):
    list_display = ("patient", "measure", "value", "value2", "unit", "effective_at", "source", "unusual")
    list_filter = ("measure", "source", "unusual")
