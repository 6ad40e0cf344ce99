"""The device registry pages for clinicians: who sees which devices, registering (serial unique
per kind), lending without overlapping periods, returns, tokens shown once and refused by the
API as soon as they are revoked — every read and change audited, bad input answered next to the
field with nothing stored."""

import re
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone, translation

from accounts.models import Role, hash_token
from audit.models import Action, AuditEvent, Outcome
from monitoring.models import Device, DeviceKind, DeviceLending, DeviceToken, Reading
from monitoring.services import device_lend, device_register, device_return, device_token_issue
from patients.models import RelativeGrant
from tests.factories import make_user, vital_signs_observation

pytestmark = pytest.mark.django_db
TOKEN_RE = re.compile(r"dv_[A-Za-z0-9_\-]{20,}")


def _client(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def _today():
    return timezone.localdate()


def _devices_url(patient) -> str:
    return f"/patients/{patient.pk}/devices/"


def _detail_url(device) -> str:
    return f"/patients/{device.patient_id}/devices/{device.pk}/"


def _register(client, patient, **overrides):
    body = {"kind": DeviceKind.SCALE, "model": "A&D UC-352BLE", "serial": "SC-100",
            "lent_from": _today().isoformat(), "lent_to": ""}
    body.update(overrides)
    return client.post(_devices_url(patient) + "new/", body)


def _api_reading(token: str):
    body = {"measure": "spo2", "value": 96, "unit": "%",
            "effective_at": (timezone.now() - timedelta(minutes=5)).isoformat()}
    return Client().post("/api/v1/readings", body, content_type="application/json",
                         headers={"Authorization": f"Bearer {token}"})


def _field_errors(response, field: str) -> str:
    """The text of the error list rendered next to ``field`` (templates/field.html)."""
    html = response.content.decode()
    match = re.search(rf'<ul class="errors" id="id_{field}-errors">(.*?)</ul>', html, re.S)
    assert match, f"no errors next to {field}"
    return re.sub(r"<[^>]+>", " ", match.group(1))


# --- access and audit of reads ------------------------------------------------------------------

def test_a_patients_devices_page_is_open_to_their_team_and_admin_and_closed_to_everyone_else(cast):
    relative = make_user("relative-of-a", Role.RELATIVE)
    RelativeGrant.objects.create(patient=cast.patient_a, relative=relative, relationship="son")
    expected = {cast.clinician_a: 200, cast.admin: 200, cast.clinician_b: 404, cast.patient_a.user: 403,
                cast.quality: 403, relative: 403}
    for user, status in expected.items():
        for url in (_devices_url(cast.patient_a), _detail_url(cast.device_a), _devices_url(cast.patient_a) + "new/"):
            assert _client(user).get(url).status_code == status, (user.username, url)
    assert Client().get(_devices_url(cast.patient_a)).status_code == 302


def test_every_read_of_a_patients_devices_is_audited_allowed_or_denied(cast):
    _client(cast.clinician_a).get(_devices_url(cast.patient_a))
    _client(cast.clinician_b).get(_devices_url(cast.patient_a))
    _client(cast.patient_b.user).get(_detail_url(cast.device_a))
    rows = AuditEvent.objects.filter(patient_ref=cast.patient_a.pk, action=Action.READ)
    assert {(r.username, r.outcome) for r in rows} == {
        ("clinician-a", Outcome.ALLOWED), ("clinician-b", Outcome.DENIED), ("patient-b", Outcome.DENIED)}
    assert all("Device" in r.resource for r in rows)


def test_the_patients_devices_page_lists_their_devices_and_the_patient_page_links_to_it(cast):
    page = _client(cast.clinician_a).get(_devices_url(cast.patient_a))
    assert "OX-A" in page.content.decode() and "OX-B" not in page.content.decode()
    detail = _client(cast.clinician_a).get(f"/patients/{cast.patient_a.pk}/")
    assert f'href="{_devices_url(cast.patient_a)}"' in detail.content.decode()


def test_the_team_list_shows_only_devices_of_the_teams_patients_and_audits_the_search(cast):
    html = _client(cast.clinician_a).get("/devices/").content.decode()
    assert "OX-A" in html and "OX-B" not in html
    assert "OX-A" in _client(cast.admin).get("/devices/").content.decode()
    assert AuditEvent.objects.filter(username="clinician-a", action=Action.SEARCH,
                                     resource__startswith="Device?").count() == 1
    # ... and names each patient the list showed, and no other
    shown = AuditEvent.objects.filter(username="clinician-a", action=Action.READ, resource__startswith="Device?")
    assert list(shown.values_list("patient_ref", flat=True)) == [cast.patient_a.pk]
    assert _client(cast.patient_a.user).get("/devices/").status_code == 403
    assert _client(cast.quality).get("/devices/").status_code == 403


def test_the_team_list_filters_by_kind_and_by_lent_overdue_or_returned(cast):
    Device.objects.create(kind=DeviceKind.SCALE, serial="SC-OLD", patient=cast.patient_a,
                          lent_from=_today() - timedelta(days=60), lent_to=_today() - timedelta(days=3),
                          returned_on=_today() - timedelta(days=3))
    Device.objects.create(kind=DeviceKind.SCALE, serial="SC-NEW", patient=cast.patient_a,
                          lent_to=_today() + timedelta(days=30))
    # Lent until three days ago and never registered as back: overdue, not returned.
    Device.objects.create(kind=DeviceKind.THERMOMETER, serial="TH-LATE", patient=cast.patient_a,
                          lent_from=_today() - timedelta(days=60), lent_to=_today() - timedelta(days=3))
    client = _client(cast.clinician_a)

    def serials(query: str) -> set[str]:
        html = client.get("/devices/" + query).content.decode()
        return set(re.findall(r"(OX-A|SC-OLD|SC-NEW|TH-LATE)</td>", html))

    assert serials("") == {"OX-A", "SC-OLD", "SC-NEW", "TH-LATE"}
    assert serials("?kind=scale") == {"SC-OLD", "SC-NEW"}
    assert serials("?status=lent") == {"OX-A", "SC-NEW"}
    assert serials("?status=overdue") == {"TH-LATE"}
    assert serials("?status=returned") == {"SC-OLD"}
    assert serials("?kind=scale&status=returned") == {"SC-OLD"}
    assert serials("?kind=no-such-kind") == {"OX-A", "SC-OLD", "SC-NEW", "TH-LATE"}  # a bad filter filters nothing
    assert "<strong>Overdue</strong>" in client.get("/devices/?status=overdue").content.decode()


# --- registering --------------------------------------------------------------------------------

def test_a_clinician_registers_a_device_lent_to_the_patient_and_it_is_audited(cast):
    response = _register(_client(cast.clinician_a), cast.patient_a)
    device = Device.objects.get(serial="SC-100")
    assert response.status_code == 302 and response["Location"] == _detail_url(device)
    assert (device.patient, device.kind, device.model, device.lent_from, device.lent_to) == (
        cast.patient_a, DeviceKind.SCALE, "A&D UC-352BLE", _today(), None)
    assert AuditEvent.objects.filter(action=Action.CREATE, patient_ref=cast.patient_a.pk,
                                     resource__startswith=f"Device/{device.pk} (registered").exists()


def test_a_duplicate_serial_of_the_same_kind_is_refused_next_to_the_field_and_nothing_is_stored(cast):
    response = _register(_client(cast.clinician_a), cast.patient_a, kind=DeviceKind.PULSE_OXIMETER, serial="OX-A")
    assert response.status_code == 400
    assert "already registered" in _field_errors(response, "serial")
    assert Device.objects.filter(serial="OX-A").count() == 1
    assert 'aria-describedby="id_serial-help id_serial-errors"' in response.content.decode()


def test_the_same_serial_may_be_used_by_another_kind_of_device(cast):
    assert _register(_client(cast.clinician_a), cast.patient_a, serial="OX-A").status_code == 302
    assert Device.objects.filter(serial="OX-A").count() == 2


@pytest.mark.parametrize(
    ("overrides", "field", "needle"),
    [
        ({"serial": "  "}, "serial", "serial number"),
        ({"kind": "toaster"}, "kind", "toaster"),
        ({"kind": ""}, "kind", "Choose the kind"),
        ({"lent_from": ""}, "lent_from", "Give the date"),
        ({"lent_from": "2026-13-40"}, "lent_from", "Give a date"),
        ({"lent_to": "2020-01-01"}, "lent_to", "before the start date"),
    ],
    ids=["blank-serial", "unknown-kind", "no-kind", "no-start", "bad-date", "end-before-start"],
)
def test_bad_registrations_are_answered_next_to_the_field_and_store_nothing(cast, overrides, field, needle):
    response = _register(_client(cast.clinician_a), cast.patient_a, **overrides)
    assert response.status_code == 400
    assert needle in _field_errors(response, field)
    assert not Device.objects.filter(serial="SC-100").exists()
    assert not AuditEvent.objects.filter(action=Action.CREATE, resource__startswith="Device/").exists()


def test_a_clinician_of_another_team_cannot_register_a_device_for_the_patient(cast):
    assert _register(_client(cast.clinician_b), cast.patient_a).status_code == 404
    assert _register(_client(cast.patient_a.user), cast.patient_a).status_code == 403
    assert not Device.objects.filter(serial="SC-100").exists()


def test_the_register_service_refuses_a_duplicate_even_when_the_check_before_was_passed(cast, monkeypatch):
    # Two clinicians registering the same device at once: both pass the read, the unique
    # constraint refuses the second insert and the service answers with the same field error.
    from monitoring import services

    real_filter = services.Device.objects.filter

    class _Passes:
        def exists(self) -> bool:
            return False

    monkeypatch.setattr(services.Device.objects, "filter",
                        lambda *a, **kw: _Passes() if "serial" in kw else real_filter(*a, **kw))
    with pytest.raises(ValidationError) as exc:
        device_register(kind=DeviceKind.PULSE_OXIMETER, serial="OX-A", patient=cast.patient_a,
                        lent_from=_today(), by=cast.clinician_a)
    assert "serial" in exc.value.message_dict
    monkeypatch.undo()
    assert Device.objects.filter(serial="OX-A").count() == 1


# --- lending and returning ------------------------------------------------------------------------

def _returned_device(cast, days_ago: int = 5) -> Device:
    cast.device_a.lent_from = _today() - timedelta(days=40)
    cast.device_a.save()
    return device_return(device=cast.device_a, returned_on=_today() - timedelta(days=days_ago), by=cast.clinician_a)


def test_a_device_still_lent_out_cannot_be_lent_to_another_patient(cast):
    with pytest.raises(ValidationError) as exc:
        device_lend(device=cast.device_a, patient=cast.patient_b, lent_from=_today(), by=cast.admin)
    assert "stadig udlånt" in str(exc.value.message_dict["serial"])  # "still lent out", in the site's Danish
    cast.device_a.refresh_from_db()
    assert cast.device_a.patient == cast.patient_a


def test_a_returned_device_cannot_be_lent_for_a_period_overlapping_its_last_lending(cast):
    device = _returned_device(cast, days_ago=5)
    for start in (_today() - timedelta(days=5), _today() - timedelta(days=30)):
        with pytest.raises(ValidationError) as exc:
            device_lend(device=device, patient=cast.patient_b, lent_from=start, by=cast.admin)
        assert "lent_from" in exc.value.message_dict
    device.refresh_from_db()
    assert device.patient == cast.patient_a


def test_a_returned_device_is_lent_to_the_next_patient_and_its_old_tokens_stop_working(cast):
    client = _client(cast.clinician_a)
    device = Device.objects.create(kind=DeviceKind.SCALE, serial="SC-9", patient=cast.patient_a,
                                   lent_from=_today() - timedelta(days=20))
    _token, raw = DeviceToken.issue(device)
    response = client.post(_detail_url(device), {"returned_on": (_today() - timedelta(days=2)).isoformat()})
    assert response.status_code == 302
    assert _api_reading(raw).status_code == 401  # returned: revoked at once
    second = make_user("patient-a2", Role.PATIENT)
    from patients.models import Patient, TreatmentEpisode

    patient = Patient.objects.create(user=second, cpr="030350-3333", given_name="Asta", family_name="Testsen",
                                     birth_date=_today() - timedelta(days=70 * 365), sex="female")
    TreatmentEpisode.objects.create(patient=patient, program=cast.program_a, care_team=cast.team_a,
                                    condition_code="DC34", treatment_start=_today())
    response = client.post(_devices_url(patient) + "lend/", {
        "kind": DeviceKind.SCALE, "serial": "SC-9", "lent_from": _today().isoformat(), "lent_to": ""})
    assert response.status_code == 302, response.content.decode()
    device.refresh_from_db()
    assert (device.patient, device.lent_from, device.lent_to) == (patient, _today(), None)
    assert not device.tokens.filter(revoked_at=None).exists()
    lend_rows = AuditEvent.objects.filter(resource__startswith=f"Device/{device.pk} (lent")
    assert {r.patient_ref for r in lend_rows} == {cast.patient_a.pk, patient.pk}


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"kind": DeviceKind.PULSE_OXIMETER, "serial": "OX-A"}, "still lent out"),
        ({"kind": DeviceKind.PULSE_OXIMETER, "serial": "OX-B"}, "No pulse oximeter"),  # team B's device
        ({"kind": DeviceKind.SCALE, "serial": "NOPE"}, "No scale"),
    ],
    ids=["still-lent", "another-teams-device", "unknown-serial"],
)
def test_lending_a_device_that_is_not_free_or_not_ours_is_refused_next_to_the_serial(cast, body, needle):
    response = _client(cast.clinician_a).post(_devices_url(cast.patient_a) + "lend/", {
        **body, "lent_from": _today().isoformat(), "lent_to": ""})
    assert response.status_code == 400
    assert needle in _field_errors(response, "serial")
    cast.device_b.refresh_from_db()
    assert cast.device_b.patient == cast.patient_b


