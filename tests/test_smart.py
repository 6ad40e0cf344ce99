"""SMART Backend Services (issue 21 item 9, ADR 0018): discovery, the token endpoint and every
way it refuses, the admin's checks of a client's keys and scopes, system scopes on FHIR reads
and on $export, token expiry, and audit rows that name the client."""

import base64
import json
from datetime import timedelta
from urllib.parse import urlencode

import jwt
import orjson
import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone, translation
from fhir.resources.R4B.operationoutcome import OperationOutcome

from accounts.models import hash_token
from audit.models import Action, AuditEvent, Outcome
from exports import bulk
from exports.models import ExportJob
from smart.models import SystemAccessToken, SystemClient, UsedAssertion
from smart.scopes import EXPORT_TYPES, RESOURCE_TYPES, ScopeError, scope_parse, scopes_grant, scopes_parse, scopes_text
from smart.services import smart_clear_expired
from smart.views import TokenView
from tests.export_data import add_outcome_data, both_validate
from tests.smart_client import client_assertion, ec_private_key, private_jwk, public_jwk, rsa_private_key, token_form

pytestmark = pytest.mark.django_db

TOKEN_URL = "http://testserver/oauth/token"
RSA_KEY = rsa_private_key()
EC_KEY = ec_private_key()


@pytest.fixture(autouse=True)
def _no_throttle(monkeypatch, settings, tmp_path):
    # Many token requests from one address in one run; the throttle has its own test.
    monkeypatch.setattr(TokenView, "throttle_classes", [])
    settings.EXPORT_ROOT = tmp_path / "exports"
    settings.EXPORT_PSEUDONYM_KEY = "test-project-key"


def _client(client_id: str = "kvalitet", scopes: str = "system/*.read", **fields) -> SystemClient:
    system_client = SystemClient(client_id=client_id, name="Kvalitetsdatabase",
                                 jwks={"keys": [public_jwk(RSA_KEY, kid="rsa-1"), public_jwk(EC_KEY, kid="ec-1")]},
                                 allowed_scopes=scopes, **fields)
    system_client.full_clean()
    system_client.save()
    return system_client


def _assertion(client_id: str = "kvalitet", key=RSA_KEY, kid: str = "rsa-1", **kwargs) -> str:
    return client_assertion(key, client_id=client_id, token_url=TOKEN_URL, kid=kid, **kwargs)


def _post(client, form: dict[str, str], **extra):
    """As a client sends it: application/x-www-form-urlencoded (RFC 6749 §4.4.2)."""
    return client.post("/oauth/token", urlencode(form), content_type="application/x-www-form-urlencoded", **extra)


def _token_request(client, assertion: str, scope: str = "system/*.read", **overrides):
    return _post(client, {**token_form(assertion, scope), **overrides})


def _token(client, scope: str = "system/*.read", **kwargs) -> str:
    response = _token_request(client, _assertion(**kwargs), scope)
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def _oauth_error(response, status: int, error: str) -> str:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"] == error, body
    assert body["error_description"]
    assert response["Cache-Control"] == "no-store"
    return body["error_description"]


def _outcome(response, status: int) -> str:
    assert response.status_code == status, response.content
    outcome = OperationOutcome.model_validate(response.json())
    return outcome.issue[0].diagnostics or ""


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


# --- discovery ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"])
def test_smart_configuration_names_the_token_endpoint_private_key_jwt_and_client_credentials(client, path):
    # SMART App Launch puts it under the FHIR base URL; the root serves the same document.
    response = client.get(path)
    assert response.status_code == 200
    document = response.json()
    assert document["token_endpoint"] == TOKEN_URL
    assert document["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert document["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
    assert document["grant_types_supported"] == ["client_credentials"]
    assert "client-confidential-asymmetric" in document["capabilities"]
    assert {"system/*.read", "system/Patient.read", "system/Patient.rs"} <= set(document["scopes_supported"])


def test_smart_configuration_is_public_and_takes_only_get(client):
    assert client.post("/.well-known/smart-configuration").status_code == 405


def test_capability_statement_security_names_smart_and_the_token_url(client):
    statement = client.get("/fhir/metadata").json()
    both_validate(statement)  # R4B model and the official R4 JSON schema
    security = statement["rest"][0]["security"]
    codes = [c["code"] for s in security["service"] for c in s["coding"]]
    assert "SMART-on-FHIR" in codes
    uris = security["extension"][0]
    assert uris["url"] == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    assert uris["extension"] == [{"url": "token", "valueUri": TOKEN_URL}]


# --- registration ------------------------------------------------------------------------------

def test_a_client_with_public_rsa_and_p384_keys_and_read_scopes_is_valid():
    _client()


@pytest.mark.parametrize(("keys", "fragment"), [
    ({"keys": [private_jwk(RSA_KEY, kid="k")]}, "privat nøglemateriale"),
    ({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "k"}]}, "privat nøglemateriale"),
    ({"keys": [public_jwk(rsa_private_key(1024), kid="k")]}, "mindst 2048"),
    ({"keys": [public_jwk(ec_private_key(__import__("cryptography.hazmat.primitives.asymmetric.ec",
                                                      fromlist=["SECP256R1"]).SECP256R1()), kid="k")]}, "P-384"),
    ({"keys": [{**public_jwk(RSA_KEY, kid="k"), "alg": "RS256"}]}, "RS256"),
    ({"keys": [{**public_jwk(RSA_KEY, kid="k"), "use": "enc"}]}, "sig"),
    ({"keys": [{k: v for k, v in public_jwk(RSA_KEY, kid="k").items() if k != "kid"}]}, "kid"),
    ({"keys": [public_jwk(RSA_KEY, kid="k"), public_jwk(EC_KEY, kid="k")]}, "To nøgler"),
    ({"keys": []}, "ikke-tom"),
    ([public_jwk(RSA_KEY, kid="k")], "ikke-tom"),
])
def test_a_jwks_with_anything_but_public_rs384_or_es384_keys_is_refused_on_save(keys, fragment):
    # the admin's language (Danish) names the defect
    system_client = SystemClient(client_id="kvalitet", name="K", jwks=keys, allowed_scopes="system/*.read")
    with pytest.raises(ValidationError) as caught:
        system_client.full_clean()
    assert fragment in " ".join(caught.value.message_dict["jwks"])


