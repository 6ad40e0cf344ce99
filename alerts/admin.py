from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from alerts.definitions import rule_save
from alerts.models import Alert, EscalationPolicy, Rule, RuleError, RuleOverride, RuleRevision
from audit.admin_reads import PatientDataAdmin
from patients.models import Program


class RuleRevisionInline(admin.TabularInline):
    model = RuleRevision
    extra = 0
    can_delete = False
    readonly_fields = ("version", "kind", "name", "severity", "params", "active", "cooldown", "changed_by",
                       "changed_at", "reason")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    list_display = ("name", "program", "kind", "severity", "version", "active", "safety_net_off_reason")
    list_filter = ("kind", "program", "active")
    readonly_fields = ("version", "safety_net_for")
    inlines = [RuleRevisionInline]

    @admin.display(description=_("Safety net switched off because"))
    def safety_net_off_reason(self, obj: Rule) -> str:
        return obj.switched_off_reason if obj.is_safety_net else ""

    def get_readonly_fields(self, request, obj=None):
        # A safety net is switched off and on with a reason on /rules/safety/, nowhere else.
        if obj is not None and obj.is_safety_net:
            return [f.name for f in Rule._meta.fields]
        return super().get_readonly_fields(request, obj)

    def save_model(self, request, obj, form, change):
        # Through the service: a change bumps the version and keeps the old definition.
        rule_save(rule=obj, by=request.user, reason=request.POST.get("_reason", "changed in admin"))


@admin.register(RuleOverride)
class RuleOverrideAdmin(PatientDataAdmin):
    list_display = ("rule", "patient", "params", "created_by", "created_at", "ended_at")
    readonly_fields = [f.name for f in RuleOverride._meta.fields]

    def has_add_permission(self, request):
        return False  # through alerts.definitions.rule_override_set (patient page), which validates


@admin.register(RuleError)
class RuleErrorAdmin(admin.ModelAdmin):
    list_display = ("rule", "rule_version", "source_key", "error", "at")
    readonly_fields = [f.name for f in RuleError._meta.fields]


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(admin.ModelAdmin):
    list_display = ("care_team", "after", "on_call", "lead")


@admin.register(Alert)
class AlertAdmin(PatientDataAdmin):
    list_display = ("patient", "severity", "status", "reason", "raised_at")
    list_filter = ("severity", "status")


class SafetyNetInline(admin.TabularInline):
    """The programme page shows each instrument's safety net, on or switched off and why
    (issue 19). Read only: switching happens on /rules/safety/, with a reason."""

    model = Rule
    fk_name = "program"
    fields = ("name", "active", "switched_off_because")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name = _("safety net")
    verbose_name_plural = _("Safety nets (switched on and off with a reason on /rules/safety/)")

    @admin.display(description=_("Safety net switched off because"))
    def switched_off_because(self, obj: Rule) -> str:
        return obj.switched_off_reason

    def get_queryset(self, request):
        return super().get_queryset(request).exclude(safety_net_for="")

    def has_add_permission(self, request, obj=None):
        return False


# The programme's admin is patients'; alerts (a later layer) adds its safety nets to the page.
_ProgramAdmin = type(admin.site._registry[Program])
admin.site.unregister(Program)


@admin.register(Program)
class ProgramAdmin(_ProgramAdmin):  # type: ignore[valid-type, misc]
    # Django's two-list widget puts aria-label on a bare <span> (axe-core "aria-prohibited-attr",
    # issue 24): a plain multiple select with its label instead. The editor is the usual path.
    filter_horizontal = ()
    # Set in the programme editor (tick boxes, the publish button), not as JSON or two unlabelled
    # date and time inputs here.
    readonly_fields = (*getattr(_ProgramAdmin, "readonly_fields", ()), "measures", "published_at")
    inlines = [*_ProgramAdmin.inlines, SafetyNetInline]