@pytest.mark.parametrize(
    ("days", "needle"),
    [(1, "future"), (-60, "cannot be returned before")],
    ids=["in-the-future", "before-the-lending"],
)
def test_a_bad_return_date_is_answered_next_to_the_field_and_changes_nothing(cast, days, needle):
    cast.device_a.lent_from = _today() - timedelta(days=30)
    cast.device_a.save()
    response = _client(cast.clinician_a).post(_detail_url(cast.device_a),
                                              {"returned_on": (_today() + timedelta(days=days)).isoformat()})
    assert response.status_code == 400
    assert needle in _field_errors(response, "returned_on")
    cast.device_a.refresh_from_db()
    assert cast.device_a.lent_to is None
    assert _api_reading(cast.device_token_a).status_code == 201


def test_a_device_cannot_be_returned_twice(cast):
    _returned_device(cast)
    with translation.override("en"), pytest.raises(ValidationError) as exc:
        device_return(device=cast.device_a, returned_on=_today(), by=cast.clinician_a)
    assert "already returned" in str(exc.value.message_dict["returned_on"])


# --- tokens ---------------------------------------------------------------------------------------

def test_a_token_is_shown_once_stored_hashed_and_accepted_by_the_api(cast):
    client = _client(cast.clinician_a)
    response = client.post(_detail_url(cast.device_a) + "token/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    shown = TOKEN_RE.findall(response.content.decode())
    assert len(set(shown)) == 1
    raw = shown[0]
    live = DeviceToken.objects.get(device=cast.device_a, revoked_at=None)
    assert live.key_hash == hash_token(raw) and raw not in live.key_hash
    # Not shown again: not on the device page, not in the audit trail.
    assert raw not in client.get(_detail_url(cast.device_a)).content.decode()
    assert not AuditEvent.objects.filter(resource__contains=raw).exists()
    assert _api_reading(raw).status_code == 201
    # The token issued before (by the cast) was replaced.
    assert _api_reading(cast.device_token_a).status_code == 401
    assert AuditEvent.objects.filter(action=Action.CREATE, patient_ref=cast.patient_a.pk,
                                     resource__contains="token").exists()


def test_a_revoked_token_is_refused_by_the_api_at_once(cast):
    client = _client(cast.clinician_a)
    raw = TOKEN_RE.search(client.post(_detail_url(cast.device_a) + "token/").content.decode()).group(0)
    assert _api_reading(raw).status_code == 201
    response = client.post(_detail_url(cast.device_a) + "token/revoke/")
    assert response.status_code == 302
    refused = _api_reading(raw)
    assert refused.status_code == 401
    assert Reading.objects.count() == 1
    assert AuditEvent.objects.filter(action=Action.UPDATE, patient_ref=cast.patient_a.pk,
                                     resource__contains="revoked").exists()


def test_tokens_are_issued_and_revoked_only_by_post_and_only_by_the_team(cast):
    url = _detail_url(cast.device_a) + "token/"
    assert _client(cast.clinician_a).get(url).status_code == 405
    assert _client(cast.clinician_b).post(url).status_code == 404
    assert _client(cast.patient_a.user).post(url).status_code == 403
    assert _client(cast.clinician_b).post(url + "revoke/").status_code == 404
    assert DeviceToken.objects.filter(device=cast.device_a).count() == 1
    assert _api_reading(cast.device_token_a).status_code == 201


def test_no_token_is_issued_for_a_returned_device(cast):
    _returned_device(cast)
    response = _client(cast.clinician_a).post(_detail_url(cast.device_a) + "token/", follow=True)
    assert "has been returned" in response.content.decode()
    assert not DeviceToken.objects.filter(device=cast.device_a, revoked_at=None).exists()
    with pytest.raises(ValidationError):
        device_token_issue(device=cast.device_a, by=cast.admin)


def test_the_admin_actions_issue_and_revoke_through_the_same_services(cast):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(cast.admin)
    response = client.post("/admin/monitoring/device/", {
        "action": "issue_token", "_selected_action": [cast.device_a.pk]}, follow=True)
    raw = TOKEN_RE.search(response.content.decode()).group(0)
    assert _api_reading(cast.device_token_a).status_code == 401
    assert _api_reading(raw).status_code == 201
    client.post("/admin/monitoring/device/", {"action": "revoke_tokens", "_selected_action": [cast.device_a.pk]})
    assert _api_reading(raw).status_code == 401
    assert AuditEvent.objects.filter(username="admin", resource__startswith=f"Device/{cast.device_a.pk}").count() == 2


# --- a reading belongs to the patient the device was lent to when it was measured -------------

def _relent_to_b(cast):
    """Device A was patient A's until 10 days ago and is patient B's from 9 days ago, with a new token."""
    device = cast.device_a
    device_return(device=device, returned_on=_today() - timedelta(days=10), by=cast.clinician_a)
    device_lend(device=device, patient=cast.patient_b, lent_from=_today() - timedelta(days=9), by=cast.clinician_b)
    return device, device_token_issue(device=device, by=cast.clinician_b)[1]


def _spo2(days_ago: float, **extra):
    return {"measure": "spo2", "value": "97", "unit": "%",
            "effective_at": (timezone.now() - timedelta(days=days_ago)).isoformat(), **extra}


def test_a_relent_devices_backlog_from_the_previous_patient_is_refused_not_filed_in_the_new_patients_record(cast):
    _device, raw = _relent_to_b(cast)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_ACCEPT_LANGUAGE="en")
    old = client.post("/api/v1/readings", _spo2(20), content_type="application/json")
    assert old.status_code == 400
    assert old.json()["effective_at"][0].startswith("Measured before this device was lent to the patient (on ")
    lent = _today() - timedelta(days=9)
    assert f"{lent.day}, {lent.year})" in old.json()["effective_at"][0]  # English dates in English ("Nov. 24, 2026")
    assert f"(on {lent.day}. " not in old.json()["effective_at"][0]
    batch = client.post("/api/v1/readings", [_spo2(20), _spo2(1)], content_type="application/json")
    assert [r["status"] for r in batch.json()["results"]] == [400, 201]
    assert list(Reading.objects.values_list("patient_id", flat=True)) == [cast.patient_b.pk]


