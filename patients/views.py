import uuid
from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from accounts.models import Role
from audit.models import Action, Outcome
from audit.services import audit_record
from monitoring.measures import MEASURES
from monitoring.selectors import reading_measures_for
from patients.access import patient_or_404
from schedules.selectors import occurrences_for


@login_required
def patient_detail(request: HttpRequest, patient_id: uuid.UUID) -> HttpResponse:
    if request.user.role not in {Role.CLINICIAN, Role.ADMIN}:
        # Refused by role before any lookup; still an attempt on this patient's record.
        audit_record(user=request.user, action=Action.READ, resource=f"Patient/{patient_id} (page)",
                     outcome=Outcome.DENIED, patient_id=patient_id, request=request)
        raise PermissionDenied
    patient = patient_or_404(request, patient_id, resource=f"Patient/{patient_id} (page)")
    readings = patient.readings.order_by("-effective_at")[:50]
    return render(request, "patients/detail.html", {
        "patient": patient,
        "episodes": patient.episodes.select_related("program", "care_team"),
        "alerts": patient.alerts.select_related("rule", "acknowledged_by").order_by("-raised_at")[:20],
        "readings": [(r, MEASURES[r.measure]) for r in readings],
        "reading_measures": [MEASURES[code] for code in reading_measures_for(patient)],
        "responses": patient.responses.filter(status="completed")
        .select_related("questionnaire", "author").order_by("-authored_at")[:10],
        "occurrences": occurrences_for(patient).filter(due_at__gte=timezone.now() - timedelta(days=30))
        .order_by("due_at")[:12],
        "pauses": patient.pauses.filter(withdrawn=False)
        .filter(Q(ends_on=None) | Q(ends_on__gte=timezone.localdate())).order_by("starts_on"),
    })