@pytest.mark.parametrize(("fields", "field"), [
    ({"allowed_scopes": "system/Patient.write"}, "allowed_scopes"),
    ({"allowed_scopes": "system/*.cruds"}, "allowed_scopes"),
    ({"allowed_scopes": "patient/*.read"}, "allowed_scopes"),
    ({"allowed_scopes": "system/Flag.read"}, "allowed_scopes"),
    ({"allowed_scopes": ""}, "allowed_scopes"),
    ({"identified_allowed": True, "identified_purpose": "why"}, "identified_purpose"),
    ({"jwks": None}, "jwks"),
    ({"jwks": None, "jwks_uri": "http://keys.example.dk/jwks.json"}, "jwks_uri"),
    ({"client_id": "a b"}, "client_id"),
])
def test_a_client_is_refused_without_read_only_system_scopes_keys_or_a_stated_purpose(fields, field):
    values = {"client_id": "kvalitet", "name": "K", "jwks": {"keys": [public_jwk(RSA_KEY, kid="k")]},
              "allowed_scopes": "system/*.read", **fields}
    with pytest.raises(ValidationError) as caught:
        SystemClient(**values).full_clean()
    assert field in caught.value.message_dict


def test_the_admin_registers_a_client_in_danish_and_refuses_a_private_key(client, cast):
    client.force_login(cast.admin)
    with translation.override("da"):
        assert str(SystemClient._meta.verbose_name_plural) == "systemklienter"
        assert str(SystemClient._meta.get_field("allowed_scopes").verbose_name) == "tilladte scopes"
    page = client.get("/admin/smart/systemclient/add/", HTTP_ACCEPT_LANGUAGE="da")
    assert page.status_code == 200
    assert "Tilladte scopes" in page.content.decode()
    form = {"client_id": "kvalitet", "name": "Kvalitetsdatabase", "allowed_scopes": "system/*.read",
            "jwks": json.dumps({"keys": [private_jwk(RSA_KEY, kid="k")]}), "jwks_uri": "",
            "identified_purpose": "", "active": "on"}
    refused = client.post("/admin/smart/systemclient/add/", form, HTTP_ACCEPT_LANGUAGE="da")
    assert refused.status_code == 200
    assert "privat nøglemateriale" in refused.content.decode()
    assert not SystemClient.objects.exists()
    form["jwks"] = json.dumps({"keys": [public_jwk(RSA_KEY, kid="k")]})
    saved = client.post("/admin/smart/systemclient/add/", form, HTTP_ACCEPT_LANGUAGE="da")
    assert saved.status_code == 302, saved.content.decode()[-2000:]
    assert SystemClient.objects.get().jwks["keys"][0]["kid"] == "k"


# --- scopes ------------------------------------------------------------------------------------

def test_v1_and_v2_scope_forms_mean_the_same():
    assert scope_parse("system/Patient.read") == scope_parse("system/Patient.rs")
    assert scope_parse("system/*.read") == scope_parse("system/*.rs")
    assert str(scope_parse("system/Observation.read")) == "system/Observation.rs"


@pytest.mark.parametrize("text", ["patient/*.read", "user/Patient.read", "system/Patient.sr", "system/Patient.",
                                  "system/Flag.read", "system/Observation.rs?category=vital-signs", "openid",
                                  "system/patient.read"])