def test_a_relent_devices_backlog_is_refused_through_fhir_with_an_operation_outcome(cast):
    _device, raw = _relent_to_b(cast)
    observation = vital_signs_observation(cast.patient_b, code="59408-5", value=97, unit="%",
                                          effectiveDateTime=(timezone.now() - timedelta(days=20)).isoformat())
    response = Client(HTTP_AUTHORIZATION=f"Bearer {raw}").post("/fhir/Observation", observation,
                                                               content_type="application/fhir+json")
    assert response.status_code == 400 and response.json()["resourceType"] == "OperationOutcome"
    assert not Reading.objects.exists()


def test_a_reading_after_the_devices_return_day_is_refused_and_the_return_day_itself_is_kept(cast):
    device = cast.device_a
    Device.objects.filter(pk=device.pk).update(lent_from=_today() - timedelta(days=30))
    returned_on = _today() - timedelta(days=3)
    device_return(device=device, returned_on=returned_on, by=cast.clinician_a)
    device.refresh_from_db()
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(cast.patient_a.user)
    last_day = timezone.make_aware(timezone.datetime.combine(returned_on, timezone.datetime.max.time()))
    after = last_day + timedelta(minutes=1)
    kept = client.post("/api/v1/readings", _spo2(0, effective_at=last_day.isoformat(), device=device.pk),
                       content_type="application/json")
    refused = client.post("/api/v1/readings", _spo2(0, effective_at=after.isoformat(), device=device.pk),
                          content_type="application/json")
    assert kept.status_code == 201, kept.json()
    assert refused.status_code == 400
    assert refused.json()["effective_at"][0].startswith("Measured after this device was returned (on ")
    assert Reading.objects.count() == 1


