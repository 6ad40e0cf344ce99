"""The device registry for clinicians: a patient's devices, the devices of all the patients of
the clinician's care teams, registering and lending, returns, and device API tokens.

Every page is scoped through ``patients.access`` (a device is seen through the patient it is
lent to) and audited: a patient's devices via ``patient_or_404``, the team-wide list as a
search. Writes go through the device services in ``monitoring.services``, which audit them."""

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, F, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts.decorators import role_required
from accounts.http import AuthenticatedHttpRequest
from accounts.models import Role
from audit.models import Action, Outcome
from audit.services import audit_record, audit_record_many, client_ip
from monitoring.forms import DeviceFilterForm, DeviceLendForm, DeviceRegisterForm, DeviceReturnForm
from monitoring.models import Device, DeviceKind, DeviceLending
from monitoring.services import (
    device_lend,
    device_register,
    device_return,
    device_token_issue,
    device_token_revoke,
)
from patients.access import patient_or_404, patients_for
from patients.models import Patient
from proplatform.forms import form_errors_from

STAFF = (Role.CLINICIAN, Role.ADMIN)


def _patient(request: AuthenticatedHttpRequest, patient_id: uuid.UUID, *, resource: str,
             action: Action = Action.READ) -> Patient:
    """The patient, for a clinician on one of their teams (or an admin). Other roles are refused
    by role before any lookup, which is still audited as an attempt on this patient's record."""
    if request.user.role not in STAFF:
        audit_record(user=request.user, action=action, resource=resource, outcome=Outcome.DENIED,
                     patient_id=patient_id, request=request)
        raise PermissionDenied
    return patient_or_404(request, patient_id, action=action, resource=resource)


def _device(patient: Patient, device_id: int) -> Device:
    device = patient.devices.filter(pk=device_id).first()
    if device is None:
        raise Http404("No such device for this patient.")
    return device


def _with_tokens(devices: QuerySet[Device]) -> QuerySet[Device]:
    return devices.annotate(live_tokens=Count("tokens", filter=Q(tokens__revoked_at=None)))


# --- lists ------------------------------------------------------------------------------------

@role_required(*STAFF)
def device_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Devices of every patient of the clinician's care teams, filtered by kind and status."""
    form = DeviceFilterForm(request.GET or None)
    kind = status = ""
    if form.is_valid():
        kind, status = form.cleaned_data["kind"], form.cleaned_data["status"]
    devices = Device.objects.filter(patient__in=patients_for(request.user)).select_related("patient")
    if kind:
        devices = devices.filter(kind=kind)
    today = timezone.localdate()
    if status == "lent":
        devices = devices.filter(Q(lent_to=None) | Q(lent_to__gte=today), returned_on=None)
    elif status == "overdue":  # the lending ended, the return is not registered
        devices = devices.filter(lent_to__lt=today, returned_on=None)
    elif status == "returned":
        devices = devices.exclude(returned_on=None)
    shown = list(_with_tokens(devices).order_by("kind", "serial")[:500])
    # A list of patients' devices is a search over their records, and a read of each patient it
    # shows: the search row says what was asked, one row per patient who was on the screen.
    resource = f"Device?kind={kind}&status={status}"
    audit_record(user=request.user, action=Action.SEARCH, resource=resource, request=request)
    audit_record_many(user=request.user, action=Action.READ, ip=client_ip(request),
                      reads=[(f"{resource} (list)", pk) for pk in dict.fromkeys(d.patient_id for d in shown)])
    return render(request, "monitoring/device_list.html", {"form": form, "today": today, "devices": shown})


@login_required
def patient_devices(request: AuthenticatedHttpRequest, patient_id: uuid.UUID) -> HttpResponse:
    patient = _patient(request, patient_id, resource=f"Device?patient={patient_id} (page)")
    # The patient's earlier lendings (ADR 0015), without the current lendings listed above and
    # without whom a device went to next: that may be another team's patient.
    earlier = (DeviceLending.objects.filter(patient=patient).select_related("device")
               .exclude(device__patient=patient, device__lent_from=F("lent_from")).order_by("-lent_from"))
    return render(request, "monitoring/device_patient.html", {
        "patient": patient, "today": timezone.localdate(),
        "devices": _with_tokens(patient.devices.all()).order_by("-lent_from", "kind"),
        "earlier": earlier,
    })


# --- register and lend ------------------------------------------------------------------------