def test_scopes_other_than_system_scopes_of_our_types_are_refused(text):
    with pytest.raises(ScopeError):
        scope_parse(text)


def test_granted_scopes_are_the_requested_narrowed_to_the_allowed():
    allowed = scopes_parse("system/Patient.read system/Observation.rs")
    assert scopes_text(scopes_grant(requested=scopes_parse("system/*.read"), allowed=allowed)) == \
        "system/Patient.rs system/Observation.rs"
    assert scopes_text(scopes_grant(requested=scopes_parse("system/Patient.rs system/Device.rs"),
                                    allowed=allowed)) == "system/Patient.rs"
    assert scopes_grant(requested=scopes_parse("system/Device.rs"), allowed=allowed) == []
    everything = scopes_parse("system/*.read")
    assert scopes_text(scopes_grant(requested=scopes_parse("system/Patient.r"), allowed=everything)) == \
        "system/Patient.r"
    assert scopes_text(scopes_grant(requested=scopes_parse("system/Patient.read system/*.read"),
                                    allowed=everything)) == "system/*.rs"


def test_every_exported_type_can_be_granted_as_a_scope():
    assert set(bulk.TYPES) <= set(RESOURCE_TYPES)
    assert set(EXPORT_TYPES) == set(bulk.TYPES)


# --- the token endpoint ------------------------------------------------------------------------

@pytest.mark.parametrize(("key", "kid"), [(RSA_KEY, "rsa-1"), (EC_KEY, "ec-1")])
def test_a_registered_client_gets_a_short_lived_token_for_its_rs384_or_es384_assertion(client, key, kid):
    system_client = _client(scopes="system/Patient.read system/Observation.rs")
    response = _token_request(client, _assertion(key=key, kid=kid), "system/*.read")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 300
    assert body["scope"] == "system/Patient.rs system/Observation.rs"
    assert response["Cache-Control"] == "no-store"
    token = SystemAccessToken.objects.get(client=system_client)
    assert token.key_hash == hash_token(body["access_token"])  # only the hash is stored
    assert body["access_token"] not in token.key_hash
    assert timedelta(seconds=299) < token.expires_at - timezone.now() <= timedelta(seconds=300)
    event = AuditEvent.objects.get(action=Action.LOGIN)
    assert (event.username, event.role, event.outcome) == ("system:kvalitet", "system", Outcome.ALLOWED)
    assert event.user_id is None


def test_an_assertion_for_another_audience_is_invalid_client(client):
    _client()
    assertion = client_assertion(RSA_KEY, client_id="kvalitet", token_url="https://other.example/token",
                                 kid="rsa-1")
    assert "aud" in _oauth_error(_token_request(client, assertion), 401, "invalid_client")


def test_an_expired_assertion_is_invalid_client(client):
    _client()
    assert "expired" in _oauth_error(_token_request(client, _assertion(lifetime=-120)), 401, "invalid_client")


def test_an_assertion_valid_for_more_than_five_minutes_is_invalid_client(client):
    _client()
    assert "five minutes" in _oauth_error(_token_request(client, _assertion(lifetime=600)), 401, "invalid_client")


def test_a_reused_jti_is_invalid_client_and_issues_no_second_token(client):
    _client()
    assert _token_request(client, _assertion(jti="once")).status_code == 200
    again = _assertion(jti="once")  # a new signature, the same jti
    assert "jti" in _oauth_error(_token_request(client, again), 401, "invalid_client")
    assert SystemAccessToken.objects.count() == 1
    assert UsedAssertion.objects.count() == 1
    assert AuditEvent.objects.filter(username="system:kvalitet", outcome=Outcome.DENIED).exists()


def test_the_same_assertion_sent_twice_is_refused_the_second_time(client):
    _client()
    assertion = _assertion()
    assert _token_request(client, assertion).status_code == 200
    _oauth_error(_token_request(client, assertion), 401, "invalid_client")


def test_an_unknown_kid_is_invalid_client(client):
    _client()
    assert "kid" in _oauth_error(_token_request(client, _assertion(kid="nope")), 401, "invalid_client")


def test_a_kid_of_the_other_algorithm_is_invalid_client(client):
    _client()
    # signed RS384 but naming the EC key: no RS384 key has that kid
    _oauth_error(_token_request(client, _assertion(kid="ec-1")), 401, "invalid_client")


def test_an_assertion_signed_by_another_key_under_a_registered_kid_is_invalid_client(client):
    _client()
    forged = _assertion(key=rsa_private_key(), kid="rsa-1")
    assert "signature" in _oauth_error(_token_request(client, forged), 401, "invalid_client")