# --- the lending history: a device lent again to the same patient ------------------------------

def _relent_to_a_again(cast):
    """Device A was patient A's until 10 days ago, on the shelf for 4 days, and patient A's again
    from 5 days ago, with a new token."""
    device = cast.device_a
    device_return(device=device, returned_on=_today() - timedelta(days=10), by=cast.clinician_a)
    device_lend(device=device, patient=cast.patient_a, lent_from=_today() - timedelta(days=5), by=cast.clinician_a)
    return device, device_token_issue(device=device, by=cast.clinician_a)[1]


def test_every_lending_is_kept_in_the_devices_history(cast):
    device = device_register(kind=DeviceKind.SCALE, serial="H-1", patient=cast.patient_a,
                             lent_from=_today() - timedelta(days=30), by=cast.clinician_a)
    device_return(device=device, returned_on=_today() - timedelta(days=20), by=cast.clinician_a)
    device_lend(device=device, patient=cast.patient_b, lent_from=_today() - timedelta(days=19), by=cast.admin)
    device_return(device=device, returned_on=_today() - timedelta(days=2), by=cast.admin)
    device_lend(device=device, patient=cast.patient_a, lent_from=_today(), by=cast.clinician_a)

    assert list(DeviceLending.objects.filter(device=device).order_by("lent_from").values_list(
        "patient_id", "lent_from", "lent_to")) == [
        (cast.patient_a.pk, _today() - timedelta(days=30), _today() - timedelta(days=20)),
        (cast.patient_b.pk, _today() - timedelta(days=19), _today() - timedelta(days=2)),
        (cast.patient_a.pk, _today(), None),
    ]


