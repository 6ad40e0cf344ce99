from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from outcomes.models import Cohort, ConsentCriterion
from patients.models import CareTeam, Region, Sex


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%Y-%m-%d", **kwargs)


class CohortForm(forms.ModelForm):
    """The criteria of a cohort. Cross-field rules (period, age band, consent) live in
    Cohort.clean(), so the form and every other path give the same message on the same field."""

    department = forms.ChoiceField(label=_("Department"), required=False)
    consent = forms.ChoiceField(
        label=_("Consent"), required=False, choices=ConsentCriterion.choices,
        widget=forms.RadioSelect,
        help_text=_("Patients who withdrew from secondary use are never included."),
    )

    class Meta:
        model = Cohort
        fields = ["name", "description", "program", "condition_code", "treatment_start_from",
                  "treatment_start_to", "department", "region", "sex", "age_min", "age_max", "consent"]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 3}),
            "treatment_start_from": DateInput(),
            "treatment_start_to": DateInput(),
            "age_min": forms.NumberInput(attrs={"min": 0, "max": 130}),
            "age_max": forms.NumberInput(attrs={"min": 0, "max": 130}),
        }
        help_texts = {
            "age_min": _("Age in whole years on the day treatment started. Usual bands: 18–39, 40–59, "
                         "60–69, 70–79 and 80+ (leave “to” empty)."),
        }
        error_messages = {
            "program": {"invalid_choice": _("Choose a programme from the list.")},
            "name": {"unique": _("A cohort with this name exists already.")},
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        department, program = self.fields["department"], self.fields["program"]
        region, sex = self.fields["region"], self.fields["sex"]
        assert isinstance(department, forms.ChoiceField) and isinstance(program, forms.ModelChoiceField)
        assert isinstance(region, forms.ChoiceField) and isinstance(sex, forms.ChoiceField)
        departments = CareTeam.objects.order_by("department").values_list("department", flat=True).distinct()
        department.choices = [("", _("Any department")), *[(d, d) for d in departments]]
        program.empty_label = _("Any programme")
        # The model's choices, with the blank one ("---------") named for a filter.
        region.choices = [("", _("Any region")), *Region.choices]
        sex.choices = [("", _("Any")), *Sex.choices]
        if not self.is_bound and not self.instance.pk:
            self.initial.setdefault("consent", ConsentCriterion.NOT_WITHDRAWN)

    def clean_consent(self) -> str:
        return self.cleaned_data.get("consent") or ConsentCriterion.NOT_WITHDRAWN

    def clean_condition_code(self) -> str:
        return (self.cleaned_data.get("condition_code") or "").strip().upper()
