"""Input an outside test sent to every path (issue 20): each once answered 500, or was stored.
Each is now refused with a clear error — an OperationOutcome naming the element on /fhir,
field-level JSON on /api/v1, a message next to the field on pages — and nothing is stored.

The NUL cases matter on PostgreSQL (its text and jsonb cannot hold NUL): CI runs this file in
the production shape too."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent, Outcome
from monitoring.models import Device, DeviceKind, DeviceToken, Reading
from proplatform.input import parse_decimal, parse_integer, storable_text, unstorable_path
from questionnaires.models import QuestionnaireResponse
from tests.factories import vital_signs_observation as _obs

pytestmark = pytest.mark.django_db
FHIR = "application/fhir+json"


def _client(*, user=None, token: str | None = None) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en", raise_request_exception=False)
    if user is not None:
        client.force_login(user)
    if token is not None:
        client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


def _recent(**delta: int) -> str:
    return (timezone.now() - timedelta(hours=2, **delta)).replace(microsecond=0).isoformat()


def _spo2(**changes):
    return {"measure": "spo2", "value": 95, "unit": "%", "effective_at": _recent(), **changes}


def _outcome(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    return outcome


def _nothing_stored() -> None:
    assert not Reading.objects.exists()
    assert not QuestionnaireResponse.objects.filter(status="completed").exists()


# --- NUL and half characters ------------------------------------------------------------------

@pytest.mark.parametrize(("path", "parameter"), [
    ("/fhir/Observation?patient=%00", "patient"),
    ("/fhir/Patient/%00", "patient_id"),
    ("/fhir/Questionnaire?url=a%00b", "url"),
    ("/fhir/QuestionnaireResponse?patient=%00", "patient"),
    ("/fhir/Group/%00", "group_id"),
    ("/fhir/Flag?patient=x&status=%00", "status"),
])
def test_a_nul_byte_in_a_fhir_search_value_or_id_is_an_operation_outcome_naming_the_parameter(cast, path, parameter):
    outcome = _outcome(_client(user=cast.clinician_a).get(path), 400)
    assert outcome["issue"][0]["expression"] == [parameter]
    assert "NUL" in outcome["issue"][0]["diagnostics"]


def test_the_audit_row_of_a_refused_look_up_records_a_nul_byte_as_an_escape(cast):
    from audit.services import audit_record

    audit_record(user=cast.clinician_a, action="read", resource="Patient/\x00\ud800 (FHIR)", outcome=Outcome.DENIED)
    assert AuditEvent.objects.get().resource == "Patient/\\x00\\ud800 (FHIR)"


@pytest.mark.parametrize("value", ["a\x00b", "a\ud800b"])
def test_a_nul_byte_or_half_a_character_in_a_questionnaire_response_identifier_is_refused_naming_it(cast, value):
    body = {"resourceType": "QuestionnaireResponse", "identifier": {"system": "urn:x", "value": value},
            "questionnaire": cast.questionnaire.url, "status": "completed",
            "subject": {"reference": f"Patient/{cast.patient_a.pk}"}, "item": []}
    response = _client(user=cast.patient_a.user).post("/fhir/QuestionnaireResponse", json.dumps(body),
                                                      content_type=FHIR)
    outcome = _outcome(response, 400)
    assert outcome["issue"][0]["expression"] == ["QuestionnaireResponse.identifier.value"]
    _nothing_stored()


@pytest.mark.parametrize("value", ["a\x00b", "a\ud800b"])
def test_a_nul_byte_or_half_a_character_in_an_observation_identifier_is_refused_naming_it(cast, value):
    body = _obs(cast.patient_a, code="59408-5", value=95, unit="%", identifier=value)
    outcome = _outcome(_client(token=cast.device_token_a).post("/fhir/Observation", json.dumps(body),
                                                               content_type=FHIR), 400)
    assert outcome["issue"][0]["expression"] == ["Observation.identifier[0].value"]
    _nothing_stored()


def test_a_nul_byte_in_a_rest_field_is_refused_next_to_that_field(cast):
    response = _client(token=cast.device_token_a).post(
        "/api/v1/readings", json.dumps(_spo2(unit="%\x00")), content_type="application/json")
    assert response.status_code == 400
    assert "NUL" in response.json()["unit"][0]
    _nothing_stored()


def test_a_nul_byte_in_the_review_pages_identifier_is_taken_for_no_identifier_not_a_server_error(cast):
    response = _client(user=cast.patient_a.user).post(
        f"/me/questionnaires/{cast.questionnaire.pk}/review/", {"identifier": "a\x00b"})
    assert response.status_code == 302  # no draft yet: to the first page, as without an identifier
    _nothing_stored()


# --- JSON nested too deeply -------------------------------------------------------------------

@pytest.mark.parametrize("body", ["[" * 5000 + "]" * 5000, '{"a":' * 2000 + "1" + "}" * 2000])
def test_json_nested_a_thousand_levels_deep_is_a_400_on_rest_and_fhir(cast, body):
    client = _client(token=cast.device_token_a)
    response = client.post("/api/v1/readings", body, content_type="application/json")
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]
    for path in ("/fhir/Observation", "/fhir"):
        assert "nested too deeply" in _outcome(client.post(path, body, content_type=FHIR), 400)["issue"][0][
            "diagnostics"]
    _nothing_stored()


# --- numbers ----------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["1e999999999", "-1E+999999999", "1e5", "NaN", "６０", "9_5", "٩٥", " 95 . 5"])
def test_a_number_written_other_than_in_ascii_digits_is_refused_next_to_the_field(cast, value):
    response = _client(token=cast.device_token_a).post("/api/v1/readings", _spo2(value=value),
                                                       content_type="application/json")
    assert response.status_code == 400, response.content
    assert "value" in response.json()
    response = _client(token=cast.device_token_a).post("/api/v1/readings", [_spo2(value=value)],
                                                       content_type="application/json")
    assert response.json()["results"][0]["status"] == 400
    _nothing_stored()


def test_a_number_as_text_in_ascii_digits_is_still_taken(cast):
    response = _client(token=cast.device_token_a).post("/api/v1/readings", _spo2(value=" 95.5 "),
                                                       content_type="application/json")
    assert response.status_code == 201
    assert Reading.objects.get().value == Decimal("95.5")


@pytest.mark.parametrize(("text", "comma", "expected"), [
    ("72.5", False, Decimal("72.5")), ("72,5", True, Decimal("72.5")), ("-3", False, Decimal(-3)),
    (".5", False, Decimal("0.5")), ("72,5", False, None), ("1_0_0", True, None), ("６０", True, None),
    ("1.000,5", True, None), ("1e3", False, None), ("Infinity", False, None), ("", False, None),
    ("7.2.5", False, None), ("72,5,1", True, None),
])
def test_the_one_number_parser_takes_ascii_digits_and_one_decimal_separator(text, comma, expected):
    assert parse_decimal(text, decimal_comma=comma) == expected


def test_the_integer_parser_takes_ascii_digits_only():
    assert [parse_integer(t) for t in ("72", "-3", "1_0_0", "６０", "7.0", "")] == [72, -3, None, None, None, None]


@pytest.mark.parametrize("typed", ["1_0_0", "６０", "1e2"])
def test_the_web_form_refuses_a_number_python_would_read_but_a_person_did_not_write(cast, typed):
    client = _client(user=cast.patient_a.user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "da"
    response = client.post("/me/readings/new/heart-rate/", {"value": typed, "effective_at": ""})
    assert response.status_code == 200
    assert "Skriv et tal" in response.content.decode() or "Skriv et helt tal" in response.content.decode()
    _nothing_stored()


def test_the_web_forms_decimal_comma_is_still_a_decimal(cast):
    from proplatform.forms import DecimalTextField, IntegerTextField

    assert DecimalTextField().clean("72,5") == Decimal("72.5")
    assert DecimalTextField().clean(" 72.5 ") == Decimal("72.5")
    assert IntegerTextField().clean(" 7 2 ") == 72


# --- time-zone offsets ------------------------------------------------------------------------

@pytest.mark.parametrize("offset", ["+16:00", "+23:59", "-16:00"])
def test_a_time_zone_offset_no_place_has_is_refused_on_every_path(cast, offset):
    when = (timezone.now() - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S") + offset
    client = _client(token=cast.device_token_a)
    for item in (_spo2(effective_at=when, client_id="tz-1"), _spo2(effective_at=when)):
        response = client.post("/api/v1/readings", item, content_type="application/json")
        assert response.status_code == 400, response.content
        assert "14 hours" in response.json()["effective_at"][0]
    body = _obs(cast.patient_a, code="59408-5", value=95, unit="%", effectiveDateTime=when)
    outcome = _outcome(client.post("/fhir/Observation", json.dumps(body), content_type=FHIR), 400)
    assert outcome["issue"][0]["expression"] == ["Observation.effective"]
    _nothing_stored()


def test_the_largest_real_offset_plus_fourteen_hours_is_taken(cast):
    when = (timezone.now() - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S") + "+14:00"
    response = _client(token=cast.device_token_a).post("/api/v1/readings", _spo2(effective_at=when),
                                                       content_type="application/json")
    assert response.status_code == 201


# --- Bundles and body size --------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["batch", "transaction"])
def test_a_bundle_entry_whose_request_is_a_string_is_refused_naming_it(cast, kind):
    bundle = {"resourceType": "Bundle", "type": kind, "entry": [
        {"resource": _obs(cast.patient_a, code="59408-5", value=95, unit="%"), "request": "POST Observation"}]}
    response = _client(token=cast.device_token_a).post("/fhir", json.dumps(bundle), content_type=FHIR)
    # A request that is not an object makes the Bundle itself invalid FHIR (interop.validate
    # checks the Bundle before any entry): refused whole, batch or transaction, naming it.
    outcome = _outcome(response, 400)
    assert "Bundle.entry[0].request" in outcome["issue"][0]["expression"]
    _nothing_stored()


@pytest.mark.parametrize("path", ["/fhir", "/fhir/Observation"])
def test_a_fhir_body_over_the_size_limit_is_a_413_operation_outcome(cast, settings, path):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = json.dumps({"resourceType": "Bundle", "type": "batch", "pad": "x" * 20_000})
    outcome = _outcome(_client(token=cast.device_token_a).post(path, body, content_type=FHIR), 413)
    assert outcome["issue"][0]["code"] == "too-costly"
    _nothing_stored()


def test_a_rest_body_over_the_size_limit_is_a_413_with_the_request_id(cast, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = _client(token=cast.device_token_a).post("/api/v1/readings", [_spo2()] * 200,
                                                       content_type="application/json")
    assert response.status_code == 413
    assert response.json()["request_id"]
    _nothing_stored()


# --- a device sends what its kind measures ----------------------------------------------------

def test_a_pulse_oximeters_token_cannot_store_a_blood_pressure(cast):
    item = {"measure": "blood-pressure", "systolic": 190, "diastolic": 120, "unit": "mm[Hg]",
            "effective_at": _recent()}
    client = _client(token=cast.device_token_a)
    response = client.post("/api/v1/readings", {**item, "client_id": "bp-1"}, content_type="application/json")
    assert response.status_code == 400
    assert "pulse oximeter" in response.json()["measure"][0]
    response = client.post("/api/v1/readings", [item, _spo2()], content_type="application/json")
    assert [r["status"] for r in response.json()["results"]] == [400, 201]
    body = _obs(cast.patient_a, code="29463-7", value=81, unit="kg")
    outcome = _outcome(client.post("/fhir/Observation", json.dumps(body), content_type=FHIR), 400)
    assert outcome["issue"][0]["expression"] == ["Observation.code"]
    assert list(Reading.objects.values_list("measure", flat=True)) == ["spo2"]


def test_each_kind_of_device_sends_its_own_measures(cast):
    scale = Device.objects.create(kind=DeviceKind.SCALE, serial="SC-1", patient=cast.patient_a,
                                  lent_from=cast.device_a.lent_from)
    _, token = DeviceToken.issue(scale)
    client = _client(token=token)
    assert client.post("/api/v1/readings", {"measure": "body-weight", "value": 81, "unit": "kg",
                                            "effective_at": _recent()}, content_type="application/json"
                       ).status_code == 201
    assert client.post("/api/v1/readings", _spo2(), content_type="application/json").status_code == 400


def test_a_patient_sending_by_hand_may_send_any_measure(cast):
    response = _client(user=cast.patient_a.user).post("/api/v1/readings", {
        "measure": "blood-pressure", "systolic": 130, "diastolic": 80, "unit": "mm[Hg]", "effective_at": _recent()},
        content_type="application/json")
    assert response.status_code == 201


# --- the helpers ------------------------------------------------------------------------------

def test_unstorable_text_is_found_by_its_path_however_deep():
    data = {"item": [{"answer": [{"valueString": "ok"}, {"valueString": "a\x00"}]}]}
    assert unstorable_path(data) == "item[0].answer[1].valueString"
    deep: list = ["\ud800"]
    for _ in range(5000):
        deep = [deep]
    assert unstorable_path(deep) == "[0]" * 5000 + "[0]"
    assert storable_text("a\x00\ud800") == "a\\x00\\ud800"
