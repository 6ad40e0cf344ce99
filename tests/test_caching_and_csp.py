"""Answers with patient data or secrets are kept out of caches (issue 20 item 7): every answer
to an authenticated request — a session or an Authorization header — carries
``Cache-Control: no-store`` unless it sets its own, and so does the bearer token's answer."""

import pytest
from django.test import Client
from django.utils import timezone
from redis.exceptions import ConnectionError as RedisConnectionError
from rest_framework.throttling import ScopedRateThrottle

from accounts.models import ApiToken
from monitoring.models import Reading, Source
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def _logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def reading(cast):
    return Reading.objects.create(patient=cast.patient_a, measure="spo2", value=95, unit="%",
                                  effective_at=timezone.now(), source=Source.API)


def test_the_clinicians_pages_and_csv_of_a_patient_are_not_stored(cast, reading):
    client = _logged_in(cast.clinician_a)
    base = f"/patients/{cast.patient_a.pk}/"
    for path in (base, f"{base}readings/spo2/", f"{base}readings/spo2/csv/", "/triage/",
                 f"/fhir/Patient/{cast.patient_a.pk}", f"/fhir/Observation?patient={cast.patient_a.pk}"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response["Cache-Control"] == "no-store", path


def test_the_patients_own_pages_and_csv_are_not_stored(cast, reading):
    client = _logged_in(cast.patient_a.user)
    for path in ("/me/", "/me/answers/", "/me/readings/", "/me/readings/spo2/", "/me/readings/spo2/csv/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response["Cache-Control"] == "no-store", path


def test_rest_reads_with_a_bearer_token_are_not_stored_and_neither_are_their_refusals(cast):
    _, raw = ApiToken.issue(cast.clinician_a)
    response = Client(HTTP_AUTHORIZATION=f"Bearer {raw}").get("/api/v1/alerts")
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    refused = Client(HTTP_AUTHORIZATION="Bearer pp_wrong").get("/api/v1/alerts")
    assert refused.status_code == 401 and refused["Cache-Control"] == "no-store"


def test_the_bearer_token_answer_is_not_stored(cast):
    response = Client().post("/api/v1/auth/token", {"username": cast.clinician_a.username, "password": PASSWORD},
                             content_type="application/json")
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"


def test_the_totp_secret_page_is_not_stored(cast):
    response = _logged_in(cast.admin).get("/account/two-factor/")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"


def test_an_anonymous_page_is_left_to_the_usual_rules(cast):
    assert "Cache-Control" not in Client().get("/fhir/metadata")


def test_the_token_401_carries_the_request_id(cast):
    response = Client().post("/api/v1/auth/token", {"username": "nobody", "password": "x"},
                             content_type="application/json")
    assert response.status_code == 401
    assert response.json()["request_id"] == response["X-Request-ID"]


def test_the_token_endpoint_answers_503_with_retry_after_when_its_throttle_store_is_down(cast, monkeypatch):
    def down(self, request, view):
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(ScopedRateThrottle, "allow_request", down)
    response = Client(raise_request_exception=False).post(
        "/api/v1/auth/token", {"username": cast.clinician_a.username, "password": PASSWORD},
        content_type="application/json")
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert response.json()["request_id"]
    assert not ApiToken.objects.exists()


# --- Content-Security-Policy ----------------------------------------------------------------------

def _policy(response) -> dict[str, list[str]]:
    return {name: values for name, *values in (part.split() for part in response["Content-Security-Policy"].split(";")
                                               if part.strip())}


def test_every_page_carries_a_policy_that_forbids_framing_plugins_and_foreign_scripts(cast):
    for response in (Client().get("/login/"), _logged_in(cast.clinician_a).get("/triage/"),
                     Client().get("/fhir/metadata")):
        policy = _policy(response)
        assert policy["frame-ancestors"] == ["'none'"] and policy["object-src"] == ["'none'"]
        assert policy["base-uri"] == ["'self'"]
        assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-inline'" not in policy["style-src"]


def test_the_triage_pages_inline_json_carries_the_nonce_of_its_policy(cast):
    response = _logged_in(cast.clinician_a).get("/triage/")
    nonce = next(v for v in _policy(response)["script-src"] if v.startswith("'nonce-"))[7:-1]
    assert f'<script id="i18n" type="application/json" nonce="{nonce}">' in response.content.decode()


def test_the_charts_style_elements_carry_the_nonce_of_the_policy(cast, reading):
    for client, path in ((_logged_in(cast.clinician_a), f"/patients/{cast.patient_a.pk}/readings/spo2/"),
                         (_logged_in(cast.patient_a.user), "/me/readings/spo2/")):
        response = client.get(path)
        nonce = next(v for v in _policy(response)["style-src"] if v.startswith("'nonce-"))[7:-1]
        page = response.content.decode()
        assert page.count("<style") == page.count(f'<style nonce="{nonce}"') > 0


def test_the_live_feeds_own_port_is_allowed_to_connect_only_when_configured(cast, settings):
    client = _logged_in(cast.clinician_a)
    assert _policy(client.get("/triage/"))["connect-src"] == ["'self'"]
    settings.LIVE_FEED_PORT = "8100"
    assert _policy(client.get("/triage/", HTTP_HOST="testserver:8000"))["connect-src"] == [
        "'self'", "ws://testserver:8100", "wss://testserver:8100"]


def test_only_the_admin_allows_inline_style_elements_and_scripts_keep_their_nonce_everywhere(cast, client):
    client.force_login(cast.admin)
    admin = client.get("/admin/")["Content-Security-Policy"]
    page = client.get("/triage/")["Content-Security-Policy"]
    page_style = page.split("style-src ")[1].split(";")[0]
    assert "style-src 'self' 'unsafe-inline'" in admin and "'unsafe-inline'" not in page_style
    for policy in (admin, page):
        script = policy.split("script-src ")[1].split(";")[0]
        assert "'nonce-" in script and "unsafe-inline" not in script
