"""POST /api/v1/readings: devices and patients send home readings; anything wrong stores
nothing; retries with a client_id store once."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import ApiToken
from alerts.models import Alert, AlertEvent
from alerts.selectors_readings import readings_unevaluated_ids
from audit.models import Action, AuditEvent
from monitoring.models import DeviceKind, DeviceToken, Reading, Source
from tests.factories import device_token_of

pytestmark = pytest.mark.django_db

URL = "/api/v1/readings"


def _when(minutes_ago: int = 10) -> str:
    return (timezone.now() - timedelta(minutes=minutes_ago)).isoformat()


def _reading(**overrides):
    body = {"measure": "spo2", "value": 95, "unit": "%", "effective_at": _when()}
    body.update(overrides)
    return body


def _bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


def _post(client, body, token=None):
    return client.post(URL, body, content_type="application/json",
                       headers=_bearer(token) if token else None)


# --- the happy path --------------------------------------------------------------------------

def test_device_token_stores_a_reading_and_spo2_88_raises_a_red_alert(
        cast, client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, _reading(value=88), cast.device_token_a)
    assert response.status_code == 201, response.content
    body = response.json()
    reading = Reading.objects.get()
    assert body["id"] == reading.pk
    assert reading.patient == cast.patient_a
    assert reading.device == cast.device_a
    assert reading.source == Source.DEVICE
    assert reading.entered_by is None
    assert reading.pk not in readings_unevaluated_ids()
    alert = Alert.objects.get()
    assert alert.patient == cast.patient_a
    assert alert.severity == "red"
    assert alert.status == "open"
    assert "88" in alert.reason and "92" in alert.reason
    assert alert.evidence["reading_id"] == reading.pk
    assert list(AlertEvent.objects.values_list("kind", flat=True)) == ["raised"]


def test_device_reading_within_limits_raises_no_alert(cast, client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert _post(client, _reading(value=97), cast.device_token_a).status_code == 201
    assert not readings_unevaluated_ids()
    assert not Alert.objects.exists()


def test_measure_may_be_given_by_its_loinc_code(cast, client):
    response = _post(client, _reading(measure="59408-5"), cast.device_token_a)
    assert response.status_code == 201
    assert Reading.objects.get().measure == "spo2"


def test_device_may_name_its_own_patient_and_device(cast, client):
    body = _reading(patient=str(cast.patient_a.pk), device=cast.device_a.pk)
    assert _post(client, body, cast.device_token_a).status_code == 201


def test_patient_session_posting_without_device_stores_an_api_reading(cast, client):
    client.force_login(cast.patient_a.user)
    response = _post(client, _reading())
    assert response.status_code == 201, response.content
    reading = Reading.objects.get()
    assert reading.patient == cast.patient_a
    assert reading.device is None
    assert reading.source == Source.API
    assert reading.entered_by == cast.patient_a.user
    row = AuditEvent.objects.get(action=Action.CREATE)
    assert row.patient_ref == cast.patient_a.pk
    assert row.resource == f"Reading/{reading.pk}"
    assert row.request_id == response["X-Request-ID"]


def test_patient_session_may_name_their_own_device(cast, client):
    client.force_login(cast.patient_a.user)
    assert _post(client, _reading(device=cast.device_a.pk)).status_code == 201
    assert Reading.objects.get().device == cast.device_a


def test_patient_person_token_stores_a_reading(cast, client):
    _, raw = ApiToken.issue(cast.patient_a.user)
    assert _post(client, _reading(), raw).status_code == 201
    assert Reading.objects.get().patient == cast.patient_a


def test_patient_session_without_csrf_token_is_refused_and_stores_nothing(cast):
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.patient_a.user)
    response = _post(client, _reading())
    assert response.status_code == 403
    assert Reading.objects.count() == 0


# --- refused requests store nothing ----------------------------------------------------------

@pytest.fixture
def nothing_stored(cast):
    before = Reading.objects.count()
    yield
    assert Reading.objects.count() == before
    assert not Alert.objects.exists()


def test_missing_token_gives_401_and_stores_nothing(cast, client, nothing_stored):
    response = _post(client, _reading())
    assert response.status_code == 401
    assert "Bearer" in response["WWW-Authenticate"]


@pytest.mark.parametrize("token", ["dv_wrong", "pp_wrong", "garbage"])
def test_wrong_token_gives_401_and_stores_nothing(cast, client, nothing_stored, token):
    assert _post(client, _reading(), token).status_code == 401


def test_malformed_authorization_header_gives_401_and_stores_nothing(cast, client, nothing_stored):
    response = client.post(URL, _reading(), content_type="application/json",
                           headers={"Authorization": f"Bearer {cast.device_token_a} extra"})
    assert response.status_code == 401


def test_revoked_device_token_gives_401_and_stores_nothing(cast, client, nothing_stored):
    DeviceToken.objects.filter(device=cast.device_a).update(revoked_at=timezone.now())
    assert _post(client, _reading(), cast.device_token_a).status_code == 401


def test_device_no_longer_lent_out_gives_401_and_stores_nothing(cast, client, nothing_stored):
    cast.device_a.lent_to = timezone.localdate() - timedelta(days=1)
    cast.device_a.save()
    assert _post(client, _reading(), cast.device_token_a).status_code == 401


def test_expired_person_token_gives_401_and_stores_nothing(cast, client, nothing_stored):
    token, raw = ApiToken.issue(cast.patient_a.user)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _post(client, _reading(), raw).status_code == 401


def test_malformed_json_gives_400_and_stores_nothing(cast, client, nothing_stored):
    response = client.post(URL, '{"measure": "spo2", "value": 9', content_type="application/json",
                           headers=_bearer(cast.device_token_a))
    assert response.status_code == 400
    assert response.json()["request_id"] == response["X-Request-ID"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"value": 101}, "value"),
        ({"value": 49}, "value"),
        ({"unit": "mmHg"}, "unit"),
        ({"effective_at": "2026-01-05T08:30:00"}, "effective_at"),
        ({"effective_at": "yesterday"}, "effective_at"),
        ({"measure": "blood-sugar-mood"}, "measure"),
        ({"value": "ninety"}, "value"),
        ({"measure": None}, "measure"),
    ],
)
def test_invalid_reading_gives_400_naming_the_field_and_stores_nothing(
        cast, client, nothing_stored, overrides, field):
    response = _post(client, _reading(**overrides), cast.device_token_a)
    assert response.status_code == 400, response.content
    body = response.json()
    assert field in body, body
    assert body[field][0]
    assert body["request_id"] == response["X-Request-ID"]


@pytest.mark.parametrize("field", ["measure", "value", "unit", "effective_at"])
def test_reading_missing_a_required_field_gives_400_and_stores_nothing(cast, client, nothing_stored, field):
    body = _reading()
    del body[field]
    response = _post(client, body, cast.device_token_a)
    assert response.status_code == 400
    assert field in response.json()


def test_reading_from_the_future_gives_400_and_stores_nothing(cast, client, nothing_stored):
    future = (timezone.now() + timedelta(hours=2)).isoformat()
    response = _post(client, _reading(effective_at=future), cast.device_token_a)
    assert response.status_code == 400
    assert "effective_at" in response.json()


def test_reading_a_little_ahead_within_clock_skew_is_accepted(cast, client, settings):
    settings.READING_CLOCK_SKEW_SECONDS = 300
    ahead = (timezone.now() + timedelta(seconds=60)).isoformat()
    assert _post(client, _reading(effective_at=ahead), cast.device_token_a).status_code == 201


def test_limits_of_the_possible_range_are_accepted(cast, client):
    assert _post(client, _reading(value=100, client_id="hi"), cast.device_token_a).status_code == 201
    assert _post(client, _reading(value=50, client_id="lo"), cast.device_token_a).status_code == 201


def test_patient_naming_another_patients_device_gets_404_and_stores_nothing(cast, client, nothing_stored):
    client.force_login(cast.patient_a.user)
    response = _post(client, _reading(device=cast.device_b.pk))
    assert response.status_code == 404
    assert "OX-B" not in response.content.decode()


def test_device_token_naming_another_patient_gets_404_and_stores_nothing(cast, client, nothing_stored):
    response = _post(client, _reading(patient=str(cast.patient_b.pk)), cast.device_token_a)
    assert response.status_code == 404
    assert "Bodil" not in response.content.decode()


def test_device_token_naming_another_device_gets_404_and_stores_nothing(cast, client, nothing_stored):
    response = _post(client, _reading(device=cast.device_b.pk), cast.device_token_a)
    assert response.status_code == 404


@pytest.mark.parametrize("who", ["clinician_a", "admin", "quality"])
def test_staff_posting_a_reading_get_403_and_store_nothing(cast, client, nothing_stored, who):
    client.force_login(getattr(cast, who))
    assert _post(client, _reading()).status_code == 403


def test_clinician_with_bearer_token_gets_403_and_stores_nothing(cast, client, nothing_stored):
    _, raw = ApiToken.issue(cast.clinician_a)
    assert _post(client, _reading(), raw).status_code == 403


# --- idempotency -----------------------------------------------------------------------------

def test_same_client_id_and_body_twice_gives_201_then_200_and_one_row(cast, client):
    body = _reading(client_id="ox-a-0001")
    first = _post(client, body, cast.device_token_a)
    second = _post(client, body, cast.device_token_a)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert Reading.objects.count() == 1


def test_same_client_id_with_another_value_gives_409_and_keeps_the_first(cast, client):
    assert _post(client, _reading(client_id="ox-a-0002", value=95), cast.device_token_a).status_code == 201
    response = _post(client, _reading(client_id="ox-a-0002", value=96), cast.device_token_a)
    assert response.status_code == 409
    assert "client_id" in response.json()
    assert list(Reading.objects.values_list("value", flat=True)) == [95]


def test_retry_is_evaluated_once_and_alerts_once(cast, client, django_capture_on_commit_callbacks):
    body = _reading(client_id="ox-a-0003", value=88)
    with django_capture_on_commit_callbacks(execute=True):
        assert _post(client, body, cast.device_token_a).status_code == 201
    with django_capture_on_commit_callbacks(execute=True):
        assert _post(client, body, cast.device_token_a).status_code == 200
    assert Alert.objects.count() == 1
    assert AlertEvent.objects.count() == 1


def test_client_ids_are_per_patient(cast, client):
    assert _post(client, _reading(client_id="shared-id"), cast.device_token_a).status_code == 201
    assert _post(client, _reading(client_id="shared-id"), cast.device_token_b).status_code == 201
    assert Reading.objects.count() == 2


def test_single_blood_pressure_reading_answers_with_both_components(cast, client):
    body = {"measure": "blood-pressure", "systolic": 16, "diastolic": 10, "unit": "kPa",
            "effective_at": _when()}
    response = _post(client, body, device_token_of(cast.patient_a, DeviceKind.BLOOD_PRESSURE)[1])
    assert response.status_code == 201, response.content
    assert (response.json()["value"], response.json()["value2"]) == ("120.010", "75.006")
    assert Reading.objects.get().original == {"unit": "kPa", "systolic": "16", "diastolic": "10"}


def test_single_blood_pressure_with_systolic_below_diastolic_gives_400_and_stores_nothing(
        cast, client, nothing_stored):
    body = {"measure": "blood-pressure", "systolic": 70, "diastolic": 90, "unit": "mm[Hg]",
            "effective_at": _when()}
    response = _post(client, body, cast.device_token_a)
    assert response.status_code == 400
    assert "systolic" in response.json()


def test_an_administrator_issues_a_device_token_shown_once_and_revokes_it(cast):
    import re

    from django.test import Client as DjangoClient

    admin_client = DjangoClient()
    admin_client.force_login(cast.admin)
    response = admin_client.post("/admin/monitoring/device/", {
        "action": "issue_token", "_selected_action": [cast.device_a.pk]}, follow=True)
    raw = re.search(r"(dv_[A-Za-z0-9_-]{20,})", response.content.decode()).group(1)
    body = {"measure": "spo2", "value": 97, "unit": "%", "effective_at": timezone.now().isoformat()}
    device = DjangoClient(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert device.post("/api/v1/readings", body, content_type="application/json").status_code == 201
    old = DjangoClient(HTTP_AUTHORIZATION=f"Bearer {cast.device_token_a}")
    assert old.post("/api/v1/readings", body, content_type="application/json").status_code == 401
    admin_client.post("/admin/monitoring/device/", {"action": "revoke_tokens",
                                                    "_selected_action": [cast.device_a.pk]})
    assert device.post("/api/v1/readings", body, content_type="application/json").status_code == 401
