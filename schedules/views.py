"""Clinicians pause a patient's questionnaires (holiday, admission) from the patient page."""

import uuid

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.decorators import role_required
from accounts.http import AuthenticatedHttpRequest
from accounts.models import Role
from audit.models import Action
from patients.access import patient_or_404
from schedules.forms import PauseForm
from schedules.services import pause_create, pause_end


@role_required(Role.CLINICIAN, Role.ADMIN)
def pause_new(request: AuthenticatedHttpRequest, patient_id: uuid.UUID) -> HttpResponse:
    action = Action.CREATE if request.method == "POST" else Action.READ
    patient = patient_or_404(request, patient_id, action=action, resource=f"Patient/{patient_id} pause")
    form = PauseForm(request.POST or None, initial={"starts_on": timezone.localdate()})
    if request.method == "POST" and form.is_valid():
        try:
            pause_create(patient=patient, created_by=request.user, request=request, **form.cleaned_data)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        else:
            messages.success(request, _("The questionnaires are paused."))
            return redirect("patient-detail", patient_id=patient.pk)
    return render(request, "schedules/pause_new.html", {"patient": patient, "form": form})


@require_POST
@role_required(Role.CLINICIAN, Role.ADMIN)
def pause_end_now(request: AuthenticatedHttpRequest, patient_id: uuid.UUID, pause_id: int) -> HttpResponse:
    patient = patient_or_404(request, patient_id, action=Action.UPDATE, resource=f"Patient/{patient_id} pause end")
    pause = patient.pauses.filter(pk=pause_id, withdrawn=False).first()
    if pause is None:
        raise Http404("No such pause.")
    try:
        # Ending "today" keeps today paused; the next occurrence is asked for again.
        pause_end(pause=pause, on=timezone.localdate(), by=request.user, request=request)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("The pause is ended."))
    return redirect("patient-detail", patient_id=patient.pk)
