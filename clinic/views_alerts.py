"""The alert, snooze and per-patient-limit forms of the clinician's patient page. Each POST view
parses a form, checks access (patients.access.clinician_patient_or_404: other teams' patients and
alerts answer 404), calls one service from alerts.lifecycle or alerts.definitions, and then
redirects back (success, or a conflict explained in a message) or renders the patient page again
with the errors next to the fields (status 400). They live beside the page they re-render, above
alerts in the layers; the worklist is alerts.views."""

import uuid
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.decorators import role_required
from accounts.http import AuthenticatedHttpRequest
from accounts.models import Role
from alerts import lifecycle
from alerts.definitions import rule_override_set
from alerts.forms import AssignForm, OverrideForm, ResolveForm, RevertForm, SnoozeForm
from alerts.lifecycle import AlertConflict, SnoozeEnded
from alerts.models import Alert, RuleOverride, Snooze, Status
from alerts.rules import snooze_target
from alerts.selectors import (
    assignable_clinicians,
    rules_for_patient,
)
from audit.models import Action
from clinic.views import patient_page
from patients.access import clinician_patient_or_404
from patients.models import Patient
from proplatform.forms import form_errors_from

CLINICAL = (Role.CLINICIAN, Role.ADMIN)


def _alert_of(request: AuthenticatedHttpRequest, patient_id: uuid.UUID, alert_id: int,
              what: str) -> tuple[Patient, Alert]:
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


def _invalid(request: AuthenticatedHttpRequest, patient: Patient, key: str, form: forms.Form) -> HttpResponse:
    messages.error(request, _("Please correct the errors below."))
    return patient_page(request, patient, bound={key: form}, status=400)


@role_required(*CLINICAL)
@require_POST
def alert_acknowledge_page(request: AuthenticatedHttpRequest, patient_id: uuid.UUID, alert_id: int) -> HttpResponse:
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
def alert_assign_page(request: AuthenticatedHttpRequest, patient_id: uuid.UUID, alert_id: int) -> HttpResponse:
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
def alert_resolve_page(request: AuthenticatedHttpRequest, patient_id: uuid.UUID, alert_id: int) -> HttpResponse:
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


def _snooze(request: AuthenticatedHttpRequest, patient: Patient, key: str, alert: Alert | None) -> HttpResponse:
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
def alert_snooze_page(request: AuthenticatedHttpRequest, patient_id: uuid.UUID, alert_id: int) -> HttpResponse:
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
def snooze_new_page(request: AuthenticatedHttpRequest, patient_id: uuid.UUID) -> HttpResponse:
    patient = clinician_patient_or_404(request, patient_id, action=Action.CREATE, resource="Snooze (page)")
    return _snooze(request, patient, "snooze-new", None)


@role_required(*CLINICAL)
@require_POST
def snooze_end_page(request: AuthenticatedHttpRequest, patient_id: uuid.UUID, snooze_id: int) -> HttpResponse:
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


def _rule_of(request: AuthenticatedHttpRequest, patient_id: uuid.UUID, rule_id: int) -> tuple[Patient, Any]:
    patient = clinician_patient_or_404(request, patient_id, action=Action.UPDATE,
                                       resource=f"Rule/{rule_id} override (page)")
    rule = rules_for_patient(patient).filter(pk=rule_id).first()
    if rule is None:
        raise Http404("No such rule for this patient.")
    return patient, rule


@role_required(*CLINICAL)
@require_POST
def rule_override_page(request: AuthenticatedHttpRequest, patient_id: uuid.UUID, rule_id: int) -> HttpResponse:
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
def rule_override_revert_page(request: AuthenticatedHttpRequest, patient_id: uuid.UUID, rule_id: int) -> HttpResponse:
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