def test_hs256_signed_with_the_public_key_as_secret_is_invalid_client(client):
    _client()
    import hmac
    from hashlib import sha256

    from cryptography.hazmat.primitives import serialization

    pem = RSA_KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = _b64({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"})
    payload = _b64({"iss": "kvalitet", "sub": "kvalitet", "aud": TOKEN_URL, "jti": "hs",
                    "exp": int(timezone.now().timestamp()) + 60})
    signature = base64.urlsafe_b64encode(hmac.new(pem, f"{header}.{payload}".encode(), sha256).digest())
    forged = f"{header}.{payload}.{signature.rstrip(b'=').decode()}"
    assert "RS384 or ES384" in _oauth_error(_token_request(client, forged), 401, "invalid_client")
    assert not SystemAccessToken.objects.exists()


def test_alg_none_is_invalid_client(client):
    _client()
    unsigned = jwt.encode({"iss": "kvalitet", "sub": "kvalitet", "aud": TOKEN_URL, "jti": "n",
                           "exp": int(timezone.now().timestamp()) + 60}, None, algorithm="none",
                          headers={"kid": "rsa-1"})
    assert "RS384 or ES384" in _oauth_error(_token_request(client, unsigned), 401, "invalid_client")


def test_an_rs256_assertion_from_a_registered_key_is_invalid_client(client):
    _client()
    _oauth_error(_token_request(client, _assertion(algorithm="RS256")), 401, "invalid_client")


def test_an_unregistered_client_is_invalid_client(client):
    _client()
    assert "Unknown client" in _oauth_error(_token_request(client, _assertion(client_id="stranger")),
                                            401, "invalid_client")


def test_an_inactive_client_is_invalid_client(client):
    _client(active=False)
    assert "not active" in _oauth_error(_token_request(client, _assertion()), 401, "invalid_client")


def test_iss_and_sub_must_both_be_the_client_id(client):
    _client()
    _oauth_error(_token_request(client, _assertion(sub="someone-else")), 401, "invalid_client")


def test_a_scope_the_client_is_not_allowed_is_invalid_scope(client):
    _client(scopes="system/Patient.read")
    assert _oauth_error(_token_request(client, _assertion(), "system/Observation.read"), 400, "invalid_scope")
    assert not SystemAccessToken.objects.exists()
    assert not UsedAssertion.objects.exists()  # nothing half-stored: the jti stays usable
    refused = AuditEvent.objects.get(outcome=Outcome.DENIED)
    assert refused.username == "system:kvalitet"


@pytest.mark.parametrize("scope", ["system/Patient.write", "patient/*.read", "launch", "system/Flag.read"])
def test_write_patient_and_unknown_scopes_are_invalid_scope(client, scope):
    _client()
    _oauth_error(_token_request(client, _assertion(), scope), 400, "invalid_scope")


@pytest.mark.parametrize("missing", ["grant_type", "client_assertion_type", "client_assertion", "scope"])
def test_each_missing_parameter_is_invalid_request(client, missing):
    _client()
    form = token_form(_assertion(), "system/*.read")
    del form[missing]
    assert missing in _oauth_error(_post(client, form), 400, "invalid_request")


def test_another_grant_type_is_unsupported_grant_type(client):
    _client()
    _oauth_error(_token_request(client, _assertion(), grant_type="password"), 400, "unsupported_grant_type")


def test_another_assertion_type_is_invalid_request(client):
    _client()
    _oauth_error(_token_request(client, _assertion(), client_assertion_type="urn:x"), 400, "invalid_request")


@pytest.mark.parametrize("assertion", ["not-a-jwt", "a.b.c", "....", _b64({"alg": "RS384"}) + ".e30.",
                                       "eyJhbGciOiJSUzM4NCJ9.bm90IGpzb24.c2ln"])
def test_a_malformed_jwt_is_invalid_client(client, assertion):
    _client()
    _oauth_error(_token_request(client, assertion), 401, "invalid_client")


@pytest.mark.parametrize("field", ["client_assertion", "scope", "grant_type"])
def test_nul_bytes_are_invalid_request_and_store_nothing(client, field):
    _client()
    form = token_form(_assertion(), "system/*.read")
    form[field] = form[field][:5] + "\x00" + form[field][5:]
    assert "NUL" in _oauth_error(_post(client, form), 400, "invalid_request")
    assert not SystemAccessToken.objects.exists()


def test_a_json_body_is_invalid_request(client):
    response = client.post("/oauth/token", token_form("x", "system/*.read"), content_type="application/json")
    _oauth_error(response, 400, "invalid_request")


def test_a_body_beyond_the_upload_limit_is_invalid_request_not_a_server_error(client):
    body = urlencode({"grant_type": "client_credentials", "client_assertion": "x" * (3 * 1024 * 1024)})
    response = client.post("/oauth/token", body, content_type="application/x-www-form-urlencoded")
    _oauth_error(response, 413, "invalid_request")


def test_a_parameter_given_twice_is_invalid_request(client):
    _client()
    body = "&".join(f"{k}={v}" for k, v in token_form(_assertion(), "system/*.read").items()) + "&scope=x"
    response = client.post("/oauth/token", body, content_type="application/x-www-form-urlencoded")
    _oauth_error(response, 400, "invalid_request")


def test_the_token_endpoint_is_throttled_per_address(client, monkeypatch):
    from rest_framework.throttling import ScopedRateThrottle

    monkeypatch.setattr(TokenView, "throttle_classes", [ScopedRateThrottle])
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"smart-token": "2/min"})
    statuses = [_post(client, {}, REMOTE_ADDR="203.0.113.77").status_code for _ in range(3)]
    assert statuses[:2] == [400, 400]
    response = _post(client, {}, REMOTE_ADDR="203.0.113.77")
    assert response.status_code == 429
    assert response.json()["error"] == "invalid_request"


