"""Forms of the programme editor: they parse and say what is wrong next to the field; the
writes live in editor.services."""

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _l

from monitoring.measures import MEASURES
from patients.models import Program
from proplatform.forms import DescribedForm
from questionnaires.models import Questionnaire


class ProgramForm(forms.ModelForm):
    measures = forms.MultipleChoiceField(
        label=_l("Measurements from the patients' devices"), required=False, widget=forms.CheckboxSelectMultiple,
        choices=[], help_text=_l("The rules can only use the measurements ticked here."))
    questionnaires = forms.ModelMultipleChoiceField(
        label=_l("Questionnaires"), required=False, widget=forms.CheckboxSelectMultiple,
        queryset=Questionnaire.objects.none(),
        help_text=_l("Only questionnaires ticked here can be scheduled or used by the rules."))

    class Meta:
        model = Program
        fields = ["name", "slug", "condition_code", "condition_display", "review_workdays", "department_phone",
                  "contact_text_da", "contact_text_en", "urgent_text_da", "urgent_text_en", "measures",
                  "questionnaires"]
        labels = {
            "name": _l("Name"), "slug": _l("Short name in addresses"),
            "condition_code": _l("Condition code (ICD-10/SKS)"),
            "condition_display": _l("Condition"), "review_workdays": _l("Answers reviewed within (working days)"),
        }
        help_texts = {
            "name": _l("E.g. \"Hjemmemonitorering ved KOL\"."),
            "slug": _l("Letters, digits and hyphens, e.g. \"kol-hjemme\"."),
            "condition_code": _l("E.g. DJ44 for COPD."),
            "review_workdays": _l("The promise on the patient's receipt, e.g. 2."),
        }
        widgets = {f: forms.Textarea(attrs={"rows": 2}) for f in
                   ("contact_text_da", "contact_text_en", "urgent_text_da", "urgent_text_en")}
        error_messages = {
            "name": {"required": _l("Give the programme a name.")},
            "slug": {"required": _l("Give a short name."), "invalid": _l("Use only letters, digits and hyphens."),
                     "unique": _l("Another programme has this short name.")},
            "condition_code": {"required": _l("Give the condition's code.")},
            "condition_display": {"required": _l("Give the condition.")},
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["measures"].choices = [(code, m.label) for code, m in MEASURES.items()]
        # Each questionnaire version by its title and version; newest first.
        self.fields["questionnaires"].queryset = Questionnaire.objects.order_by("title", "-created_at")
        self.fields["questionnaires"].label_from_instance = lambda q: f"{q.title} ({q.version})"
        if self.instance.pk is None:
            self.initial.setdefault("measures", [])


class ReasonForm(DescribedForm):
    reason = forms.CharField(label=_l("Why?"), max_length=500,
                             error_messages={"required": _l("Say why the rule goes back to an earlier version.")})
