"""The instruments' safety nets per programme (issue 19): which are on, which were switched off,
by whom and why; an administrator or a team lead switches one off (a reason is required) or on
again. Works without JavaScript; an error is shown next to the reason field."""

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _

from accounts.decorators import role_required
from accounts.http import AuthenticatedHttpRequest
from accounts.models import Role, User
from alerts.models import Rule
from alerts.safety import may_switch_safety_nets, safety_rule_switch
from proplatform.forms import DescribedForm, form_errors_from


class SwitchOffForm(DescribedForm):
    reason = forms.CharField(
        label=_("Why does this programme not need the safety net?"), required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Required. Shown on this page and kept with the rule's history."))


def _nets_for(user: User) -> list[Rule]:
    rules = (Rule.objects.exclude(safety_net_for="").select_related("program")
             .prefetch_related("revisions__changed_by").order_by("program__name", "name"))
    if user.role != Role.ADMIN:
        rules = rules.filter(program__episodes__care_team__escalation__lead=user).distinct()
    return list(rules)


def _last_change(rule: Rule) -> Any:
    return max(rule.revisions.all(), key=lambda r: r.version, default=None)


@role_required(Role.ADMIN, Role.CLINICIAN)
def safety_nets(request: AuthenticatedHttpRequest) -> HttpResponse:
    nets = _nets_for(request.user)
    if request.user.role != Role.ADMIN and not nets:
        raise Http404("You lead no team with patients in a programme.")
    failed: dict[int, SwitchOffForm] = {}
    if request.method == "POST":
        rule = next((r for r in nets if str(r.pk) == request.POST.get("rule")), None)
        if rule is None or not may_switch_safety_nets(request.user, rule.program):
            raise Http404("No such safety net for you.")
        form = SwitchOffForm(request.POST, prefix=f"r{rule.pk}")
        form.is_valid()
        switch_on = request.POST.get("action") == "on"
        try:
            safety_rule_switch(rule=rule, active=switch_on, reason=form.cleaned_data.get("reason", ""),
                               by=request.user, request=request)
        except ValidationError as exc:
            form_errors_from(form, exc)
            failed[rule.pk] = form
        else:
            return redirect("rules-safety")
    rows = [{"rule": r, "last": _last_change(r), "form": failed.get(r.pk) or SwitchOffForm(prefix=f"r{r.pk}")}
            for r in nets]
    return render(request, "alerts/safety_nets.html", {"rows": rows}, status=400 if failed else 200)