# --- using the token ---------------------------------------------------------------------------

def _bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_an_identified_client_reads_any_patient_and_the_read_is_audited_under_its_name(client, cast):
    _client(scopes="system/Patient.read", identified_allowed=True, identified_purpose="Klinisk kvalitetsdatabase")
    token = _token(client, "system/Patient.read")
    response = client.get(f"/fhir/Patient/{cast.patient_b.pk}", **_bearer(token))
    assert response.status_code == 200, response.content
    assert response.json()["id"] == str(cast.patient_b.pk)
    read = AuditEvent.objects.get(action=Action.READ, patient_ref=cast.patient_b.pk)
    assert (read.username, read.role, read.outcome) == ("system:kvalitet", "system", Outcome.ALLOWED)


def test_a_patient_who_withdrew_from_secondary_use_is_not_found_by_a_system_client(client, cast):
    _client(scopes="system/Patient.read", identified_allowed=True, identified_purpose="Klinisk kvalitetsdatabase")
    withdrawn = add_outcome_data(cast)
    response = client.get(f"/fhir/Patient/{withdrawn.pk}", **_bearer(_token(client, "system/Patient.read")))
    _outcome(response, 404)


def test_a_pseudonymised_only_client_cannot_read_patients_over_fhir(client, cast):
    _client()
    response = client.get(f"/fhir/Patient/{cast.patient_a.pk}", **_bearer(_token(client)))
    assert "pseudonymised" in _outcome(response, 403)
    denied = AuditEvent.objects.get(action=Action.READ, outcome=Outcome.DENIED)
    assert denied.username == "system:kvalitet"


def test_a_token_without_the_types_scope_is_refused_with_an_operation_outcome(client, cast):
    _client(scopes="system/Questionnaire.read system/Patient.read", identified_allowed=True,
            identified_purpose="Klinisk kvalitetsdatabase")
    token = _token(client, "system/Questionnaire.read")
    assert client.get("/fhir/Questionnaire", **_bearer(token)).status_code == 200
    assert "system/Patient" in _outcome(client.get(f"/fhir/Patient/{cast.patient_a.pk}", **_bearer(token)), 403)
    _outcome(client.get(f"/fhir/Observation?patient={cast.patient_a.pk}", **_bearer(token)), 403)
    _outcome(client.get(f"/fhir/QuestionnaireResponse?patient={cast.patient_a.pk}", **_bearer(token)), 403)
    _outcome(client.get("/fhir/Group", **_bearer(token)), 403)


def test_a_system_token_may_not_write_or_read_alerts_even_with_every_scope(client, cast):
    _client(identified_allowed=True, identified_purpose="Klinisk kvalitetsdatabase")
    token = _token(client)
    observation = {"resourceType": "Observation", "status": "final"}
    _outcome(client.post("/fhir/Observation", observation, content_type="application/fhir+json", **_bearer(token)),
             403)
    _outcome(client.post("/fhir/Questionnaire", {"resourceType": "Questionnaire"},
                         content_type="application/fhir+json", **_bearer(token)), 403)
    answer = {"resourceType": "QuestionnaireResponse", "status": "completed",
              "subject": {"reference": f"Patient/{cast.patient_a.pk}"}, "questionnaire": "urn:x|1"}
    _outcome(client.post("/fhir/QuestionnaireResponse", answer, content_type="application/fhir+json",
                         **_bearer(token)), 403)
    _outcome(client.post("/fhir", {"resourceType": "Bundle", "type": "batch"}, content_type="application/fhir+json",
                         **_bearer(token)), 403)
    _outcome(client.get(f"/fhir/Flag?patient={cast.patient_a.pk}", **_bearer(token)), 403)


def test_a_system_token_reads_the_public_metadata_but_no_endpoint_missing_from_the_table(client, cast):
    _client(scopes="system/Questionnaire.read")
    token = _token(client, "system/Questionnaire.read")
    assert client.get("/fhir/metadata", **_bearer(token)).status_code == 200
    _outcome(client.get(f"/fhir/DetectedIssue?patient={cast.patient_a.pk}", **_bearer(token)), 403)
    denied = AuditEvent.objects.get(outcome=Outcome.DENIED)
    assert (denied.username, denied.action) == ("system:kvalitet", Action.READ)


