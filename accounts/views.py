from base64 import b32encode

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.forms import LoginForm, PasswordAgainForm, TotpConfirmForm
from accounts.http import AuthenticatedHttpRequest
from accounts.models import ApiToken, Role
from accounts.services import (
    LoginFactor,
    LoginPath,
    LoginResult,
    api_token_revoke,
    login_audit,
    user_logins_end,
)


class LoginView(auth_views.LoginView):
    form_class = LoginForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def _path(self) -> LoginPath:
        # The admin's login page redirects here with ?next=/admin/…
        nxt = self.request.POST.get("next") or self.request.GET.get("next") or ""
        return LoginPath.ADMIN if nxt.startswith("/admin/") else LoginPath.PAGE

    def form_valid(self, form: LoginForm) -> HttpResponse:  # type: ignore[override]  # form_class is LoginForm
        user = form.get_user()
        factor = LoginFactor.TOTP if form.cleaned_data.get("otp_device") else LoginFactor.PASSWORD
        response = super().form_valid(form)
        login_audit(request=self.request, path=self._path(), factor=factor, result=LoginResult.SUCCESS,
                    username=user.get_username(), user=user)
        return response

    def form_invalid(self, form: LoginForm) -> HttpResponse:  # type: ignore[override]  # form_class is LoginForm
        username = form.data.get("username", "")
        if username:
            if form.locked:
                factor, result = LoginFactor.PASSWORD, LoginResult.LOCKED
            elif form.get_user() is not None:  # the password was right; the code was not
                factor, result = LoginFactor.TOTP, LoginResult.FAILURE
            else:
                factor, result = LoginFactor.PASSWORD, LoginResult.FAILURE
            login_audit(request=self.request, path=self._path(), factor=factor, result=result, username=username)
        response = super().form_invalid(form)
        if form.locked:
            response.status_code = 429
        return response


@login_required
def home(request: AuthenticatedHttpRequest) -> HttpResponse:
    destinations: dict[str, str] = {
        Role.PATIENT: "my-home",
        Role.RELATIVE: "relative-home",
        Role.CLINICIAN: "triage",
        Role.QUALITY: "quality-overview",
        Role.ANALYST: "indicator-home",
        Role.ADMIN: "triage",
    }
    return redirect(destinations[request.user.role])


def _next_or(request: HttpRequest, fallback: str) -> str:
    nxt = request.POST.get("next") or request.GET.get("next") or ""
    if nxt and url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()},
                                               require_https=request.is_secure()):
        return nxt
    return fallback


@login_required
def two_factor(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Turn on (or move to another phone) TOTP two-factor login for a staff account.

    Both need the password again. Confirming a new app, and removing the old one, end every
    other session and every API token of the user (accounts.services.user_logins_end): whoever
    was logged in elsewhere logs in again, with the new factor."""
    if not request.user.is_staff_role:
        return HttpResponseForbidden()
    required = settings.REQUIRE_STAFF_TWO_FACTOR
    confirmed = TOTPDevice.objects.filter(user=request.user, confirmed=True).first()
    if confirmed:
        reset_form = PasswordAgainForm(request.POST or None, request=request)
        if request.method == "POST" and not request.user.is_verified():
            # Only a session that passed the current app may remove it: the password alone
            # must not be enough to move someone's second factor.
            reset_form.add_error(None, _("Log out and log in again with a code from your current app first."))
        if request.method == "POST" and reset_form.is_valid():
            TOTPDevice.objects.filter(user=request.user).delete()
            user_logins_end(user=request.user, keep_request=request, reason="second factor removed")
            messages.info(request, _("Your authenticator app is removed. Set up the new one now."))
            return redirect("two-factor")
        return render(request, "accounts/two_factor.html",
                      {"enabled": True, "reset_form": reset_form, "required": required},
                      status=400 if reset_form.errors else 200)
    device, _created = TOTPDevice.objects.get_or_create(
        user=request.user, confirmed=False, defaults={"name": "authenticator app"}
    )
    form = TotpConfirmForm(request.POST or None, request=request)
    if request.method == "POST" and form.is_valid():
        username = request.user.get_username()
        if device.verify_token(form.cleaned_data["code"]):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            otp_login(request, device)  # this session has now passed two-factor login
            user_logins_end(user=request.user, keep_request=request, reason="second factor added")
            login_audit(request=request, path=LoginPath.TWO_FACTOR, factor=LoginFactor.TOTP,
                        result=LoginResult.SUCCESS, username=username, user=request.user)
            messages.success(request, _("Two-factor login is on. From now on you log in with a code."))
            return redirect(_next_or(request, "two-factor"))
        login_audit(request=request, path=LoginPath.TWO_FACTOR, factor=LoginFactor.TOTP,
                    result=LoginResult.FAILURE, username=username)
        form.add_error("code", _("That code is not right. Check the clock on your phone and try again."))
    qr_svg = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage).to_string(
        encoding="unicode"
    )
    secret = b32encode(device.bin_key).decode()
    return render(request, "accounts/two_factor.html",
                  {"enabled": False, "form": form, "qr_svg": qr_svg, "secret": secret, "required": required,
                   "next": _next_or(request, "")},
                  status=400 if form.errors else 200)


@login_required
def tokens(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The person's own API tokens (programs they logged in with), to see and revoke."""
    rows = ApiToken.objects.filter(user=request.user).order_by("-created_at")[:100]
    return render(request, "accounts/tokens.html", {"tokens": rows, "now": timezone.now()})


@login_required
@require_POST
def token_revoke(request: AuthenticatedHttpRequest, token_id: int) -> HttpResponse:
    if not api_token_revoke(owner=request.user, token_id=token_id, by=request.user, request=request):
        raise Http404  # someone else's token is not told apart from one that does not exist
    messages.success(request, _("The token is revoked. A program using it must log in again."))
    return redirect("account-tokens")
