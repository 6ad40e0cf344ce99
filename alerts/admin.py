from typing import Any

from django.contrib import admin
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from alerts.models import Alert, EscalationPolicy, Rule, RuleError, RuleOverride, RuleRevision
from alerts.params_words import params_in_words, questionnaire_titles
from audit.admin_reads import PatientDataAdmin
from patients.models import Program


def _words(params: dict[str, Any]) -> str:
    try:
        words = params_in_words(params, questionnaire_titles([params.get("questionnaire")]))
    except Exception:  # noqa: BLE001 - an old definition the words cannot describe is still shown
        return "–"
    return "; ".join(f"{label}: {value}" for label, value in words) or "–"


class RuleRevisionInline(admin.TabularInline[RuleRevision, Rule]):
    model = RuleRevision
    extra = 0
    can_delete = False
    fields = ("version", "name", "severity", "parameters", "active", "cooldown", "changed_by", "changed_at",
              "reason")
    readonly_fields = fields

    @admin.display(description=_("Parameters"))
    def parameters(self, obj: RuleRevision) -> str:
        return _words(obj.params)

    def has_add_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin[Rule]):
    """Read only (issue 24): a rule is added and changed in the programme editor's typed form,
    which checks each parameter next to its field, tries the change on the last 90 days and asks
    why — not as a JSON blob here. Its page here shows the parameters in words, the history and a
    link to that form; a safety net links to /rules/safety/, where it is switched with a reason."""

    list_display = ("name", "program", "kind", "severity", "version", "active", "safety_net_off_reason")
    list_filter = ("kind", "program", "active")
    fields = ("name", "program", "kind", "severity", "parameters", "cooldown", "active", "version",
              "safety_net_for", "where_to_change")
    readonly_fields = fields
    inlines = [RuleRevisionInline]

    @admin.display(description=_("Safety net switched off because"))
    def safety_net_off_reason(self, obj: Rule) -> str:
        return obj.switched_off_reason if obj.is_safety_net else ""

    @admin.display(description=_("Parameters"))
    def parameters(self, obj: Rule) -> str:
        return _words(obj.params)

    @admin.display(description=_("Change it"))
    def where_to_change(self, obj: Rule) -> str:
        if obj.is_safety_net:
            return format_html('<a href="{}">{}</a>', reverse("rules-safety"),
                               _("Switch the safety net on or off, with a reason"))
        return format_html('<a href="{}">{}</a>', reverse("editor-rule", args=[obj.program_id, obj.pk]),
                           _("Change the rule in the programme editor (typed form, trial on the last 90 days)"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # in the programme editor: /programmes/<id>/rules/new/<kind>/

    def has_change_permission(self, request: HttpRequest, obj: Rule | None = None) -> bool:
        return False  # shown read only; changed in the programme editor


@admin.register(RuleOverride)
class RuleOverrideAdmin(PatientDataAdmin):
    list_display = ("rule", "patient", "params", "created_by", "created_at", "ended_at")
    readonly_fields = [f.name for f in RuleOverride._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # through alerts.definitions.rule_override_set (patient page), which validates


@admin.register(RuleError)
class RuleErrorAdmin(admin.ModelAdmin[RuleError]):
    list_display = ("rule", "rule_version", "source_key", "error", "at")
    readonly_fields = [f.name for f in RuleError._meta.fields]


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(admin.ModelAdmin[EscalationPolicy]):
    list_display = ("care_team", "after", "on_call", "lead")


@admin.register(Alert)
class AlertAdmin(PatientDataAdmin):
    list_display = ("patient", "severity", "status", "reason", "raised_at")
    list_filter = ("severity", "status")


class SafetyNetInline(admin.TabularInline[Rule, Program]):
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

    def get_queryset(self, request: HttpRequest) -> QuerySet[Rule]:
        return super().get_queryset(request).exclude(safety_net_for="")

    def has_add_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False


# The programme's admin is patients'; alerts (a later layer) adds its safety nets to the page.
_ProgramAdmin = type(admin.site._registry[Program])
admin.site.unregister(Program)


@admin.register(Program)
class ProgramAdmin(_ProgramAdmin):  # type: ignore[valid-type, misc]  # a base found at run time (above)
    # Django's two-list widget puts aria-label on a bare <span> (axe-core "aria-prohibited-attr",
    # issue 24): a plain multiple select with its label instead. The editor is the usual path.
    filter_horizontal = ()
    # Set in the programme editor (tick boxes, the publish button), not as JSON or two unlabelled
    # date and time inputs here.
    readonly_fields = (*getattr(_ProgramAdmin, "readonly_fields", ()), "measures", "published_at")
    inlines = [*_ProgramAdmin.inlines, SafetyNetInline]