def test_a_system_token_is_refused_outside_the_fhir_api(client, cast):
    _client()
    token = _token(client)
    response = client.get("/api/v1/alerts", **_bearer(token))
    assert response.status_code == 401
    assert client.post("/api/v1/alerts/1/acknowledge", **_bearer(token)).status_code == 401
    assert client.get("/me/", **_bearer(token)).status_code in (302, 401, 403)


def test_an_expired_system_token_is_refused(client, cast):
    _client()
    token = _token(client, "system/Questionnaire.read")
    assert client.get("/fhir/Questionnaire", **_bearer(token)).status_code == 200
    SystemAccessToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    _outcome(client.get("/fhir/Questionnaire", **_bearer(token)), 401)


def test_a_token_stops_working_when_its_client_is_deactivated(client, cast):
    system_client = _client()
    token = _token(client, "system/Questionnaire.read")
    system_client.active = False
    system_client.save()
    _outcome(client.get("/fhir/Questionnaire", **_bearer(token)), 401)


def test_an_unknown_system_token_is_refused(client):
    _outcome(client.get("/fhir/Questionnaire", **_bearer("sb_made-up")), 401)


def test_the_cleanup_deletes_expired_assertion_ids_and_old_tokens(client):
    _client()
    _token(client)
    assert smart_clear_expired(now=timezone.now() + timedelta(days=2)) == {"assertions": 1, "tokens": 1}


# --- $export -----------------------------------------------------------------------------------

def _kickoff(client, token: str, path: str = "/fhir/$export", **params):
    return client.get(path, params, HTTP_PREFER="respond-async", **_bearer(token))


def _lines(client, url: str, token: str) -> list[dict]:
    response = client.get(url, HTTP_ACCEPT="application/fhir+ndjson", **_bearer(token))
    assert response.status_code == 200, response.content
    return [orjson.loads(line) for line in b"".join(response.streaming_content).splitlines()]


def test_a_system_client_exports_every_patient_pseudonymised_and_each_step_is_audited(
        client, cast, django_capture_on_commit_callbacks):
    add_outcome_data(cast)
    _client()
    token = _token(client)
    with django_capture_on_commit_callbacks(execute=True):
        response = _kickoff(client, token, _type="Patient,Observation")
    assert response.status_code == 202, response.content
    status_url = response["Content-Location"]
    manifest = client.get(status_url, **_bearer(token)).json()
    assert manifest["extension"]["https://proplatform.dk/fhir/bulk/pseudonymised"] is True
    counts = {o["type"]: o["count"] for o in manifest["output"]}
    assert counts == {"Patient": 2, "Observation": 10}  # both teams' patients; the withdrawn one left out
    patients = _lines(client, manifest["output"][0]["url"], token)
    ids = {p["id"] for p in patients}
    assert str(cast.patient_a.pk) not in ids and len(next(iter(ids))) == 64  # pseudonyms
    assert all("name" not in p for p in patients)
    job = ExportJob.objects.get()
    assert job.client.client_id == "kvalitet" and job.requester is None
    rows = AuditEvent.objects.filter(action=Action.EXPORT, username="system:kvalitet")
    assert rows.filter(resource__contains="pseudonymised types=Patient,Observation").count() == 1
    assert rows.filter(resource__contains="file Patient").count() == 1


def test_without_type_a_system_export_holds_only_the_types_its_scopes_cover(
        client, cast, django_capture_on_commit_callbacks):
    add_outcome_data(cast)
    _client(scopes="system/Patient.read system/Observation.rs")
    token = _token(client)
    with django_capture_on_commit_callbacks(execute=True):
        status_url = _kickoff(client, token)["Content-Location"]
    manifest = client.get(status_url, **_bearer(token)).json()
    assert {o["type"] for o in manifest["output"]} == {"Patient", "Observation"}


def test_a_system_export_naming_a_type_outside_its_scopes_is_refused(client, cast):
    _client(scopes="system/Patient.read system/Observation.rs")
    assert "QuestionnaireResponse" in _outcome(_kickoff(client, _token(client), _type="Patient,QuestionnaireResponse"),
                                               403)
    assert not ExportJob.objects.exists()


def test_a_token_with_only_definition_scopes_cannot_kick_off_an_export(client, cast):
    _client(scopes="system/Questionnaire.read system/Group.read")
    _outcome(_kickoff(client, _token(client)), 403)


def test_an_identified_export_is_refused_to_a_pseudonymised_only_client(client, cast):
    _client()
    response = _kickoff(client, _token(client), identified="true", purpose="Opfølgning på kvalitet")
    assert "pseudonymised" in _outcome(response, 403)


