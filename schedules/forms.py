from django import forms
from django.utils.translation import gettext_lazy as _


class PauseForm(forms.Form):
    starts_on = forms.DateField(label=_("First day of the pause"), widget=forms.DateInput(attrs={"type": "date"}))
    ends_on = forms.DateField(label=_("Last day (leave empty until further notice)"), required=False,
                              widget=forms.DateInput(attrs={"type": "date"}))
    reason = forms.CharField(label=_("Reason, e.g. holiday or admission"), max_length=500)