def test_a_refused_lending_or_return_leaves_the_history_as_it_was(cast):
    device = device_register(kind=DeviceKind.SCALE, serial="H-2", patient=cast.patient_a,
                             lent_from=_today() - timedelta(days=30), by=cast.clinician_a)
    before = list(DeviceLending.objects.filter(device=device).values_list("patient_id", "lent_from", "lent_to"))
    with pytest.raises(ValidationError):
        device_lend(device=device, patient=cast.patient_b, lent_from=_today(), by=cast.admin)  # still lent out
    with pytest.raises(ValidationError):
        device_return(device=device, returned_on=_today() - timedelta(days=31), by=cast.admin)  # before the lending
    assert list(DeviceLending.objects.filter(device=device).values_list("patient_id", "lent_from", "lent_to")) == before


def test_a_device_lent_again_to_the_same_patient_uploads_that_patients_backlog_from_the_first_lending(cast):
    device, raw = _relent_to_a_again(cast)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_ACCEPT_LANGUAGE="en")

    batch = client.post("/api/v1/readings", [_spo2(20), _spo2(7), _spo2(1)], content_type="application/json")

    # 20 days ago: the first lending, the patient's own; 7 days ago: on the shelf; 1 day ago: now.
    assert [r["status"] for r in batch.json()["results"]] == [201, 400, 201]
    assert batch.json()["results"][1]["errors"]["effective_at"][0].startswith(
        "Measured before this device was lent to the patient (on ")
    assert list(Reading.objects.values_list("patient_id", "device_id")) == [(cast.patient_a.pk, device.pk)] * 2