def test_a_client_allowed_identified_data_may_export_identified_with_a_purpose(
        client, cast, django_capture_on_commit_callbacks):
    add_outcome_data(cast)
    _client(identified_allowed=True, identified_purpose="Klinisk kvalitetsdatabase (RKKP)")
    token = _token(client)
    with django_capture_on_commit_callbacks(execute=True):
        response = _kickoff(client, token, _type="Patient", identified="true", purpose="Årsrapport 2026 til RKKP")
    manifest = client.get(response["Content-Location"], **_bearer(token)).json()
    ids = {p["id"] for p in _lines(client, manifest["output"][0]["url"], token)}
    assert ids == {str(cast.patient_a.pk), str(cast.patient_b.pk)}
    # an identified download is a read of each patient in it, named in the trail
    assert set(AuditEvent.objects.filter(username="system:kvalitet", action=Action.EXPORT)
               .exclude(patient_ref=None).values_list("patient_ref", flat=True)) == {cast.patient_a.pk,
                                                                                     cast.patient_b.pk}


def test_status_files_and_cancel_need_a_token_covering_the_jobs_types(client, cast, django_capture_on_commit_callbacks):
    add_outcome_data(cast)
    _client(scopes="system/Patient.read system/Observation.rs")
    token = _token(client)
    with django_capture_on_commit_callbacks(execute=True):
        status_url = _kickoff(client, token, _type="Patient,Observation")["Content-Location"]
    manifest = client.get(status_url, **_bearer(token)).json()
    narrow = _token(client, "system/Patient.read")
    assert "Observation" in _outcome(client.get(status_url, **_bearer(narrow)), 403)
    observation_file = next(o["url"] for o in manifest["output"] if o["type"] == "Observation")
    patient_file = next(o["url"] for o in manifest["output"] if o["type"] == "Patient")
    _outcome(client.get(observation_file, **_bearer(narrow)), 403)
    assert len(_lines(client, patient_file, narrow)) == 2
    _outcome(client.delete(status_url, **_bearer(narrow)), 403)
    assert client.delete(status_url, **_bearer(token)).status_code == 202
    assert AuditEvent.objects.filter(username="system:kvalitet", outcome=Outcome.DENIED,
                                     action=Action.EXPORT).count() == 3


def test_another_clients_or_a_persons_export_is_not_found_for_a_system_client(
        client, cast, django_capture_on_commit_callbacks):
    from accounts.models import ApiToken

    _client()
    other = SystemClient.objects.create(client_id="andet", name="Andet", allowed_scopes="system/*.read",
                                        jwks={"keys": [public_jwk(RSA_KEY, kid="rsa-1")]})
    other_token = _token(client, client_id=other.client_id)
    with django_capture_on_commit_callbacks(execute=True):
        status_url = _kickoff(client, other_token, _type="Patient")["Content-Location"]
    _outcome(client.get(status_url, **_bearer(_token(client))), 404)
    _, raw = ApiToken.issue(cast.quality)
    with django_capture_on_commit_callbacks(execute=True):
        person_url = client.get("/fhir/$export", {"_type": "Patient"}, HTTP_PREFER="respond-async",
                                HTTP_AUTHORIZATION=f"Bearer {raw}")["Content-Location"]
    _outcome(client.get(person_url, **_bearer(_token(client))), 404)
    # and the person cannot see the client's job
    _outcome(client.get(status_url, HTTP_AUTHORIZATION=f"Bearer {raw}"), 404)


def test_a_system_client_has_its_own_limit_of_running_exports(client, cast, settings):
    settings.EXPORT_MAX_CONCURRENT = 1
    _client()
    token = _token(client)
    assert _kickoff(client, token, _type="Patient").status_code == 202  # enqueued after commit: stays queued
    assert _outcome(_kickoff(client, token, _type="Patient"), 429)


def test_an_export_of_a_client_deactivated_after_the_kickoff_fails_in_the_worker(
        client, cast, django_capture_on_commit_callbacks):
    from exports.models import ExportStatus
    from exports.services import export_job_run

    system_client = _client()
    token = _token(client)
    response = _kickoff(client, token, _type="Patient")  # not run: no on-commit execution
    job = ExportJob.objects.get()
    system_client.active = False
    system_client.save()
    export_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ExportStatus.FAILED
    assert response.status_code == 202


def test_group_export_and_group_reads_need_the_group_scope(client, cast):
    from outcomes.models import Cohort

    cohort = Cohort.objects.create(name="Lunge", created_by=cast.quality)
    _client(scopes="system/Patient.read")
    token = _token(client)
    _outcome(_kickoff(client, token, f"/fhir/Group/{cohort.pk}/$export"), 403)
    _outcome(client.get(f"/fhir/Group/{cohort.pk}", **_bearer(token)), 403)
    SystemClient.objects.update(allowed_scopes="system/Patient.read system/Group.read")
    token = _token(client)
    assert client.get(f"/fhir/Group/{cohort.pk}", **_bearer(token)).status_code == 200
    assert _kickoff(client, token, f"/fhir/Group/{cohort.pk}/$export", _type="Patient").status_code == 202


