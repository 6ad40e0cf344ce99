"""Issue 20: lockout after failed logins, two-factor login for staff, the login audit, person
tokens (list, revoke, ended with the password, the account or the second factor), the idle
timeout, and bin/production-local's demo password."""

import itertools
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.throttling import ScopedRateThrottle

from accounts.middleware import LAST_SEEN_KEY
from accounts.models import ApiToken
from audit.models import Action, AuditEvent, Outcome
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
TOKEN_URL = "/api/v1/auth/token"
_addresses = itertools.count(1)


@pytest.fixture
def address():
    """An address of this test's own, so the token endpoint's per-address throttle (in the
    cache, which may be a Redis shared with other runs) never carries over between tests."""
    ip = f"203.0.113.{next(_addresses) % 250 + 1}"
    key = ScopedRateThrottle.cache_format % {"scope": "auth-token", "ident": ip}
    cache.delete(key)
    yield ip
    cache.delete(key)


def _token(client, address, **body):
    return client.post(TOKEN_URL, body, content_type="application/json", REMOTE_ADDR=address)


def _login(client, username, password, **extra):
    return client.post("/login/", {"username": username, "password": password, **extra})


def _code(device: TOTPDevice) -> str:
    value = totp(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{value:0{device.digits}d}"


def _wrong_code(device: TOTPDevice) -> str:
    return f"{(int(_code(device)) + 1) % 10**6:06d}"


def _logins() -> list[str]:
    return list(AuditEvent.objects.filter(action=Action.LOGIN).order_by("id").values_list("resource", flat=True))


def _fail(client, username, times, **extra):
    for _ in range(times):
        assert _login(client, username, "wrong-guess", **extra).status_code in (200, 429)


# --- lockout: the login page (and /admin/, which logs in through it) ----------------------------

def test_five_wrong_passwords_lock_the_account_and_the_right_one_is_then_refused(cast, client, settings):
    _fail(client, "clinician-a", settings.AXES_FAILURE_LIMIT)
    response = _login(client, "clinician-a", PASSWORD)
    assert response.status_code == 429
    assert client.session.get("_auth_user_id") is None
    assert response.context["form"].locked
    assert _logins()[-1].startswith("page factor=password result=locked username=clinician-a")
    assert AuditEvent.objects.filter(action=Action.LOGIN).last().outcome == Outcome.DENIED


def test_the_lock_message_on_the_login_page_is_in_danish(cast, client, settings):
    _fail(client, "clinician-a", settings.AXES_FAILURE_LIMIT)
    page = client.post("/login/", {"username": "clinician-a", "password": PASSWORD}, HTTP_ACCEPT_LANGUAGE="da")
    assert "For mange mislykkede logins" in page.content.decode()


def test_a_locked_account_opens_again_after_the_cool_off(cast, client, settings):
    _fail(client, "clinician-a", settings.AXES_FAILURE_LIMIT)
    assert _login(client, "clinician-a", PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    assert _login(client, "clinician-a", PASSWORD).status_code == 302


def test_an_admin_unlocks_an_account_with_axes_reset_username(cast, client, settings):
    _fail(client, "clinician-a", settings.AXES_FAILURE_LIMIT)
    assert _login(client, "clinician-a", PASSWORD).status_code == 429
    call_command("axes_reset_username", "clinician-a", stdout=open(os.devnull, "w"))  # noqa: SIM115
    assert _login(client, "clinician-a", PASSWORD).status_code == 302


def test_login_unlock_lifts_the_lock_and_leaves_an_audit_row(cast, client, settings):
    _fail(client, "clinician-a", settings.AXES_FAILURE_LIMIT)
    call_command("login_unlock", "clinician-a", stdout=open(os.devnull, "w"))  # noqa: SIM115
    assert AuditEvent.objects.filter(resource__startswith="login unlocked username=clinician-a").exists()
    assert _login(client, "clinician-a", PASSWORD).status_code == 302


def test_failures_from_many_addresses_add_up_to_one_lock(cast, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        _login(Client(REMOTE_ADDR=f"192.0.2.{n + 1}"), "clinician-a", "wrong-guess")
    assert _login(Client(REMOTE_ADDR="192.0.2.200"), "clinician-a", PASSWORD).status_code == 429


def test_someone_guessing_other_accounts_from_a_shared_address_does_not_lock_out_a_colleague(cast, settings):
    ward = Client(REMOTE_ADDR="10.20.30.40")
    for username in ("clinician-b", "quality", "admin", "nobody"):
        _fail(ward, username, settings.AXES_FAILURE_LIMIT)
    assert _login(Client(REMOTE_ADDR="10.20.30.40"), "clinician-a", PASSWORD).status_code == 302


def test_a_successful_login_clears_earlier_failures(cast, client, settings):
    _fail(client, "clinician-a", settings.AXES_FAILURE_LIMIT - 1)
    assert _login(client, "clinician-a", PASSWORD).status_code == 302
    client.logout()
    _fail(client, "clinician-a", settings.AXES_FAILURE_LIMIT - 1)
    assert _login(client, "clinician-a", PASSWORD).status_code == 302


def test_the_admin_login_is_the_same_locked_login_and_is_audited_as_admin(cast, client, settings):
    assert client.get("/admin/login/?next=/admin/")["Location"].startswith("/login/")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/?next=/admin/", {"username": "admin", "password": "wrong", "next": "/admin/"})
    response = client.post("/login/?next=/admin/", {"username": "admin", "password": PASSWORD, "next": "/admin/"})
    assert response.status_code == 429
    assert _logins()[0].startswith("admin factor=password result=failure username=admin")
    assert _logins()[-1].startswith("admin factor=password result=locked username=admin")


# --- lockout: the token endpoint ---------------------------------------------------------------

def test_token_endpoint_locks_the_account_after_guesses_from_several_addresses(cast, client, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        ip = f"198.18.0.{n + 1}"
        response = client.post(TOKEN_URL, {"username": "clinician-a", "password": "wrong"},
                               content_type="application/json", REMOTE_ADDR=ip)
        assert response.status_code in (401, 429)
    response = client.post(TOKEN_URL, {"username": "clinician-a", "password": PASSWORD},
                           content_type="application/json", REMOTE_ADDR="198.18.0.99")
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= settings.AXES_COOLOFF_TIME.total_seconds()
    body = response.json()
    assert body["username"][0] and body["detail"] and body["request_id"] == response["X-Request-ID"]
    assert not ApiToken.objects.exists()
    assert _logins()[-1].startswith("api-token factor=password result=locked username=clinician-a")


def test_a_locked_account_gets_no_token_from_the_page_either_and_vice_versa(cast, client, address, settings):
    _fail(client, "clinician-a", settings.AXES_FAILURE_LIMIT)
    assert _token(client, address, username="clinician-a", password=PASSWORD).status_code == 429


def test_the_attempted_password_is_never_stored(cast, client, address, settings):
    secret = "Guess-Xq7-unique"
    for _ in range(settings.AXES_FAILURE_LIMIT + 1):
        _login(client, "clinician-a", secret)
    _token(client, address, username="clinician-a", password=secret)
    assert not AuditEvent.objects.filter(resource__contains=secret).exists()
    for attempt in AccessAttempt.objects.all():
        assert secret not in attempt.post_data and secret not in attempt.get_data


def test_a_device_reading_never_touches_the_lockout_tables(cast, client):
    body = {"measure": "spo2", "value": 95, "unit": "%",
            "effective_at": (timezone.now() - timedelta(minutes=5)).isoformat()}
    with CaptureQueriesContext(connection) as queries:
        response = client.post("/api/v1/readings", body, content_type="application/json",
                               headers={"Authorization": f"Bearer {cast.device_token_a}"})
    assert response.status_code == 201, response.content
    assert not [q["sql"] for q in queries if "axes_" in q["sql"]]


# --- every login attempt is audited ----------------------------------------------------------

def test_page_logins_are_audited_with_outcome_and_factor(cast, client):
    _login(client, "clinician-a", "wrong")
    _login(client, "clinician-a", PASSWORD)
    assert [r.split(" username=")[0] for r in _logins()] == [
        "page factor=password result=failure", "page factor=password result=success"]
    success = AuditEvent.objects.filter(action=Action.LOGIN).last()
    assert (success.user, success.outcome) == (cast.clinician_a, Outcome.ALLOWED)


def test_a_wrong_code_after_the_right_password_is_audited_as_a_totp_failure(cast, client, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # django-otp waits 1 s, 2 s, 4 s … after each wrong code
    device = TOTPDevice.objects.create(user=cast.clinician_a, name="phone", confirmed=True)
    _login(client, "clinician-a", PASSWORD, otp_token=_wrong_code(device))
    _login(client, "clinician-a", PASSWORD, otp_token=_code(device))
    assert [r.split(" username=")[0] for r in _logins()] == [
        "page factor=totp result=failure", "page factor=totp result=success"]


def test_token_logins_are_audited_with_outcome_and_factor(cast, client, address):
    _token(client, address, username="patient-a", password="wrong")
    _token(client, address, username="patient-a", password=PASSWORD)
    assert [r.split(" username=")[0] for r in _logins()] == [
        "api-token factor=password result=failure", "api-token factor=password result=success"]


# --- two-factor login required for staff -------------------------------------------------------

@pytest.fixture
def two_factor_required(settings):
    settings.REQUIRE_STAFF_TWO_FACTOR = True


@pytest.mark.parametrize("who", ["clinician_a", "quality", "admin"])
def test_staff_session_without_two_factor_is_sent_to_the_enrolment_page(cast, client, two_factor_required, who):
    client.force_login(getattr(cast, who))
    for page in ("/triage/", "/quality/", f"/patients/{cast.patient_a.pk}/", "/admin/"):
        response = client.get(page)
        assert response.status_code == 302, page
        assert response["Location"].startswith("/account/two-factor/?next="), page


@pytest.mark.parametrize("path", ["/api/v1/alerts", "/fhir/Patient/x", "/api/v1/auth/tokens"])
def test_staff_session_without_two_factor_gets_403_json_from_the_api(cast, client, two_factor_required, path):
    client.force_login(cast.clinician_a)
    response = client.get(path)
    assert response.status_code == 403
    assert "two-factor" in response.json()["detail"].lower() or "totrins" in response.json()["detail"].lower()


def test_patients_are_not_asked_for_a_second_factor(cast, client, two_factor_required):
    client.force_login(cast.patient_a.user)
    assert client.get("/me/").status_code == 200


def test_with_the_setting_off_staff_log_in_with_a_password_as_in_the_demo(cast, client):
    _login(client, "clinician-a", PASSWORD)
    assert client.get("/triage/").status_code == 200


def test_first_staff_login_leads_through_enrolment_to_the_triage_page(cast, client, two_factor_required, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # django-otp waits 1 s, 2 s, 4 s … after each wrong code
    response = _login(client, "clinician-a", PASSWORD)
    assert response.status_code == 302
    response = client.get(response["Location"], follow=True)
    assert response.redirect_chain[-1][0].startswith("/account/two-factor/")
    device = TOTPDevice.objects.get(user=cast.clinician_a, confirmed=False)

    wrong = client.post("/account/two-factor/?next=/triage/",
                        {"password": PASSWORD, "code": _wrong_code(device), "next": "/triage/"})
    assert wrong.status_code == 400
    assert wrong.context["form"].errors["code"]
    assert client.get("/triage/").status_code == 302

    no_password = client.post("/account/two-factor/", {"password": "wrong", "code": _code(device)})
    assert no_password.status_code == 400 and no_password.context["form"].errors["password"]

    done = client.post("/account/two-factor/?next=/triage/",
                       {"password": PASSWORD, "code": _code(device), "next": "/triage/"})
    assert done.status_code == 302 and done["Location"] == "/triage/"
    assert client.get("/triage/").status_code == 200
    assert _logins()[-1].startswith("two-factor factor=totp result=success username=clinician-a")
    assert "two-factor factor=totp result=failure" in " ".join(_logins())


def test_staff_without_a_device_get_no_token_where_two_factor_is_required(cast, client, address, two_factor_required):
    response = _token(client, address, username="clinician-a", password=PASSWORD)
    assert response.status_code == 403
    assert response.json()["otp_token"][0]
    assert not ApiToken.objects.exists()
    # a patient still gets one with the password
    assert _token(client, address, username="patient-a", password=PASSWORD).status_code == 201


def test_staff_with_a_device_get_a_token_with_the_code(cast, client, address, two_factor_required):
    device = TOTPDevice.objects.create(user=cast.clinician_a, name="phone", confirmed=True)
    assert _token(client, address, username="clinician-a", password=PASSWORD).status_code == 401
    ok = _token(client, address, username="clinician-a", password=PASSWORD, otp_token=_code(device))
    assert ok.status_code == 201
    assert client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {ok.json()['token']}"}).status_code == 200


# --- changing the second factor --------------------------------------------------------------

def _verified_client(user, device) -> Client:
    c = Client()
    response = c.post("/login/", {"username": user.username, "password": PASSWORD, "otp_token": _code(device)})
    assert response.status_code == 302
    return c


def test_removing_the_authenticator_app_needs_the_password(cast, client, two_factor_required):
    device = TOTPDevice.objects.create(user=cast.clinician_a, name="phone", confirmed=True)
    me = _verified_client(cast.clinician_a, device)
    response = me.post("/account/two-factor/", {"password": "not-mine"})
    assert response.status_code == 400
    assert response.context["reset_form"].errors["password"]
    assert TOTPDevice.objects.filter(pk=device.pk).exists()


def test_a_session_that_has_not_passed_the_current_app_cannot_remove_it(cast, client):
    device = TOTPDevice.objects.create(user=cast.clinician_a, name="phone", confirmed=True)
    client.force_login(cast.clinician_a)  # password only (e.g. from before the app was set up)
    response = client.post("/account/two-factor/", {"password": PASSWORD})
    assert response.status_code == 400
    assert response.context["reset_form"].non_field_errors()
    assert TOTPDevice.objects.filter(pk=device.pk, confirmed=True).exists()


def test_removing_the_authenticator_app_ends_other_sessions_and_tokens_but_not_this_one(
        cast, client, two_factor_required):
    device = TOTPDevice.objects.create(user=cast.clinician_a, name="phone", confirmed=True)
    me = _verified_client(cast.clinician_a, device)
    other = Client()
    other.force_login(cast.clinician_a)
    _, raw = ApiToken.issue(cast.clinician_a)

    response = me.post("/account/two-factor/", {"password": PASSWORD})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=cast.clinician_a, confirmed=True).exists()
    assert other.get("/triage/")["Location"].startswith("/login/")  # logged out
    assert Client().get("/api/v1/alerts", headers={"Authorization": f"Bearer {raw}"}).status_code == 401
    # still logged in here, and led to set up the new app
    assert me.get("/triage/")["Location"].startswith("/account/two-factor/")


def test_turning_on_two_factor_ends_other_sessions_and_tokens(cast, client):
    client.force_login(cast.clinician_a)
    other = Client()
    other.force_login(cast.clinician_a)
    _, raw = ApiToken.issue(cast.clinician_a)
    client.get("/account/two-factor/")
    device = TOTPDevice.objects.get(user=cast.clinician_a, confirmed=False)
    assert client.post("/account/two-factor/", {"password": PASSWORD, "code": _code(device)}).status_code == 302
    assert client.get("/triage/").status_code == 200
    assert other.get("/triage/").status_code == 302
    assert Client().get("/api/v1/alerts", headers={"Authorization": f"Bearer {raw}"}).status_code == 401


# --- person tokens ---------------------------------------------------------------------------

def _bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


def test_a_person_lists_their_own_tokens_only_and_sees_which_is_in_use(cast, client):
    mine, raw = ApiToken.issue(cast.clinician_a)
    older, _ = ApiToken.issue(cast.clinician_a)
    ApiToken.issue(cast.clinician_b)
    response = client.get("/api/v1/auth/tokens", headers=_bearer(raw))
    assert response.status_code == 200
    rows = {row["id"]: row for row in response.json()}
    assert set(rows) == {mine.pk, older.pk}
    assert rows[mine.pk]["current"] is True and rows[older.pk]["current"] is False
    assert "key_hash" not in rows[mine.pk]


def test_a_person_revokes_a_token_and_it_stops_working(cast, client):
    _, raw = ApiToken.issue(cast.clinician_a)
    other, other_raw = ApiToken.issue(cast.clinician_a)
    assert client.delete(f"/api/v1/auth/tokens/{other.pk}", headers=_bearer(raw)).status_code == 204
    assert client.get("/api/v1/alerts", headers=_bearer(other_raw)).status_code == 401
    assert client.get("/api/v1/alerts", headers=_bearer(raw)).status_code == 200
    assert client.delete(f"/api/v1/auth/tokens/{other.pk}", headers=_bearer(raw)).status_code == 204  # again
    assert AuditEvent.objects.filter(resource__startswith=f"api-token {other.pk} ").count() == 1


def test_revoking_someone_elses_token_gives_404_and_leaves_it_working(cast, client):
    _, raw = ApiToken.issue(cast.clinician_a)
    theirs, their_raw = ApiToken.issue(cast.clinician_b)
    response = client.delete(f"/api/v1/auth/tokens/{theirs.pk}", headers=_bearer(raw))
    assert response.status_code == 404
    assert response.json()["request_id"]
    assert client.get("/api/v1/alerts", headers=_bearer(their_raw)).status_code == 200
    assert client.delete("/api/v1/auth/tokens/999999", headers=_bearer(raw)).status_code == 404


def test_the_token_list_needs_a_login(cast, client):
    assert client.get("/api/v1/auth/tokens").status_code in (401, 403)


def test_the_account_page_lists_and_revokes_the_persons_tokens(cast, client):
    token, raw = ApiToken.issue(cast.patient_a.user)
    theirs, _ = ApiToken.issue(cast.clinician_b)
    client.force_login(cast.patient_a.user)
    page = client.get("/account/tokens/")
    assert page.status_code == 200
    assert list(page.context["tokens"]) == [token]
    assert client.post(f"/account/tokens/{theirs.pk}/revoke/").status_code == 404
    assert client.post(f"/account/tokens/{token.pk}/revoke/").status_code == 302
    assert Client().get("/api/v1/readings", headers=_bearer(raw)).status_code == 401


def test_an_admin_revokes_tokens_in_the_django_admin(cast, client):
    token, raw = ApiToken.issue(cast.clinician_b)
    cast.admin.is_staff = cast.admin.is_superuser = True
    cast.admin.save()
    client.force_login(cast.admin)
    assert client.get("/admin/accounts/apitoken/").status_code == 200
    response = client.post("/admin/accounts/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_a_password_change_ends_every_token_and_other_session(cast, client):
    _, raw = ApiToken.issue(cast.clinician_a)
    client.force_login(cast.clinician_a)
    user = cast.clinician_a
    user.set_password("a-new-password-4711")
    user.save()
    assert Client().get("/api/v1/alerts", headers=_bearer(raw)).status_code == 401
    assert client.get("/triage/").status_code == 302


def test_deactivating_an_account_revokes_its_tokens(cast, client):
    token, _ = ApiToken.issue(cast.clinician_a)
    cast.clinician_a.is_active = False
    cast.clinician_a.save()
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_a_login_that_only_records_last_login_keeps_the_tokens(cast, client, address):
    token, _ = ApiToken.issue(cast.clinician_a)
    assert _login(client, "clinician-a", PASSWORD).status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is None


# --- session idle timeout --------------------------------------------------------------------

def _age_session(client, seconds: int) -> None:
    session = client.session
    session[LAST_SEEN_KEY] = int(time.time()) - seconds
    session.save()


def test_a_session_idle_for_longer_than_the_timeout_ends(cast, client, settings):
    client.force_login(cast.clinician_a)
    assert client.get("/triage/").status_code == 200
    _age_session(client, settings.SESSION_IDLE_TIMEOUT_SECONDS + 5)
    response = client.get("/triage/")
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")
    assert client.session.get("_auth_user_id") is None
    assert client.get("/triage/").status_code == 302


def test_an_idle_session_calling_the_api_gets_403_not_a_500(cast, client, settings):
    client.force_login(cast.clinician_a)
    client.get("/triage/")
    _age_session(client, settings.SESSION_IDLE_TIMEOUT_SECONDS + 5)
    assert client.get("/api/v1/alerts").status_code in (401, 403)


def test_a_session_used_within_the_timeout_stays(cast, client, settings):
    client.force_login(cast.clinician_a)
    client.get("/triage/")
    _age_session(client, settings.SESSION_IDLE_TIMEOUT_SECONDS - 60)
    assert client.get("/triage/").status_code == 200
    assert client.get("/triage/").status_code == 200


def test_keeping_a_session_active_does_not_move_its_absolute_8_hour_limit(cast, client, settings):
    client.force_login(cast.clinician_a)
    client.get("/triage/")
    limit = client.session.get_expiry_date()
    assert abs((limit - timezone.now()).total_seconds() - settings.SESSION_COOKIE_AGE) < 60
    _age_session(client, 120)  # so that the next request writes "last seen"
    client.get("/triage/")
    assert client.session.get_expiry_date() == limit


def test_the_idle_timeout_defaults_to_30_minutes_and_the_absolute_limit_stays_8_hours():
    from django.conf import settings as django_settings

    assert django_settings.SESSION_IDLE_TIMEOUT_SECONDS == 1800
    assert django_settings.SESSION_COOKIE_AGE == 8 * 3600


# --- the setting's defaults, and bin/production-local's demo password ---------------------------

def _setting_in(env: dict[str, str], name: str) -> str:
    clean = {k: v for k, v in os.environ.items()
             if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG", "REQUIRE_STAFF_TWO_FACTOR"}}
    code = ('import django, os; os.environ["DJANGO_SETTINGS_MODULE"]="proplatform.settings"; django.setup(); '
            f'from django.conf import settings; print(settings.{name})')
    result = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(("env", "expected"), [
    ({"DATABASE_URL": "postgres://u@db.example.org/p", "REDIS_URL": "redis://r.example.org/0"}, "True"),
    ({}, "False"),  # embedded: the demo
    ({"DATABASE_URL": "postgres://u@db.example.org/p", "REDIS_URL": "redis://r.example.org/0", "DEBUG": "1"}, "False"),
    ({"REQUIRE_STAFF_TWO_FACTOR": "1"}, "True"),
])
def test_staff_two_factor_is_on_by_default_only_in_the_production_shape(env, expected):
    assert _setting_in(env, "REQUIRE_STAFF_TWO_FACTOR") == expected


def test_the_demo_command_refuses_the_published_password_when_asked_to(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="published demo password"):
        call_command("demo", "--refuse-default-password", "--patients", "0")
    assert not AuditEvent.objects.exists()


def test_production_local_passes_the_refusal_unless_started_with_demo():
    script = (ROOT / "bin" / "production-local").read_text()
    assert "--refuse-default-password" in script
    assert "--demo)" in script
    result = subprocess.run(["bash", str(ROOT / "bin" / "production-local"), "--bogus"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "usage" in result.stderr


# --- the live feed's websocket asks the same question ----------------------------------------

def _socket_opens(user, session) -> bool:
    from asgiref.sync import async_to_sync
    from channels.testing import WebsocketCommunicator

    from alerts.consumers import AlertConsumer

    async def scenario() -> bool:
        communicator = WebsocketCommunicator(AlertConsumer.as_asgi(), "/ws/alerts/")
        communicator.scope["user"] = user
        communicator.scope["session"] = session
        connected, _ = await communicator.connect()
        await communicator.disconnect()
        return connected

    return async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)  # the consumer's database calls close connections
def test_the_live_feed_refuses_a_staff_session_that_has_not_passed_two_factor(cast, two_factor_required):
    from django_otp import DEVICE_ID_SESSION_KEY

    device = TOTPDevice.objects.create(user=cast.clinician_a, name="phone", confirmed=True)
    assert not _socket_opens(cast.clinician_a, {})
    assert _socket_opens(cast.clinician_a, {DEVICE_ID_SESSION_KEY: device.persistent_id})