def test_the_first_lendings_backlog_is_accepted_through_fhir_too(cast):
    _device, raw = _relent_to_a_again(cast)
    observation = vital_signs_observation(cast.patient_a, code="59408-5", value=97, unit="%",
                                          effectiveDateTime=(timezone.now() - timedelta(days=20)).isoformat())
    response = Client(HTTP_AUTHORIZATION=f"Bearer {raw}").post("/fhir/Observation", observation,
                                                               content_type="application/fhir+json")
    assert response.status_code == 201, response.json()
    assert Reading.objects.get().patient_id == cast.patient_a.pk


def test_a_device_back_with_its_first_patient_still_refuses_the_backlog_of_the_patient_between(cast):
    device, _raw = _relent_to_b(cast)  # A's until 10 days ago, B's from 9 days ago
    device_return(device=device, returned_on=_today() - timedelta(days=3), by=cast.clinician_b)
    device_lend(device=device, patient=cast.patient_a, lent_from=_today() - timedelta(days=2), by=cast.clinician_a)
    raw = device_token_issue(device=device, by=cast.clinician_a)[1]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_ACCEPT_LANGUAGE="en")

    batch = client.post("/api/v1/readings", [_spo2(20), _spo2(5), _spo2(1)], content_type="application/json")

    # 20 days ago: A's first lending; 5 days ago: B had it, so it is B's, not A's; 1 day ago: A's.
    assert [r["status"] for r in batch.json()["results"]] == [201, 400, 201]
    assert set(Reading.objects.values_list("patient_id", flat=True)) == {cast.patient_a.pk}


