"""Triage pages: the worklist and the alert, snooze and per-patient-limit forms of the patient
page. Each POST view parses a form, checks access (patients.access via the patient page's
helper: other teams' patients and alerts answer 404), calls one service from alerts.lifecycle
or alerts.definitions, and then redirects back (success, or a conflict explained in a message)
or renders the patient page again with the errors next to the fields (status 400)."""

import uuid
from typing import Any
from urllib.parse import urlencode, urlsplit

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.decorators import role_required
from accounts.models import Role
from alerts import lifecycle
from alerts.definitions import rule_override_set
from alerts.forms import AssignForm, OverrideForm, ResolveForm, RevertForm, SnoozeForm
from alerts.lifecycle import AlertConflict, SnoozeEnded
from alerts.models import Alert, RuleOverride, Snooze, Status
from alerts.rules import snooze_target
from alerts.selectors import (
    alerts_for,
    assignable_clinicians,
    rules_for_patient,
    worklist,
    worklist_filter_parse,
    worklist_programs,
    worklist_rows,
    worklist_teams,
)
from audit.models import Action
from audit.services import audit_record, audit_record_many, client_ip
from patients.models import Patient
from patients.views import clinician_patient_or_404, patient_page
from proplatform.forms import form_errors_from
from questionnaires.review import reviews_overdue_count

CLINICAL = (Role.CLINICIAN, Role.ADMIN)


@role_required(*CLINICAL)
def triage(request: HttpRequest) -> HttpResponse:
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


def _filter_query(f: Any) -> dict[str, Any]:
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


def _back_to_triage(request: HttpRequest) -> HttpResponseRedirect:
    # Only our own filter parameters go back into the URL: never an open redirect.
    f = worklist_filter_parse(request.POST, request.user)
    query = urlencode(_filter_query(f))
    return redirect(reverse("triage") + (f"?{query}" if query else ""))


@role_required(*CLINICAL)
@require_POST
def triage_acknowledge(request: HttpRequest) -> HttpResponse:
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


# --- the patient page's forms ----------------------------------------------------------------

def _alert_of(request: HttpRequest, patient_id: uuid.UUID, alert_id: int, what: str) -> tuple[Patient, Alert]:
    patient = clinician_patient_or_404(request, patient_id, action=Action.UPDATE,
                                       resource=f"Alert/{alert_id} {what} (page)")
    alert = (Alert.objects.filter(pk=alert_id, patient=patient)
             .select_related("patient", "acknowledged_by", "resolved_by", "assigned_to").first())
    if alert is None:
        raise Http404("No such alert.")
    return patient, alert


def _to_alert(patient: Patient, alert: Alert | None = None, anchor: str = "") -> HttpResponseRedirect:
    url = reverse("patient-detail", args=[patient.pk])
    return redirect(url + (f"#alert-{alert.pk}" if alert is not None else anchor))


def _invalid(request: HttpRequest, patient: Patient, key: str, form: forms.Form) -> HttpResponse:
    messages.error(request, _("Please correct the errors below."))
    return patient_page(request, patient, bound={key: form}, status=400)


@role_required(*CLINICAL)
@require_POST
def alert_acknowledge_page(request: HttpRequest, patient_id: uuid.UUID, alert_id: int) -> HttpResponse:
    patient, alert = _alert_of(request, patient_id, alert_id, "acknowledge")
    try:
        lifecycle.alert_acknowledge(alert=alert, user=request.user, request=request)
    except AlertConflict as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Alert acknowledged."))
    return _to_alert(patient, alert)


@role_required(*CLINICAL)
@require_POST
def alert_assign_page(request: HttpRequest, patient_id: uuid.UUID, alert_id: int) -> HttpResponse:
    patient, alert = _alert_of(request, patient_id, alert_id, "assign")
    key = f"assign-{alert.pk}"
    form = AssignForm(request.POST, prefix=key, clinicians=assignable_clinicians(patient))
    if not form.is_valid():
        return _invalid(request, patient, key, form)
    try:
        lifecycle.alert_assign(alert=alert, assignee=form.cleaned_data["assignee"], user=request.user,
                               note=form.cleaned_data["note"], expected_assignee_id=form.cleaned_data["current"],
                               request=request)
    except ValidationError as exc:
        form_errors_from(form, exc)
        return _invalid(request, patient, key, form)
    except AlertConflict as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Alert assigned."))
    return _to_alert(patient, alert)


@role_required(*CLINICAL)
@require_POST
def alert_resolve_page(request: HttpRequest, patient_id: uuid.UUID, alert_id: int) -> HttpResponse:
    patient, alert = _alert_of(request, patient_id, alert_id, "resolve")
    key = f"resolve-{alert.pk}"
    form = ResolveForm(request.POST, prefix=key)
    if not form.is_valid():
        return _invalid(request, patient, key, form)
    try:
        lifecycle.alert_resolve(alert=alert, outcome=form.cleaned_data["outcome"], note=form.cleaned_data["note"],
                                user=request.user, request=request)
    except ValidationError as exc:
        form_errors_from(form, exc)
        return _invalid(request, patient, key, form)
    except AlertConflict as exc:
        messages.error(request, exc.message)
        return _to_alert(patient, alert)
    messages.success(request, _("Alert resolved."))
    return _to_alert(patient, anchor="#alerts")


