from django import forms
from django.utils.translation import gettext_lazy as _
from django_otp import devices_for_user
from django_otp.forms import OTPAuthenticationForm


class LoginForm(OTPAuthenticationForm):
    """Username and password; the one-time code is asked for only from users who turned on
    two-factor login (django-otp checks it against their confirmed devices)."""

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
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

    def clean_otp(self, user):  # type: ignore[no-untyped-def]
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


class TotpConfirmForm(forms.Form):
    code = forms.RegexField(
        regex=r"^\d{6}$",
        label=_("Six-digit code from the app"),
        error_messages={"invalid": _("Type the six digits the app shows.")},
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code"}),
    )
