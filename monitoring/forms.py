from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from monitoring.measures import MEASURES


class ReadingForm(forms.Form):
    measure = forms.ChoiceField(
        label=_("What did you measure?"),
        choices=[(m.code, f"{m.label} ({m.unit_label})") for m in MEASURES.values()],
    )
    value = forms.DecimalField(
        label=_("Value"), max_digits=9, decimal_places=3,
        widget=forms.NumberInput(attrs={"inputmode": "decimal", "step": "any"}),
    )
    measured_at = forms.DateTimeField(
        label=_("When (leave empty for now)"), required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    def clean_measured_at(self):  # type: ignore[no-untyped-def]
        # A datetime-local field has no zone: it is the patient's local (Danish) time.
        return self.cleaned_data["measured_at"] or timezone.now()