@login_required
@require_http_methods(["GET", "POST"])
def device_new(request: AuthenticatedHttpRequest, patient_id: uuid.UUID) -> HttpResponse:
    """Register a device and lend it to this patient (the model has no unlent devices)."""
    action = Action.CREATE if request.method == "POST" else Action.READ
    patient = _patient(request, patient_id, action=action, resource=f"Device (register for Patient/{patient_id})")
    form = DeviceRegisterForm(request.POST or None, initial={"lent_from": timezone.localdate()})
    if request.method == "POST" and form.is_valid():
        try:
            device = device_register(patient=patient, by=request.user, request=request, **form.cleaned_data)
        except ValidationError as exc:
            form_errors_from(form, exc)
        else:
            messages.success(request, _("The device is registered and lent to the patient. "
                                        "Issue a token if it sends its measurements itself."))
            return redirect("device-detail", patient_id=patient.pk, device_id=device.pk)
    return render(request, "monitoring/device_form.html", {
        "patient": patient, "form": form, "title": _("Register a new device"),
        "submit": _("Register and lend out"),
        "fields": [form["kind"], form["model"], form["serial"], form["lent_from"], form["lent_to"]],
    }, status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def device_lend_view(request: AuthenticatedHttpRequest, patient_id: uuid.UUID) -> HttpResponse:
    """Lend a registered, returned device (found by kind and serial number) to this patient."""
    action = Action.UPDATE if request.method == "POST" else Action.READ
    patient = _patient(request, patient_id, action=action, resource=f"Device (lend to Patient/{patient_id})")
    form = DeviceLendForm(request.POST or None, initial={"lent_from": timezone.localdate()})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        # Only devices the clinician can already see (lent to a patient of their teams) can be
        # found: a serial number must not reveal another team's patients' devices.
        device = Device.objects.filter(kind=data["kind"], serial__iexact=data["serial"].strip(),
                                       patient__in=patients_for(request.user)).first()
        if device is None:
            form.add_error("serial", _("No %(kind)s with this serial number is registered for your teams' "
                                       "patients. Register it as a new device instead.")
                           % {"kind": DeviceKind(data["kind"]).label.lower()})
        else:
            try:
                device = device_lend(device=device, patient=patient, lent_from=data["lent_from"],
                                     lent_to=data["lent_to"], by=request.user, request=request)
            except ValidationError as exc:
                form_errors_from(form, exc)
            else:
                messages.success(request, _("The device is lent to the patient. Its earlier tokens no "
                                            "longer work; issue a new one if it sends measurements."))
                return redirect("device-detail", patient_id=patient.pk, device_id=device.pk)
    return render(request, "monitoring/device_form.html", {
        "patient": patient, "form": form, "title": _("Lend a registered device"),
        "submit": _("Lend out"),
        "intro": _("For a device that has been returned by another patient. A device can only be "
                   "lent to one patient at a time."),
        "fields": [form["kind"], form["serial"], form["lent_from"], form["lent_to"]],
    }, status=400 if form.errors else 200)


# --- one device: return, tokens ---------------------------------------------------------------

def _detail(request: HttpRequest, patient: Patient, device: Device, return_form: DeviceReturnForm,
            status: int = 200) -> HttpResponse:
    today = timezone.localdate()
    return render(request, "monitoring/device_detail.html", {
        "patient": patient, "device": device, "return_form": return_form, "today": today,
        "returned": device.returned_on is not None,
        "overdue": device.status == "overdue",
        "tokens": device.tokens.order_by("-created_at")[:20],
        "live_tokens": device.tokens.filter(revoked_at=None).count(),
    }, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def device_detail(request: AuthenticatedHttpRequest, patient_id: uuid.UUID, device_id: int) -> HttpResponse:
    """The device, its tokens, and (POST) the form that records its return."""
    action = Action.UPDATE if request.method == "POST" else Action.READ
    patient = _patient(request, patient_id, action=action, resource=f"Device/{device_id} (page)")
    device = _device(patient, device_id)
    form = DeviceReturnForm(request.POST or None, initial={"returned_on": timezone.localdate()})
    if request.method == "POST" and form.is_valid():
        try:
            device_return(device=device, returned_on=form.cleaned_data["returned_on"], by=request.user,
                          request=request)
        except ValidationError as exc:
            form_errors_from(form, exc)
        else:
            messages.success(request, _("The return is registered and the device's tokens are revoked."))
            return redirect("device-detail", patient_id=patient.pk, device_id=device.pk)
    return _detail(request, patient, device, form, status=400 if form.errors else 200)


@never_cache
@require_POST
@login_required
def device_token_new(request: AuthenticatedHttpRequest, patient_id: uuid.UUID, device_id: int) -> HttpResponse:
    """Issue a token and show it, once, on the page this POST answers with.

    The raw token is put in this response and nowhere else: not in a URL, a session, a message
    cookie or the database (which keeps its hash). Reloading the page asks the browser to post
    again, which issues a new token and revokes this one — never shows this one twice."""
    patient = _patient(request, patient_id, action=Action.CREATE, resource=f"Device/{device_id} token")
    device = _device(patient, device_id)
    try:
        _token, raw = device_token_issue(device=device, by=request.user, request=request)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("device-detail", patient_id=patient.pk, device_id=device.pk)
    return render(request, "monitoring/device_token.html", {"patient": patient, "device": device, "raw": raw})


@require_POST
@login_required
def device_token_revoke_view(request: AuthenticatedHttpRequest, patient_id: uuid.UUID, device_id: int) -> HttpResponse:
    patient = _patient(request, patient_id, action=Action.UPDATE, resource=f"Device/{device_id} token revoke")
    device = _device(patient, device_id)
    revoked = device_token_revoke(device=device, by=request.user, request=request)
    if revoked:
        messages.success(request, _("The token is revoked. The device can no longer send measurements."))
    else:
        messages.info(request, _("The device had no token to revoke."))
    return redirect(reverse("device-detail", args=[patient.pk, device.pk]))
