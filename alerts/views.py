from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.decorators import role_required
from accounts.models import Role
from alerts.selectors import worklist
from audit.models import Action
from audit.services import audit_record
from patients.access import teams_for


@role_required(Role.CLINICIAN, Role.ADMIN)
def triage(request: HttpRequest) -> HttpResponse:
    audit_record(user=request.user, action=Action.SEARCH, resource="Alert?worklist (page)", request=request)
    return render(request, "alerts/triage.html", {
        "alerts": worklist(request.user),
        "teams": teams_for(request.user),
    })
