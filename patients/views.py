from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.decorators import role_required
from accounts.models import Role
from monitoring.measures import MEASURES
from patients.access import patient_or_404


@role_required(Role.CLINICIAN, Role.ADMIN)
def patient_detail(request: HttpRequest, patient_id: str) -> HttpResponse:
    patient = patient_or_404(request, patient_id, resource=f"Patient/{patient_id} (page)")
    readings = patient.readings.order_by("-effective_at")[:50]
    return render(request, "patients/detail.html", {
        "patient": patient,
        "episodes": patient.episodes.select_related("program", "care_team"),
        "alerts": patient.alerts.select_related("rule", "acknowledged_by").order_by("-raised_at")[:20],
        "readings": [(r, MEASURES[r.measure]) for r in readings],
        "responses": patient.responses.select_related("questionnaire").order_by("-authored_at")[:10],
    })
