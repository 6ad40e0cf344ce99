"""The administrator's back-testing page: run a candidate rule set against the last N days and
compare it with the current rules (alerts.backtest). Works without JavaScript; errors are shown
next to the field they belong to."""

import json
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
from alerts.backtest import MAX_DAYS, backtest_run, candidate_parse
from alerts.models import Rule
from audit.models import Action
from audit.services import audit_record
from patients.access import patients_for
from patients.models import Program
from proplatform.forms import DescribedForm


class BacktestForm(DescribedForm):
    days = forms.IntegerField(
        label=_("Days back"), min_value=1, max_value=MAX_DAYS, initial=30,
        help_text=_("The replay covers this many days up to now."),
        error_messages={"required": _("Give the number of days."),
                        "invalid": _("Give a whole number of days.")})
    resolve_after_hours = forms.IntegerField(
        label=_("Alerts count as resolved after (hours)"), min_value=1, required=False,
        help_text=_("Leave empty to assume nobody resolves an alert within the period."))
    candidate = forms.CharField(
        label=_("Candidate rules (JSON)"), required=False,
        widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false", "class": "mono"}),
        help_text=_('A list of changes and new rules, e.g. [{"rule": 3, "params": {"low": 90}}, '
                    '{"program": "lung", "kind": "news2", "name": "NEWS2", "severity": "yellow", "params": {}}]. '
                    '"params" of an existing rule are merged over its own; "active": false leaves it out.'))

    def clean_candidate(self) -> list[dict[str, Any]]:
        return candidate_parse(self.cleaned_data.get("candidate", ""))



@role_required(Role.ADMIN)
def backtest(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = BacktestForm(request.POST or None)
    result, names = None, {}
    if request.method == "POST" and form.is_valid():
        hours = form.cleaned_data["resolve_after_hours"]
        try:
            result = backtest_run(candidate=form.cleaned_data["candidate"], days=form.cleaned_data["days"],
                                  resolve_after=timedelta(hours=hours) if hours else None)
        except ValidationError as exc:
            # Candidate entries that do not validate (unknown rule, invalid params) belong to
            # the candidate field; the others name their own field.
            if hasattr(exc, "error_dict"):
                for name, errors in exc.message_dict.items():
                    form.add_error(name if name in form.fields else "candidate", errors)
            else:
                form.add_error("candidate", exc.messages)
        else:
            audit_record(user=request.user, action=Action.SEARCH, resource="Alert?backtest", request=request)
            # Names only of patients this person may see; every one shown is a read of that record.
            visible = patients_for(request.user).filter(pk__in=list(result.by_patient))
            for patient in visible:
                names[patient.pk] = patient.name
                audit_record(user=request.user, action=Action.READ, resource="Alert?backtest (alert counts)",
                             patient_id=patient.pk, request=request)
    patients = []
    if result is not None:
        hidden = 0
        for patient_id, (current, candidate) in sorted(
                result.by_patient.items(), key=lambda item: (-max(item[1]), str(names.get(item[0], "")))):
            if patient_id not in names:
                hidden += 1
            patients.append({"name": names.get(patient_id) or _("Patient %(n)s") % {"n": hidden},
                             "current": current, "candidate": candidate, "difference": candidate - current})
    programs = dict(Program.objects.values_list("id", "name"))
    rows = result.rows() if result is not None else []
    for row in rows:
        row["program"] = programs.get(row["spec"].program_id, "")
    rules = [(rule, json.dumps(rule.params, ensure_ascii=False))
             for rule in Rule.objects.filter(active=True).select_related("program").order_by("program__slug", "id")]
    # Safety nets a programme switched off, with the reason (issue 19): a back-test of the current
    # rules runs without them.
    switched_off = [(rule, rule.switched_off_reason) for rule in Rule.objects.filter(active=False).exclude(
        safety_net_for="").select_related("program").order_by("program__slug", "id")]
    return render(request, "alerts/backtest.html", {
        "form": form, "result": result, "rows": rows, "patients": patients, "rules": rules,
        "switched_off": switched_off,
    })
