"""The administrator's back-testing page: replay the current rules against the last N days and
compare them with a candidate set (alerts.backtest). A page for people: typed fields only — how
many days, when alerts count as resolved, and which rules to leave out. A changed rule is tried
from its own typed form in the programme editor ("Try it on the last 90 days"); a candidate
written as JSON (several new and changed rules at once) goes to the REST endpoint
``POST /api/v1/rules/backtest`` (alerts.api_backtest), never to this page."""

from datetime import timedelta
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from accounts.decorators import role_required
from accounts.http import AuthenticatedHttpRequest
from accounts.models import Role
from alerts.backtest import MAX_DAYS, Result, backtest_run
from alerts.models import Rule, RuleKind
from alerts.params_words import params_in_words, questionnaire_titles
from audit.models import Action
from audit.services import audit_record
from patients.access import patients_for
from patients.models import Program
from proplatform.forms import DescribedForm, IntegerTextField


class BacktestForm(DescribedForm):
    days = IntegerTextField(
        label=_("Days back"), min_value=1, max_value=MAX_DAYS, initial=30,
        help_text=_("The replay covers this many days up to now."),
        error_messages={"required": _("Give the number of days."),
                        "invalid": _("Give a whole number of days.")})
    resolve_after_hours = IntegerTextField(
        label=_("Alerts count as resolved after (hours)"), min_value=1, max_value=24 * MAX_DAYS, required=False,
        help_text=_("Leave empty to assume nobody resolves an alert within the period."),
        error_messages={"invalid": _("Give a whole number of hours.")})
    leave_out = forms.MultipleChoiceField(
        label=_("Rules to leave out of the candidate"), required=False, widget=forms.CheckboxSelectMultiple,
        help_text=_("The candidate is the current rules without the ticked ones."),
        error_messages={"invalid_choice": _("Tick only rules in the list.")})

    def __init__(self, *args: Any, rules: list[Rule], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        leave_out = self.fields["leave_out"]
        assert isinstance(leave_out, forms.MultipleChoiceField)
        leave_out.choices = [(str(r.pk), f"{r.program.name}: {r.name}") for r in rules]

    def candidate(self) -> list[dict[str, Any]]:
        return [{"rule": int(pk), "active": False} for pk in self.cleaned_data.get("leave_out") or []]


def _patients(request: AuthenticatedHttpRequest, result: Result) -> list[dict[str, Any]]:
    """Names only of patients this person may see; every one shown is a read of that record."""
    names = {}
    for patient in patients_for(request.user).filter(pk__in=list(result.by_patient)):
        names[patient.pk] = patient.name
        audit_record(user=request.user, action=Action.READ, resource="Alert?backtest (alert counts)",
                     patient_id=patient.pk, request=request)
    patients, hidden = [], 0
    for patient_id, (current, candidate) in sorted(
            result.by_patient.items(), key=lambda item: (-max(item[1]), str(names.get(item[0], "")))):
        if patient_id not in names:
            hidden += 1
        patients.append({"name": names.get(patient_id) or _("Patient %(n)s") % {"n": hidden},
                         "current": current, "candidate": candidate, "difference": candidate - current})
    return patients


@role_required(Role.ADMIN)
def backtest(request: AuthenticatedHttpRequest) -> HttpResponse:
    rules = list(Rule.objects.filter(active=True).select_related("program").order_by("program__name", "id"))
    form = BacktestForm(request.POST or None, rules=rules)
    result, patients = None, []
    if request.method == "POST" and form.is_valid():
        hours = form.cleaned_data["resolve_after_hours"]
        try:
            result = backtest_run(candidate=form.candidate(), days=form.cleaned_data["days"],
                                  resolve_after=timedelta(hours=hours) if hours else None)
        except ValidationError as exc:
            form.add_error("leave_out", exc.messages)
        else:
            audit_record(user=request.user, action=Action.SEARCH, resource="Alert?backtest", request=request)
            patients = _patients(request, result)
    programs = dict(Program.objects.values_list("id", "name"))
    rows = result.rows() if result is not None else []
    for row in rows:
        row["program"] = programs.get(row["spec"].program_id, "")
        kind = row["spec"].kind
        row["kind_label"] = RuleKind(kind).label if kind in RuleKind.values else kind
    titles = questionnaire_titles([r.params.get("questionnaire") for r in rules])
    described = []
    for rule in rules:
        try:
            words = params_in_words(rule.params, titles)
        except Exception:  # noqa: BLE001 - an old rule the words cannot describe is still listed
            words = []
        described.append((rule, words))
    # Safety nets a programme switched off, with the reason (issue 19): a back-test of the current
    # rules runs without them.
    switched_off = [(rule, rule.switched_off_reason) for rule in Rule.objects.filter(active=False).exclude(
        safety_net_for="").select_related("program").order_by("program__slug", "id")]
    return render(request, "alerts/backtest.html", {
        "form": form, "result": result, "rows": rows, "patients": patients, "rules": described,
        "switched_off": switched_off,
    })
