"""POST /api/v1/auth/token, its throttle, TOTP two-factor, and the login page."""

import itertools
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.throttling import ScopedRateThrottle

from accounts.models import ApiToken
from audit.models import Action, AuditEvent, Outcome
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

URL = "/api/v1/auth/token"
_addresses = itertools.count(1)


def _throttle_key(ident: str) -> str:
    return ScopedRateThrottle.cache_format % {"scope": "auth-token", "ident": ident}


@pytest.fixture
def address():
    """A client address of this test's own, so throttle counts never leak between tests (nor
    into other test runs sharing the Redis cache). Its throttle entry is removed afterwards:
    cache.clear() would flush the whole Redis database, Celery's queue included."""
    ip = f"198.51.100.{next(_addresses) % 250 + 1}"
    cache.delete(_throttle_key(ip))
    yield ip
    cache.delete(_throttle_key(ip))


def _token(client, address, **body):
    return client.post(URL, body, content_type="application/json", REMOTE_ADDR=address)


def _code(device: TOTPDevice) -> str:
    """The code an authenticator app shows now (the same computation TOTPDevice.verify_token does)."""
    value = totp(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{value:0{device.digits}d}"


@pytest.fixture
def totp_device(cast):
    return TOTPDevice.objects.create(user=cast.clinician_a, name="phone", confirmed=True)


# --- tokens ----------------------------------------------------------------------------------

def test_good_credentials_give_201_and_a_bearer_token_that_opens_the_alert_list(cast, client, address):
    response = _token(client, address, username="clinician-a", password=PASSWORD)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["token"].startswith("pp_")
    lifetime = timedelta(hours=django_settings.API_TOKEN_LIFETIME_HOURS)
    token = ApiToken.objects.get(user=cast.clinician_a)
    assert abs(token.expires_at - (timezone.now() + lifetime)) < timedelta(minutes=1)
    assert token.key_hash != body["token"]  # only the hash is stored

    alerts = client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {body['token']}"})
    assert alerts.status_code == 200
    assert alerts.json() == []
    row = AuditEvent.objects.get(action=Action.LOGIN)
    assert (row.user, row.outcome, row.client_ip) == (cast.clinician_a, Outcome.ALLOWED, address)


def test_wrong_password_gives_401_and_a_denied_audit_row(cast, client, address):
    response = _token(client, address, username="clinician-a", password="not-the-password")
    assert response.status_code == 401
    assert "token" not in response.json()
    assert not ApiToken.objects.exists()
    row = AuditEvent.objects.get(action=Action.LOGIN)
    assert row.outcome == Outcome.DENIED
    assert row.user is None
    assert "clinician-a" in row.resource
    assert "not-the-password" not in row.resource
    assert row.client_ip == address
    assert row.request_id == response["X-Request-ID"]


def test_unknown_user_gives_the_same_401_as_a_wrong_password(cast, client, address):
    unknown = _token(client, address, username="nobody", password=PASSWORD)
    wrong = _token(client, address, username="clinician-a", password="nope-nope")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json()["detail"] == wrong.json()["detail"]


def test_inactive_user_gets_no_token(cast, client, address):
    cast.clinician_a.is_active = False
    cast.clinician_a.save()
    assert _token(client, address, username="clinician-a", password=PASSWORD).status_code == 401


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"username", "password"}),
        ({"username": "clinician-a"}, {"password"}),
        ({"password": PASSWORD}, {"username"}),
        ({"username": "clinician-a", "password": PASSWORD, "otp_token": "12ab56"}, {"otp_token"}),
    ],
)
def test_missing_or_malformed_fields_give_400_with_a_message_per_field(cast, client, address, body, fields):
    response = _token(client, address, **body)
    assert response.status_code == 400
    errors = response.json()
    assert fields <= set(errors), errors
    for field in fields:
        assert isinstance(errors[field], list) and errors[field][0]
    assert not ApiToken.objects.exists()


def test_revoked_or_expired_token_is_refused(cast, client):
    revoked, revoked_raw = ApiToken.issue(cast.clinician_a)
    expired, expired_raw = ApiToken.issue(cast.clinician_a)
    ApiToken.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    for raw in (revoked_raw, expired_raw):
        assert client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {raw}"}).status_code == 401


def test_token_of_a_deactivated_user_is_refused(cast, client):
    _, raw = ApiToken.issue(cast.clinician_a)
    cast.clinician_a.is_active = False
    cast.clinician_a.save()
    assert client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {raw}"}).status_code == 401


# --- throttling ------------------------------------------------------------------------------

def _rate() -> int:
    configured = django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["auth-token"]
    assert ScopedRateThrottle.THROTTLE_RATES["auth-token"] == configured
    allowed, _seconds = ScopedRateThrottle().parse_rate(configured)
    assert allowed is not None
    return allowed


