"""Forms of the triage pages (the patient page's alert actions, snoozes, per-patient limits).
They only parse; the rules (who may be assigned, when a note is required, how long a snooze may
last) live in alerts.lifecycle and alerts.definitions, whose errors are put next to the field."""

import typing
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from alerts.lifecycle import NOTE_MAX
from alerts.models import Outcome, Rule
from alerts.params_words import label
from alerts.rules import merged_params, parse_params
from monitoring.measures import MEASURES
from proplatform.forms import DescribedForm, form_field


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


class AssignForm(DescribedForm):
    assignee: forms.ModelChoiceField[User] = forms.ModelChoiceField(
        queryset=None, required=False, label=_("Assign to"), empty_label=_("Nobody"))
    # The assignee the page showed: a re-assignment by a colleague meanwhile is a conflict.
    current = forms.IntegerField(required=False, widget=forms.HiddenInput)
    note = forms.CharField(required=False, max_length=NOTE_MAX, label=_("Note (optional)"))

    def __init__(self, *args: Any, clinicians: QuerySet[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        assignee = form_field(self, "assignee", forms.ModelChoiceField)
        assignee.queryset = clinicians
        # Django's documented way to label a choice: replacing the field's method on this instance.
        assignee.label_from_instance = lambda u: u.get_full_name() or u.get_username()  # type: ignore[assignment]


class ResolveForm(DescribedForm):
    outcome = forms.ChoiceField(choices=Outcome.choices, widget=forms.RadioSelect, label=_("What was done?"))
    note = forms.CharField(required=False, max_length=NOTE_MAX, widget=forms.Textarea(attrs={"rows": 2}),
                           label=_("Note"), help_text=_("Required when no action is needed."))


class SnoozeForm(DescribedForm):
    measure = forms.ChoiceField(label=_("Measurement"))
    component = forms.ChoiceField(choices=[("value", _("Value (systolic for blood pressure)")),
                                           ("value2", _("Diastolic"))], label=_("Which value"))
    low = forms.DecimalField(required=False, max_digits=9, decimal_places=3, label=_("From (lowest expected)"),
                             localize=True)
    high = forms.DecimalField(required=False, max_digits=9, decimal_places=3, label=_("To (highest expected)"),
                              localize=True)
    until = forms.DateTimeField(widget=DateTimeLocalInput(), label=_("Until"),
                                input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"])
    reason = forms.CharField(max_length=NOTE_MAX, widget=forms.Textarea(attrs={"rows": 2}), label=_("Reason"))
    # Never ticked for the nurse: a snooze is about a level, and closing the alert it was made
    # from is a second decision that must be taken on purpose (issue 19: a pre-ticked box closed
    # a patient's contact request as "no action").
    resolve = forms.BooleanField(required=False, initial=False,
                                 label=_("Also resolve this alert as “no action needed”"))

    def __init__(self, *args: Any, with_alert: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        form_field(self, "measure", forms.ChoiceField).choices = [(m.code, m.label) for m in MEASURES.values()]
        if not with_alert:
            del self.fields["resolve"]
        if not self.is_bound and "until" not in self.initial:
            self.initial["until"] = timezone.localtime() + timedelta(days=7)


def _numeric(annotation: Any) -> bool:
    kinds = set(typing.get_args(annotation)) | {annotation}
    return bool(kinds & {Decimal, int, float}) and bool not in kinds


def override_fields(rule: Rule) -> list[str]:
    """The parameters a per-patient override may change: the numbers (limits, windows). What a
    rule watches (the measure, the question) is the programme's decision, not the patient's."""
    model = type(parse_params(rule.kind, rule.params))
    return [name for name, info in model.model_fields.items() if _numeric(info.annotation)]


class OverrideForm(DescribedForm):
    """One field per numeric parameter, prefilled with the patient's current value. A field left
    as the rule's own value is not part of the override."""

    reason = forms.CharField(max_length=NOTE_MAX, label=_("Reason"))

    def __init__(self, *args: Any, rule: Rule, current: dict[str, Any] | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rule = rule
        self.param_names = override_fields(rule)
        effective = merged_params(rule.params, current)
        for name in self.param_names:
            self.fields[f"p_{name}"] = forms.DecimalField(
                required=False, max_digits=12, decimal_places=4, localize=True, label=label(name),
                initial=effective.get(name),
                help_text=_("The programme's value: %(value)s") % {"value": rule.params.get(name, "—")})
        self.order_fields([f"p_{n}" for n in self.param_names] + ["reason"])

    def override_params(self) -> dict[str, Any] | None:
        """The parameters that differ from the rule's own, as JSON values; None if none differ."""
        params: dict[str, Any] = {}
        for name in self.param_names:
            value = self.cleaned_data.get(f"p_{name}")
            own = self.rule.params.get(name)
            if value is None:
                if own is not None:
                    params[name] = None  # "no limit" for this patient
                continue
            if own is None or Decimal(str(own)) != value:
                params[name] = float(value) if value != value.to_integral() else int(value)
        return params or None


class RevertForm(DescribedForm):
    reason = forms.CharField(max_length=NOTE_MAX, label=_("Reason"))