def _snooze(request: HttpRequest, patient: Patient, key: str, alert: Alert | None) -> HttpResponse:
    form = SnoozeForm(request.POST, prefix=key, with_alert=alert is not None)
    if not form.is_valid():
        return _invalid(request, patient, key, form)
    data = form.cleaned_data
    try:
        lifecycle.snooze_create(patient=patient, measure=data["measure"], component=data["component"],
                                low=data["low"], high=data["high"], until=data["until"], reason=data["reason"],
                                user=request.user, alert=alert, resolve=bool(data.get("resolve")),
                                request=request)
    except ValidationError as exc:
        form_errors_from(form, exc)
        return _invalid(request, patient, key, form)
    except AlertConflict as exc:
        messages.error(request, exc.message)
        return _to_alert(patient, alert)
    messages.success(request, _("Snoozed."))
    return _to_alert(patient, anchor="#snoozes")


@role_required(*CLINICAL)
@require_POST
def alert_snooze_page(request: HttpRequest, patient_id: uuid.UUID, alert_id: int) -> HttpResponse:
    patient, alert = _alert_of(request, patient_id, alert_id, "snooze")
    if alert.status == Status.RESOLVED:
        messages.error(request, _("This alert is already resolved."))
        return _to_alert(patient, anchor="#alerts")
    if snooze_target(alert.rule.kind, alert.evidence) is None:
        # The page offers no snooze here; a stale page or a hand-made post is told so.
        messages.error(request, _("This alert is not about a measured level, so it cannot be snoozed."))
        return _to_alert(patient, alert)
    return _snooze(request, patient, f"snooze-{alert.pk}", alert)


@role_required(*CLINICAL)
@require_POST
def snooze_new_page(request: HttpRequest, patient_id: uuid.UUID) -> HttpResponse:
    patient = clinician_patient_or_404(request, patient_id, action=Action.CREATE, resource="Snooze (page)")
    return _snooze(request, patient, "snooze-new", None)


@role_required(*CLINICAL)
@require_POST
def snooze_end_page(request: HttpRequest, patient_id: uuid.UUID, snooze_id: int) -> HttpResponse:
    patient = clinician_patient_or_404(request, patient_id, action=Action.UPDATE,
                                       resource=f"Snooze/{snooze_id} end (page)")
    snooze = Snooze.objects.filter(pk=snooze_id, patient=patient).first()
    if snooze is None:
        raise Http404("No such snooze.")
    try:
        lifecycle.snooze_end(snooze=snooze, user=request.user, request=request)
    except SnoozeEnded as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("The snooze has ended; the rule alerts on this level again."))
    return _to_alert(patient, anchor="#snoozes")


def _rule_of(request: HttpRequest, patient_id: uuid.UUID, rule_id: int) -> tuple[Patient, Any]:
    patient = clinician_patient_or_404(request, patient_id, action=Action.UPDATE,
                                       resource=f"Rule/{rule_id} override (page)")
    rule = rules_for_patient(patient).filter(pk=rule_id).first()
    if rule is None:
        raise Http404("No such rule for this patient.")
    return patient, rule


@role_required(*CLINICAL)
@require_POST
def rule_override_page(request: HttpRequest, patient_id: uuid.UUID, rule_id: int) -> HttpResponse:
    patient, rule = _rule_of(request, patient_id, rule_id)
    key = f"override-{rule.pk}"
    current = RuleOverride.objects.filter(rule=rule, patient=patient, ended_at=None).first()
    form = OverrideForm(request.POST, prefix=key, rule=rule, current=current.params if current else None)
    if not form.is_valid():
        return _invalid(request, patient, key, form)
    params = form.override_params()
    if params is None:
        form.add_error(None, _("Change at least one value, or go back to the programme's limits below."))
        return _invalid(request, patient, key, form)
    try:
        rule_override_set(rule=rule, patient=patient, params=params, by=request.user,
                          reason=form.cleaned_data["reason"], request=request)
    except IntegrityError:
        # Two clinicians saved limits at the same moment (one current override per rule and
        # patient): the other one's change stands.
        messages.error(request, _("Someone changed these limits at the same moment; look at them again."))
        return _to_alert(patient, anchor="#rules")
    except ValidationError as exc:
        form_errors_from(form, exc)
        return _invalid(request, patient, key, form)
    messages.success(request, _("The limits for this patient are changed."))
    return _to_alert(patient, anchor="#rules")


@role_required(*CLINICAL)
@require_POST
def rule_override_revert_page(request: HttpRequest, patient_id: uuid.UUID, rule_id: int) -> HttpResponse:
    patient, rule = _rule_of(request, patient_id, rule_id)
    key = f"revert-{rule.pk}"
    form = RevertForm(request.POST, prefix=key)
    if not RuleOverride.objects.filter(rule=rule, patient=patient, ended_at=None).exists():
        messages.error(request, _("This patient already has the programme's limits."))
        return _to_alert(patient, anchor="#rules")
    if not form.is_valid():
        return _invalid(request, patient, key, form)
    try:
        rule_override_set(rule=rule, patient=patient, params=None, by=request.user,
                          reason=form.cleaned_data["reason"], request=request)
    except ValidationError as exc:
        form_errors_from(form, exc)
        return _invalid(request, patient, key, form)
    messages.success(request, _("This patient has the programme's limits again."))
    return _to_alert(patient, anchor="#rules")

