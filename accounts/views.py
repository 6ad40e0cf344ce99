from base64 import b32encode

import qrcode
import qrcode.image.svg
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.forms import LoginForm, TotpConfirmForm
from accounts.models import Role


class LoginView(auth_views.LoginView):
    form_class = LoginForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = True


@login_required
def home(request: HttpRequest) -> HttpResponse:
    destination = {
        Role.PATIENT: "my-home",
        Role.RELATIVE: "relative-home",
        Role.CLINICIAN: "triage",
        Role.QUALITY: "quality-overview",
        Role.ADMIN: "triage",
    }[request.user.role]
    return redirect(destination)


@login_required
def two_factor(request: HttpRequest) -> HttpResponse:
    """Turn on TOTP two-factor login for a staff account (django-otp's TOTPDevice)."""
    if not request.user.is_staff_role:
        return HttpResponseForbidden()
    confirmed = TOTPDevice.objects.filter(user=request.user, confirmed=True).first()
    if confirmed:
        return render(request, "accounts/two_factor.html", {"enabled": True})
    device, _created = TOTPDevice.objects.get_or_create(
        user=request.user, confirmed=False, defaults={"name": "authenticator app"}
    )
    form = TotpConfirmForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["code"]):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            messages.success(request, _("Two-factor login is on. From now on you log in with a code."))
            return redirect("two-factor")
        form.add_error("code", _("That code is not right. Check the clock on your phone and try again."))
    qr_svg = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage).to_string(
        encoding="unicode"
    )
    secret = b32encode(device.bin_key).decode()
    return render(request, "accounts/two_factor.html",
                  {"enabled": False, "form": form, "qr_svg": qr_svg, "secret": secret})
