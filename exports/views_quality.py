"""The quality page that sends a cohort to a quality database and lists past sends."""

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.decorators import role_required
from accounts.http import AuthenticatedHttpRequest
from accounts.models import Role
from exports.models import Destination, SendRecord
from exports.privacy import PseudonymKeyMissing
from exports.quality_push import quality_send_start
from exports.selectors import ExportError
from proplatform.forms import form_field

if TYPE_CHECKING:
    from outcomes.models import Cohort


class SendForm(forms.Form):
    destination = forms.ModelChoiceField(queryset=Destination.objects.filter(active=True),
                                         label=gettext_lazy("Quality database"))
    cohort: "forms.ModelChoiceField[Cohort]" = forms.ModelChoiceField(queryset=None, label=gettext_lazy("Cohort"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from outcomes.models import Cohort  # the cohorts engineer's model

        form_field(self, "cohort", forms.ModelChoiceField).queryset = Cohort.objects.all()


@role_required(Role.QUALITY, Role.ADMIN)
def sends(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = SendForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            record = quality_send_start(destination=form.cleaned_data["destination"],
                                        cohort=form.cleaned_data["cohort"], user=request.user)
        except (ExportError, PseudonymKeyMissing) as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Sending started (send %(id)s).") % {"id": record.pk})
            return redirect("quality-sends")
    recent = SendRecord.objects.select_related("destination", "requested_by").order_by("-created_at")[:50]
    return render(request, "exports/sends.html", {"form": form, "sends": recent})