# --- hostile claims inside a signed assertion ---------------------------------------------------

def test_a_nul_inside_the_signed_iss_is_invalid_client_not_a_database_error(client):
    _client()
    assertion = _assertion(client_id="kvalitet\x00", sub="kvalitet\x00")
    assert "Unknown client" in _oauth_error(_token_request(client, assertion), 401, "invalid_client")


@pytest.mark.parametrize("jti", ["a\x00b", "line\nbreak", "x" * 256])
def test_a_jti_with_control_characters_or_too_long_is_invalid_client(client, jti):
    _client()
    assert "jti" in _oauth_error(_token_request(client, _assertion(jti=jti)), 401, "invalid_client")
    assert not UsedAssertion.objects.exists()


def test_an_exp_far_beyond_any_calendar_is_invalid_client(client):
    _client()
    assertion = _assertion(lifetime=10**12)
    assert "five minutes" in _oauth_error(_token_request(client, assertion), 401, "invalid_client")


def test_an_assertion_not_valid_before_a_future_time_is_invalid_client(client):
    _client()
    _oauth_error(_token_request(client, _assertion(nbf=int(timezone.now().timestamp()) + 120)), 401,
                 "invalid_client")


# --- keys published at a jwks_uri ---------------------------------------------------------------

@pytest.fixture
def jwks_server():
    """A client's key server on 127.0.0.1, answering what the test puts in ``documents``."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    documents: dict[str, tuple[int, bytes]] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            status, body = documents.get(self.path, (404, b"{}"))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", documents
    server.shutdown()


def _uri_client(uri: str) -> SystemClient:
    # Saved without full_clean: the admin requires https, the test's key server speaks http.
    return SystemClient.objects.create(client_id="kvalitet", name="K", allowed_scopes="system/*.read", jwks_uri=uri)


def test_a_client_may_publish_its_keys_at_a_jwks_uri_which_is_fetched_and_cached(client, jwks_server, settings):
    from django.core.cache import cache

    base, documents = jwks_server
    documents["/jwks.json"] = (200, json.dumps({"keys": [public_jwk(EC_KEY, kid="ec-1")]}).encode())
    _uri_client(f"{base}/jwks.json")
    cache.delete(f"smart:jwks:{base}/jwks.json")
    assert _token_request(client, _assertion(key=EC_KEY, kid="ec-1")).status_code == 200
    documents.pop("/jwks.json")  # served from the cache now
    assert _token_request(client, _assertion(key=EC_KEY, kid="ec-1")).status_code == 200
    cache.delete(f"smart:jwks:{base}/jwks.json")


@pytest.mark.parametrize(("status", "body"), [
    (500, b"{}"), (200, b"not json"), (200, json.dumps({"keys": [private_jwk(EC_KEY, kid="ec-1")]}).encode()),
    (200, b'{"keys": [' + b'{"kid": "x"},' * 10000 + b'{}]}'),
])
def test_an_unusable_jwks_uri_is_invalid_client(client, jwks_server, status, body):
    from django.core.cache import cache

    base, documents = jwks_server
    documents["/bad.json"] = (status, body)
    _uri_client(f"{base}/bad.json")
    cache.delete(f"smart:jwks:{base}/bad.json")
    assert "keys could not be loaded" in _oauth_error(_token_request(client, _assertion(key=EC_KEY, kid="ec-1")),
                                                      401, "invalid_client")


def test_get_on_the_token_endpoint_is_an_oauth_error_not_a_page(client):
    response = client.get("/oauth/token")
    assert response.status_code == 405
    assert response.json()["error"] == "invalid_request"


def test_a_pasted_key_still_works_while_the_clients_jwks_uri_is_down(client, jwks_server):
    base, _ = jwks_server
    system_client = _uri_client(f"{base}/down.json")
    system_client.jwks = {"keys": [public_jwk(RSA_KEY, kid="rsa-1")]}
    system_client.save()
    assert _token_request(client, _assertion()).status_code == 200
    _oauth_error(_token_request(client, _assertion(key=EC_KEY, kid="ec-1")), 401, "invalid_client")


@pytest.mark.django_db(transaction=True)
def test_one_assertion_sent_twice_at_the_same_moment_gets_one_token(cast):
    """The jti is claimed by the unique constraint, not by a look-up first: two copies racing
    each other cannot both pass (PostgreSQL in CI; SQLite serialises writers anyway)."""
    import threading

    from django.db import connection
    from django.test import Client

    _client()
    assertion = _assertion()
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def send() -> None:
        try:
            barrier.wait()
            statuses.append(_token_request(Client(), assertion).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 401]
    assert SystemAccessToken.objects.count() == 1
