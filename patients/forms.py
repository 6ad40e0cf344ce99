from django import forms
from django.utils.translation import gettext_lazy as _


class RelativeGrantForm(forms.Form):
    username = forms.CharField(label=_("Your relative's user name"), max_length=150)
    relationship = forms.CharField(label=_("How are you related? (e.g. daughter, husband)"), max_length=100)