def test_a_patient_may_name_a_device_they_had_before_for_a_reading_of_that_time_only(cast):
    device, _raw = _relent_to_b(cast)  # A's until 10 days ago, B's now
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(cast.patient_a.user)

    theirs = client.post("/api/v1/readings", _spo2(20, device=device.pk), content_type="application/json")
    bs = client.post("/api/v1/readings", _spo2(1, device=device.pk), content_type="application/json")
    assert theirs.status_code == 201, theirs.json()
    assert bs.status_code == 400 and "effective_at" in bs.json()

    # Patient B has the device now, but 20 days ago it was A's: not B's reading.
    client.force_login(cast.patient_b.user)
    earlier = client.post("/api/v1/readings", _spo2(20, device=device.pk), content_type="application/json")
    assert earlier.status_code == 400 and "effective_at" in earlier.json()
    # A device the patient never had is as if it did not exist.
    client.force_login(cast.patient_a.user)
    never = client.post("/api/v1/readings", _spo2(20, device=cast.device_b.pk), content_type="application/json")
    assert never.status_code == 404 or "device" in str(never.json())
    assert list(Reading.objects.values_list("patient_id", flat=True)) == [cast.patient_a.pk]


def test_a_patients_devices_page_lists_their_earlier_lendings_without_the_next_patient(cast):
    device, _raw = _relent_to_b(cast)
    page = _client(cast.clinician_a).get(_devices_url(cast.patient_a))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Earlier lendings" in html and device.serial in html
    assert cast.patient_b.name not in html and str(cast.patient_b.pk) not in html
    # ...and no link to the device, which is now on another team's patient's page.
    assert _detail_url(device) not in html


