from typing import Any, cast

from django import forms
from django.utils.translation import gettext_lazy as _

from proplatform.forms import DescribedForm


class RelativeGrantForm(forms.Form):
    username = forms.CharField(label=_("Your relative's user name"), max_length=150)
    relationship = forms.CharField(label=_("How are you related? (e.g. daughter, husband)"), max_length=100)


# A name or a CPR number is short; anything longer is a paste gone wrong, refused before it
# reaches a query.
SEARCH_MAX_LENGTH = 100


class PatientSearchForm(DescribedForm):
    """The search box of the patient list. Sent by POST only: a CPR number must never be in a
    URL (browser history, proxy and server logs). Django's CharField already refuses NUL bytes."""

    q = forms.CharField(
        label=_("Name or CPR number"), max_length=SEARCH_MAX_LENGTH, strip=True,
        help_text=_("A CPR number with or without the dash, or part of the name."),
        error_messages={
            "required": _("Type a name or a CPR number to search for."),
            "max_length": _("A search can be at most %(limit_value)d characters long."),
        },
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


class PatientFilterForm(forms.Form):
    """The list's filters, as GET parameters (none can hold a CPR number). A value the user cannot
    choose is ignored, as on the worklist: a filter only ever narrows their own list."""

    program = forms.TypedChoiceField(label=_("Programme"), required=False, coerce=int, empty_value=None)
    open_alerts = forms.BooleanField(label=_("With open alerts"), required=False)
    missed = forms.BooleanField(label=_("Missed questionnaires (30 days)"), required=False)
    paused = forms.BooleanField(label=_("Paused now"), required=False)
    overdue_reviews = forms.BooleanField(label=_("Answers overdue for review"), required=False)

    def __init__(self, *args: Any, programs: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["program"]).choices = (
            [("", _("All programmes"))] + [(p.pk, p.name) for p in programs])
