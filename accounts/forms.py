from typing import Any

from django import forms
from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django_otp import devices_for_user
from django_otp.forms import OTPAuthenticationForm

from accounts.lockout import is_locked_out, lockout_retry_after
from accounts.models import User


class LoginForm(OTPAuthenticationForm):
    """Username and password; the one-time code is asked for only from users who turned on
    two-factor login (django-otp checks it against their confirmed devices)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["otp_token"].label = _("Code from your authenticator app")
        self.fields["otp_token"].widget.attrs.update(
            {"inputmode": "numeric", "autocomplete": "one-time-code"}
        )
        self.fields["username"].widget.attrs.update({"autocomplete": "username"})
        self.fields["password"].widget.attrs.update({"autocomplete": "current-password"})
        # Only one kind of device (TOTP); the device picker and challenge are not needed.
        del self.fields["otp_device"]
        del self.fields["otp_challenge"]

    def clean(self) -> dict[str, Any] | None:
        try:
            cleaned: dict[str, Any] | None = super().clean()  # django-otp's form is untyped
            return cleaned
        except ValidationError:
            if self.request is not None and is_locked_out(self.request):
                # Said plainly, so that the person knows waiting helps (the right password
                # would be refused as well) — and told whom to ask.
                minutes = max(1, -(-lockout_retry_after(self.cleaned_data.get("username", "")) // 60))
                raise ValidationError(ngettext(
                    "Too many failed logins for this username. It is locked: try again in %(minutes)d "
                    "minute, or ask an administrator to unlock it.",
                    "Too many failed logins for this username. It is locked: try again in %(minutes)d "
                    "minutes, or ask an administrator to unlock it.", minutes) % {"minutes": minutes},
                    code="locked") from None
            raise

    @property
    def locked(self) -> bool:
        return any(e.code == "locked" for e in self.errors.as_data().get("__all__", []))

    def clean_otp(self, user: User | None) -> None:
        # django-otp's form has no OTP-optional mode: it asks every user for a code and, with the
        # device picker removed, could never verify one. Users without a confirmed device log in
        # with their password; the others' code is checked against their (TOTP) device.
        if user is None:
            return
        device = next(iter(devices_for_user(user, confirmed=True)), None)
        if device is None:
            return
        self.cleaned_data["otp_device"] = device.persistent_id
        super().clean_otp(user)


class PasswordAgainForm(forms.Form):
    """Changing the second factor asks for the password again: a session left open on a shared
    ward PC must not be enough to move someone's two-factor login to another phone."""

    password = forms.CharField(label=_("Your password"), strip=False,
                               widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))

    def __init__(self, *args: Any, request: HttpRequest, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request = request

    def clean_password(self) -> str:
        # Through authenticate(), so that guesses here count towards the lockout like any other.
        password = self.cleaned_data["password"]
        username = self.request.user.get_username()
        if authenticate(self.request, username=username, password=password) is None:
            if is_locked_out(self.request):
                raise ValidationError(_("Too many failed logins for this username. It is locked for now; "
                                        "try again later, or ask an administrator to unlock it."),
                                      code="locked")
            raise ValidationError(_("That is not your password."), code="wrong_password")
        return str(password)


class TotpConfirmForm(PasswordAgainForm):
    code = forms.RegexField(
        regex=r"^\d{6}$",
        label=_("Six-digit code from the app"),
        error_messages={"invalid": _("Type the six digits the app shows.")},
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code"}),
    )