def test_token_endpoint_answers_429_after_the_configured_rate(cast, client, address):
    allowed = _rate()
    # A sweep over many usernames from one address: each username fails once (no account lock,
    # accounts.lockout), so it is the per-address throttle that stops it.
    for n in range(allowed):
        assert _token(client, address, username=f"guess-{n}", password="wrong-guess").status_code == 401
    response = _token(client, address, username="clinician-a", password=PASSWORD)
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert response.json()["request_id"] == response["X-Request-ID"]
    assert not ApiToken.objects.exists()


def test_throttle_counts_per_client_address(cast, client, address):
    allowed = _rate()
    for n in range(allowed + 1):
        _token(client, address, username=f"guess-{n}", password="wrong-guess")
    other = f"192.0.2.{next(_addresses) % 250 + 1}"
    cache.delete(_throttle_key(other))
    try:
        assert _token(client, other, username="clinician-a", password=PASSWORD).status_code == 201
    finally:
        cache.delete(_throttle_key(other))


def test_throttle_cannot_be_dodged_with_a_forged_x_forwarded_for_header(cast, client, address):
    allowed = _rate()
    statuses = []
    for n in range(allowed + 1):
        forged = f"10.0.{n // 250}.{n % 250 + 1}"
        response = client.post(URL, {"username": "clinician-a", "password": "wrong-guess"},
                                content_type="application/json", REMOTE_ADDR=address,
                                headers={"X-Forwarded-For": forged})
        statuses.append(response.status_code)
        cache.delete(_throttle_key(forged))
    assert statuses[-1] == 429, statuses


# --- TOTP two-factor -------------------------------------------------------------------------

def test_totp_user_without_a_code_gets_401(cast, client, address, totp_device):
    response = _token(client, address, username="clinician-a", password=PASSWORD)
    assert response.status_code == 401
    assert not ApiToken.objects.exists()
    assert AuditEvent.objects.get(action=Action.LOGIN).outcome == Outcome.DENIED


def test_totp_user_with_a_wrong_code_gets_401(cast, client, address, totp_device):
    wrong = f"{(int(_code(totp_device)) + 1) % 10**6:06d}"
    response = _token(client, address, username="clinician-a", password=PASSWORD, otp_token=wrong)
    assert response.status_code == 401


def test_totp_user_with_the_current_code_gets_201(cast, client, address, totp_device):
    response = _token(client, address, username="clinician-a", password=PASSWORD,
                      otp_token=_code(totp_device))
    assert response.status_code == 201, response.content
    assert ApiToken.objects.filter(user=cast.clinician_a).count() == 1


def test_totp_code_cannot_be_replayed(cast, client, address, totp_device):
    code = _code(totp_device)
    first = _token(client, address, username="clinician-a", password=PASSWORD, otp_token=code)
    second = _token(client, address, username="clinician-a", password=PASSWORD, otp_token=code)
    assert (first.status_code, second.status_code) == (201, 401)


def test_correct_code_with_wrong_password_gets_401(cast, client, address, totp_device):
    response = _token(client, address, username="clinician-a", password="wrong-pass",
                      otp_token=_code(totp_device))
    assert response.status_code == 401


def test_unconfirmed_totp_device_does_not_demand_a_code(cast, client, address):
    TOTPDevice.objects.create(user=cast.clinician_a, name="half set up", confirmed=False)
    assert _token(client, address, username="clinician-a", password=PASSWORD).status_code == 201


# --- the login page --------------------------------------------------------------------------

def _logged_in_user_id(client):
    return client.session.get("_auth_user_id")


def test_login_page_logs_in_a_user_without_two_factor_with_password_only(cast, client):
    response = client.post("/login/", {"username": "clinician-a", "password": PASSWORD})
    assert response.status_code == 302
    assert _logged_in_user_id(client) == str(cast.clinician_a.pk)


def test_login_page_refuses_a_wrong_password(cast, client):
    response = client.post("/login/", {"username": "clinician-a", "password": "wrong"})
    assert response.status_code == 200
    assert _logged_in_user_id(client) is None


def test_login_page_refuses_a_totp_user_without_the_code(cast, client, totp_device):
    response = client.post("/login/", {"username": "clinician-a", "password": PASSWORD})
    assert response.status_code == 200
    assert response.context["form"].errors
    assert _logged_in_user_id(client) is None
    assert client.get("/triage/").status_code == 302  # still sent to the login page


def test_login_page_refuses_a_totp_user_with_a_wrong_code(cast, client, totp_device):
    wrong = f"{(int(_code(totp_device)) + 1) % 10**6:06d}"
    response = client.post("/login/", {"username": "clinician-a", "password": PASSWORD, "otp_token": wrong})
    assert response.status_code == 200
    assert _logged_in_user_id(client) is None


def test_login_page_logs_in_a_totp_user_with_the_code_and_marks_the_session_verified(
        cast, client, totp_device):
    response = client.post("/login/", {"username": "clinician-a", "password": PASSWORD,
                                       "otp_token": _code(totp_device)})
    assert response.status_code == 302, response.context["form"].errors if response.context else ""
    assert _logged_in_user_id(client) == str(cast.clinician_a.pk)
    triage = client.get("/triage/")
    assert triage.status_code == 200
    assert triage.wsgi_request.user.is_verified()
