from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.decorators import role_required
from accounts.http import AuthenticatedHttpRequest
from accounts.models import Role
from audit.models import Action
from audit.services import audit_record
from patients.access import own_patient_or_404, patient_or_404, patients_for_answering
from patients.forms import RelativeGrantForm
from patients.services import relative_grant, relative_revoke
from questionnaires.access import ACTING_FOR


@role_required(Role.PATIENT)
def relatives(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The patient decides who may answer questionnaires on their behalf."""
    is_post = request.method == "POST"
    patient = own_patient_or_404(request, action=Action.CREATE if is_post else Action.READ,
                                 resource="RelativeGrant (page)")
    form = RelativeGrantForm(request.POST or None)
    if is_post and form.is_valid():
        try:
            relative_grant(patient=patient, request=request, **form.cleaned_data)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                for error in errors:
                    form.add_error(field, error)
        else:
            messages.success(request, _("Done. Your relative can now answer questionnaires for you."))
            return redirect("my-relatives")
    grants = patient.relative_grants.filter(revoked_at=None).select_related("relative")
    return render(request, "patients/relatives.html", {"form": form, "grants": grants})


@role_required(Role.RELATIVE)
def relative_home(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The patients who let this relative answer for them."""
    audit_record(user=request.user, action=Action.SEARCH, resource="Patient?granted-to-me", request=request)
    patients = patients_for_answering(request.user).order_by("given_name")
    return render(request, "patients/relative_home.html", {"patients": patients})


@require_POST
@role_required(Role.RELATIVE)
def act_for(request: AuthenticatedHttpRequest, patient_id: str) -> HttpResponse:
    """The relative chooses whom they are answering for now."""
    patient = patient_or_404(request, patient_id, resource="Patient (relative chooses)", purpose="answer")
    request.session[ACTING_FOR] = str(patient.pk)
    return redirect("my-home")


@require_POST
@role_required(Role.PATIENT)
def relative_revoke_view(request: AuthenticatedHttpRequest, grant_id: int) -> HttpResponse:
    patient = own_patient_or_404(request, action=Action.UPDATE, resource=f"RelativeGrant/{grant_id} revoke")
    grant = patient.relative_grants.filter(pk=grant_id, revoked_at=None).first()
    if grant is None:
        raise Http404("No such permission.")
    relative_revoke(grant=grant, request=request)
    messages.success(request, _("Your relative can no longer answer for you."))
    return redirect("my-relatives")
