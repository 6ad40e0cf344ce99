from django import forms
from django.utils.translation import gettext_lazy as _

from proplatform.forms import DescribedForm
from questionnaires.review import NOTE_MAX


class RelativeGrantForm(forms.Form):
    username = forms.CharField(label=_("Your relative's user name"), max_length=150)
    relationship = forms.CharField(label=_("How are you related? (e.g. daughter, husband)"), max_length=100)


class ReviewForm(DescribedForm):
    """"Markér som gennemset" beside a response on the patient page (questionnaires.review)."""

    note = forms.CharField(required=False, max_length=NOTE_MAX, widget=forms.Textarea(attrs={"rows": 2}),
                           label=_("Note (optional)"))
