"""Whom the questionnaire pages answer for: the signed-in patient, or the patient a relative chose
(clinic.views_relatives puts the choice in the session)."""

from django.http import Http404

from accounts.http import AuthenticatedHttpRequest
from accounts.models import Role
from audit.models import Action
from patients.access import own_patient_or_404, patient_or_404
from patients.models import Patient

ACTING_FOR = "acting_for_patient"  # session key: the patient a relative is answering for


def answering_for(request: AuthenticatedHttpRequest, resource: str, action: Action = Action.READ) -> Patient:
    """The patient whose questionnaires these pages show: the logged-in patient, or the patient
    a relative chose to answer for (patients.access checks the grant on every request, so a
    revoked grant ends access at once)."""
    if request.user.role == Role.RELATIVE:
        acting_for = request.session.get(ACTING_FOR)
        if not acting_for:
            raise Http404("Choose whom you answer for first.")
        return patient_or_404(request, acting_for, action=action, resource=f"{resource} (relative)",
                              purpose="answer")
    return own_patient_or_404(request, action=action, resource=resource)
