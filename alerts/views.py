"""Triage pages: the worklist of alerts and its bulk acknowledge. The alert, snooze and
per-patient-limit forms of the patient page are clinic.views_alerts, beside the page they
re-render."""

from typing import Any
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.decorators import role_required
from accounts.http import AuthenticatedHttpRequest
from accounts.models import Role
from alerts import lifecycle
from alerts.selectors import (
    WorklistFilter,
    alerts_for,
    worklist,
    worklist_filter_parse,
    worklist_programs,
    worklist_rows,
    worklist_teams,
)
from audit.models import Action
from audit.services import audit_record, audit_record_many, client_ip
from questionnaires.review import reviews_overdue_count

CLINICAL = (Role.CLINICIAN, Role.ADMIN)


@role_required(*CLINICAL)
def triage(request: AuthenticatedHttpRequest) -> HttpResponse:
    f = worklist_filter_parse(request.GET, request.user)
    audit_record(user=request.user, action=Action.SEARCH, request=request,
                 resource="Alert?worklist (page)" + (f" {urlencode(_filter_query(f))}" if f.active else ""))
    rows = worklist_rows(worklist(request.user, f))
    # A list view shows patients: each one shown is a read of their record.
    audit_record_many(user=request.user, action=Action.READ, ip=client_ip(request),
                      reads=[("Alert?worklist (page)", row.patient.pk) for row in rows])
    response = render(request, "alerts/triage.html", {
        "rows": rows,
        "filter": f,
        "teams": worklist_teams(request.user),
        "programs": worklist_programs(request.user),
        "severities": [("red", _("Red")), ("yellow", _("Yellow"))],
        "query": urlencode(_filter_query(f)),
        "live_feed_port": settings.LIVE_FEED_PORT, "heartbeat_seconds": f"{settings.LIVE_HEARTBEAT_SECONDS:g}",
        # The review queue's broken promises, counted here so they are not only on another page.
        "reviews_overdue": reviews_overdue_count(request.user),
    })
    if settings.LIVE_FEED_PORT:
        # The live feed's own port on this host name (static/js/triage.js): the CSP's
        # connect-src 'self' covers only this page's port.
        host = urlsplit(f"//{request.get_host()}").hostname or ""
        host = f"[{host}]" if ":" in host else host
        response._csp_update = {"connect-src": [  # type: ignore[attr-defined]  # django-csp
            f"{scheme}://{host}:{settings.LIVE_FEED_PORT}" for scheme in ("ws", "wss")]}
    return response


def _filter_query(f: WorklistFilter) -> dict[str, Any]:
    """The filter as GET parameters (the same names the page's form and the websocket use)."""
    q: dict[str, Any] = {}
    if f.team_id is not None:
        q["team"] = f.team_id
    if f.program_id is not None:
        q["program"] = f.program_id
    if f.severity is not None:
        q["severity"] = f.severity
    if f.assigned_to is not None:
        q["mine"] = 1
    return q


def _back_to_triage(request: AuthenticatedHttpRequest) -> HttpResponseRedirect:
    # Only our own filter parameters go back into the URL: never an open redirect.
    f = worklist_filter_parse(request.POST, request.user)
    query = urlencode(_filter_query(f))
    return redirect(reverse("triage") + (f"?{query}" if query else ""))


@role_required(*CLINICAL)
@require_POST
def triage_acknowledge(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Bulk-acknowledge the yellow alerts ticked on the worklist; red ones are refused, each
    with its reason in a message."""
    ids = []
    for raw in request.POST.getlist("ids"):
        try:
            ids.append(int(raw))
        except ValueError:
            continue
    try:
        results = lifecycle.alerts_acknowledge_bulk(alert_ids=ids, scope=alerts_for(request.user),
                                                    user=request.user, request=request)
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
        return _back_to_triage(request)
    done = [r for r in results if r.acknowledged]
    if done:
        messages.success(request, _("%(n)s alerts acknowledged.") % {"n": len(done)})
    for r in results:
        if not r.acknowledged:
            who = r.alert.patient.name if r.alert is not None else f"#{r.id}"
            messages.error(request, _("Not acknowledged (%(who)s): %(reason)s") % {"who": who, "reason": r.reason})
    return _back_to_triage(request)
