from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l
from django_stubs_ext import StrOrPromise

from accounts.http import AuthenticatedHttpRequest
from audit.admin_reads import PatientDataAdmin
from monitoring.measures import MEASURES
from monitoring.models import Device, DeviceLending, DeviceToken, Reading
from monitoring.services import device_token_issue, device_token_revoke


class DeviceTokenInline(admin.TabularInline[DeviceToken, Device]):
    """Tokens are shown once, when issued (the action below); here only their dates."""

    model = DeviceToken
    extra = 0
    fields = ("created_at", "revoked_at")
    readonly_fields = ("created_at", "revoked_at")
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Device | None = None) -> bool:
        return False


class DeviceLendingInline(admin.TabularInline[DeviceLending, Device]):
    """The device's history (ADR 0015), written by the lending services: read only. The
    periods only: naming the patients would show earlier patients on this device's page, reads
    the audit of this page (the device's current patient) would not record."""

    model = DeviceLending
    extra = 0
    fields = ("lent_from", "lent_to", "returned_on", "created_at")
    readonly_fields = fields
    can_delete = False
    ordering = ("-lent_from",)

    def has_add_permission(self, request: HttpRequest, obj: Device | None = None) -> bool:
        return False


@admin.register(Device)
class DeviceAdmin(PatientDataAdmin):
    list_display = ("kind", "serial", "model", "patient", "lent_from", "lent_to", "returned_on")
    list_filter = ("kind",)
    search_fields = ("serial", "model")
    inlines = [DeviceLendingInline, DeviceTokenInline]

    def save_model(self, request: HttpRequest, obj: Device, form: forms.ModelForm[Device], change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:  # registered here: its first lending starts the history
            DeviceLending.objects.get_or_create(device=obj, lent_from=obj.lent_from,
                                                defaults={"patient": obj.patient, "lent_to": obj.lent_to})
    actions = ["issue_token", "revoke_tokens"]

    def get_readonly_fields(self, request: HttpRequest, obj: Device | None = None) -> tuple[str, ...]:
        # Lending a device to another patient revokes its tokens and is audited: that goes through
        # the device pages (monitoring.services.device_lend/device_return), not an edit of the row,
        # after which the old token would write into the new patient's record.
        return ("patient", "lent_from", "lent_to", "returned_on") if obj is not None else ("returned_on",)

    # The actions go through the same services as the clinicians' device pages, so the rules
    # (one live token per device, none for a returned device) and the audit rows are the same.
    @admin.action(description=_l("Issue a new token (shown once; earlier tokens are revoked)"))
    def issue_token(self, request: AuthenticatedHttpRequest, queryset: QuerySet[Device]) -> None:
        for device in queryset:
            try:
                _token, raw = device_token_issue(device=device, by=request.user, request=request)
            except ValidationError as exc:
                messages.error(request, f"{device}: {' '.join(exc.messages)}")  # the service's words
                continue
            # The raw token exists only in this message; the database keeps its hash.
            messages.warning(request, _("Token for %(device)s: %(token)s — copy it into the device now; "
                                        "it cannot be shown again.") % {"device": device, "token": raw})

    @admin.action(description=_l("Revoke all tokens (the device is refused at once)"))
    def revoke_tokens(self, request: AuthenticatedHttpRequest, queryset: QuerySet[Device]) -> None:
        revoked = sum(device_token_revoke(device=device, by=request.user, request=request) for device in queryset)
        messages.success(request, _("Tokens revoked: %(n)s.") % {"n": revoked})


class MeasureFilter(admin.SimpleListFilter):
    """The measures by their names ("Iltmætning (SpO2)"), not their codes ("spo2"): the model's
    choices are the codes, which the readings' stored rows and the API use."""

    title = _l("measurement")
    parameter_name = "measure"

    def lookups(self, request: HttpRequest, model_admin: "admin.ModelAdmin[Any]") -> list[tuple[str, StrOrPromise]]:
        return [(code, measure.label) for code, measure in MEASURES.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(measure=self.value()) if self.value() else queryset


@admin.register(Reading)
class ReadingAdmin(PatientDataAdmin):
    list_display = ("patient", "measure_name", "value", "value2", "unit", "effective_at", "source", "unusual")
    list_filter = (MeasureFilter, "source", "unusual")

    @admin.display(description=_l("measurement"), ordering="measure")
    def measure_name(self, obj: Reading) -> str:
        measure = MEASURES.get(obj.measure)
        return str(measure.label) if measure is not None else obj.measure