def test_a_device_registered_in_the_admin_starts_its_history(cast):
    client = Client()
    client.force_login(cast.admin)
    management = {f"{prefix}-{name}": value for prefix in ("lendings", "tokens")
                  for name, value in (("TOTAL_FORMS", "0"), ("INITIAL_FORMS", "0"), ("MIN_NUM_FORMS", "0"),
                                      ("MAX_NUM_FORMS", "1000"))}
    response = client.post("/admin/monitoring/device/add/", {
        "kind": DeviceKind.SCALE, "model": "", "serial": "ADM-1", "patient": str(cast.patient_a.pk),
        "lent_from": _today().isoformat(), "lent_to": "", **management})
    assert response.status_code == 302, response.content.decode()[:2000]
    device = Device.objects.get(serial="ADM-1")
    assert list(device.lendings.values_list("patient_id", "lent_from", "lent_to")) == [
        (cast.patient_a.pk, _today(), None)]


def test_a_device_lent_until_a_date_still_to_come_is_not_lent_on_before_its_return(cast):
    device = device_register(kind=DeviceKind.GLUCOMETER, serial="SN-FUT", patient=cast.patient_a,
                             lent_from=_today(), lent_to=_today() + timedelta(days=60), by=cast.clinician_a)
    with translation.override("en"), pytest.raises(ValidationError) as exc:
        device_lend(device=device, patient=cast.patient_b, lent_from=_today() + timedelta(days=61), by=cast.admin)
    assert "Register its return first" in str(exc.value.message_dict["serial"])
    device.refresh_from_db()
    assert device.patient == cast.patient_a
    device_return(device=device, returned_on=_today(), by=cast.clinician_a)
    device_lend(device=device, patient=cast.patient_b, lent_from=_today() + timedelta(days=1), by=cast.admin)
    device.refresh_from_db()
    assert device.patient == cast.patient_b


def test_a_serial_number_typed_in_other_letters_case_is_the_same_device(cast):
    device_register(kind=DeviceKind.SCALE, serial="SN-REV-1", patient=cast.patient_a, lent_from=_today(),
                    by=cast.clinician_a)
    with pytest.raises(ValidationError) as exc:
        device_register(kind=DeviceKind.SCALE, serial="sn-rev-1", patient=cast.patient_a, lent_from=_today(),
                        by=cast.clinician_a)
    assert "sn-rev-1" in str(exc.value.message_dict["serial"])  # the duplicate's message, naming it
    assert Device.objects.filter(serial__iexact="sn-rev-1").count() == 1


def test_an_overdue_device_is_returned_late_and_its_readings_until_then_are_the_patients(cast):
    device = device_register(kind=DeviceKind.THERMOMETER, serial="TH-1", patient=cast.patient_a,
                             lent_from=_today() - timedelta(days=30), lent_to=_today() - timedelta(days=5),
                             by=cast.clinician_a)
    assert device.status == "overdue"
    page = _client(cast.clinician_a).get(_detail_url(device)).content.decode()
    assert "overdue: its return is not registered" in page and "Register the return" in page
    with pytest.raises(ValidationError):  # not lent on while it may still be at the patient's
        device_lend(device=device, patient=cast.patient_b, lent_from=_today() + timedelta(days=1), by=cast.admin)
    device_return(device=device, returned_on=_today(), by=cast.clinician_a)
    device.refresh_from_db()
    assert (device.status, device.lent_to, device.returned_on) == ("returned", _today(), _today())
    # Returned today: no new token for it until it is lent out again.
    with pytest.raises(ValidationError):
        device_token_issue(device=device, by=cast.clinician_a)
    assert list(device.lendings.values_list("lent_to", "returned_on")) == [(_today(), _today())]
