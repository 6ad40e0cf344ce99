from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from accounts.decorators import role_required
from accounts.models import Role
from audit.models import Action
from monitoring.forms import ReadingForm
from monitoring.measures import MEASURES
from monitoring.models import Source
from monitoring.services import reading_ingest
from questionnaires.views import _me


@role_required(Role.PATIENT)
def reading_new(request: HttpRequest) -> HttpResponse:
    form = ReadingForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        patient = _me(request, "Reading (web form)", action=Action.CREATE)
        measure = MEASURES[form.cleaned_data["measure"]]
        try:
            reading_ingest(patient=patient, measure=measure.code, value=form.cleaned_data["value"],
                           unit=measure.unit, effective_at=form.cleaned_data["measured_at"],
                           source=Source.WEB, entered_by=request.user)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                target = {"effective_at": "measured_at", "unit": "measure"}.get(field, field)
                for error in errors:
                    form.add_error(target if target in form.fields else None, error)
        else:
            messages.success(request, _("Thank you. Your measurement has been sent."))
            return redirect("my-home")
    return render(request, "monitoring/reading_new.html", {"form": form})
