"""Input found by an adversarial review of the ingest (REST and FHIR): times no instant can hold
or no patient could have been measured at, numbers written oddly, FHIR elements that change
what a value means (a comparator, a device, Danish component codes, a long identifier), and a
defect inside a FHIR endpoint. Each gets a clear error and stores nothing wrong."""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from monitoring.models import DeviceKind, Reading
from tests.factories import device_token_of
from tests.factories import vital_signs_observation as _obs

pytestmark = pytest.mark.django_db
FHIR = "application/fhir+json"


def _rest(cast, kind: str | None = None) -> Client:
    """The cast's pulse oximeter, or a device of ``kind`` lent to patient A (a device's token sends
    only what its kind measures)."""
    token = cast.device_token_a if kind is None else device_token_of(cast.patient_a, kind)[1]
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_ACCEPT_LANGUAGE="en")


def _by_hand(cast) -> Client:
    """Patient A, sending by hand: any measure, also those no device of ours measures."""
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(cast.patient_a.user)
    return client


def _fhir(client: Client, path: str, body):
    return client.post(path, json.dumps(body), content_type=FHIR)


def _hr(when: str, **extra):
    return {"measure": "heart-rate", "value": 61, "unit": "/min", "effective_at": when, **extra}


def _recent() -> str:
    return (timezone.now() - timedelta(minutes=7)).isoformat()


# --- times -------------------------------------------------------------------------------------

@pytest.mark.parametrize("when", ["0001-01-01T00:10:00+01:00", "0001-01-01T00:00:00Z", "1899-12-31T23:00:00Z"])
def test_a_time_before_1900_is_refused_next_to_the_field_and_the_rest_of_the_batch_is_stored(cast, when):
    response = _rest(cast).post("/api/v1/readings", [_hr(_recent()), _hr(when)], content_type="application/json")
    assert response.status_code == 200  # something was stored: per-item results
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 400]
    assert "before 1900" in results[1]["errors"]["effective_at"][0]
    assert Reading.objects.count() == 1


def test_a_time_before_the_patient_was_born_is_refused(cast):
    born = cast.patient_a.birth_date
    when = f"{born.year - 1}-06-01T08:00:00+01:00"
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(cast.patient_a.user)
    response = client.post("/api/v1/readings", _hr(when), content_type="application/json")
    assert response.status_code == 400
    assert "before the patient was born" in response.json()["effective_at"][0]
    assert not Reading.objects.exists()


@pytest.mark.parametrize("when", ["2016-12-31T23:59:60Z", "2026-02-30T10:00:00Z", "2026-12-03T24:00:00Z",
                                  "2026-12-03T10:00:00+24:00"])
def test_a_fhir_time_that_is_no_instant_is_an_operation_outcome_not_a_server_error(cast, when):
    response = _fhir(_rest(cast), "/fhir/Observation",
                     _obs(cast.patient_a, code="8867-4", value=61, unit="/min", effectiveDateTime=when))
    assert response.status_code == 400
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == ["Observation.effective"]
    assert not Reading.objects.exists()


def test_in_a_batch_bundle_a_time_that_is_no_instant_fails_its_entry_only(cast):
    good = _obs(cast.patient_a, code="8867-4", value=61, unit="/min")
    bad = _obs(cast.patient_a, code="8867-4", value=62, unit="/min", effectiveDateTime="2026-02-30T10:00:00Z")
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": r, "request": {"method": "POST", "url": "Observation"}} for r in (good, bad)]}
    response = _fhir(_rest(cast), "/fhir", bundle)
    assert response.status_code == 200
    assert [e["response"]["status"][:3] for e in response.json()["entry"]] == ["201", "400"]
    assert Reading.objects.count() == 1


def test_a_year_one_time_through_fhir_is_refused_not_a_server_error(cast):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(cast.patient_a.user)
    response = _fhir(client, "/fhir/Observation", _obs(cast.patient_a, code="8867-4", value=61, unit="/min",
                                                       effectiveDateTime="0001-01-01T00:30:00+01:00"))
    assert response.status_code == 400 and response.json()["resourceType"] == "OperationOutcome"
    assert "before 1900" in json.dumps(response.json())


# --- numbers -----------------------------------------------------------------------------------

def test_a_number_with_an_underscore_is_refused(cast):
    response = _rest(cast).post("/api/v1/readings", {**_hr(_recent()), "value": "9_7"},
                                content_type="application/json")
    assert response.status_code == 400 and "value" in response.json()
    assert not Reading.objects.exists()


@pytest.mark.parametrize(("quantity", "needle"), [
    ({"value": 72, "comparator": ">", "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
     "comparator"),
    ({"value": "72", "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}, "value"),
    ({"value": True, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}, "value"),
])
def test_a_fhir_quantity_that_is_no_plain_measured_number_is_refused(cast, quantity, needle):
    resource = {**_obs(cast.patient_a, code="8867-4", value=72, unit="/min"), "valueQuantity": quantity}
    response = _fhir(_rest(cast), "/fhir/Observation", resource)
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"][0].endswith(needle)
    assert not Reading.objects.exists()


# --- what a FHIR Observation says beside its value ----------------------------------------------

@pytest.mark.parametrize(("systolic", "diastolic", "system"), [
    ("MCS88019", "MCS88020", "urn:oid:1.2.208.176.2.1"),
    ("DNK05472", "DNK05473", "urn:oid:1.2.208.176.2.1"),
])
def test_blood_pressure_with_danish_component_codes_is_stored(cast, systolic, diastolic, system):
    resource = _obs(cast.patient_a, code="85354-9", value=0, unit="mm[Hg]")
    del resource["valueQuantity"]
    resource["component"] = [
        {"code": {"coding": [{"system": system, "code": code}]},
         "valueQuantity": {"value": value, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}
        for code, value in ((systolic, 130), (diastolic, 85))]
    response = _fhir(_rest(cast, DeviceKind.BLOOD_PRESSURE), "/fhir/Observation", resource)
    assert response.status_code == 201, response.json()
    reading = Reading.objects.get()
    assert (reading.measure, reading.value, reading.value2) == ("blood-pressure", 130, 85)


def test_an_identifier_longer_than_is_kept_is_refused_not_cut_short(cast):
    client = _rest(cast)
    first = _obs(cast.patient_a, code="8867-4", value=80, unit="/min")
    first["identifier"] = [{"system": "urn:dev", "value": "x" * 100 + "A"}]
    response = _fhir(client, "/fhir/Observation", first)
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["Observation.identifier"]
    assert not Reading.objects.exists()


def test_a_device_of_this_server_named_by_an_observation_is_checked_like_rests(cast):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(cast.patient_a.user)
    others = _obs(cast.patient_a, code="8867-4", value=61, unit="/min",
                  device={"reference": f"Device/{cast.device_b.pk}"})
    response = _fhir(client, "/fhir/Observation", others)
    assert response.status_code == 404 and response.json()["resourceType"] == "OperationOutcome"
    assert not Reading.objects.exists()

    own = _obs(cast.patient_a, code="8867-4", value=61, unit="/min",
               device={"reference": f"Device/{cast.device_a.pk}"})
    assert _fhir(client, "/fhir/Observation", own).status_code == 201
    # Another server's device, or one named in words only, says nothing this server can check.
    foreign = _obs(cast.patient_a, code="8867-4", value=62, unit="/min", device={"display": "Nonin 3230"})
    assert _fhir(client, "/fhir/Observation", foreign).status_code == 201
    assert list(Reading.objects.order_by("value").values_list("device_id", flat=True)) == [cast.device_a.pk, None]


def test_a_defect_inside_a_fhir_endpoint_is_answered_with_an_operation_outcome(cast, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("a defect")

    monkeypatch.setattr("interop.views_observations.readings_ingest", broken)
    client = Client(raise_request_exception=False)
    client.force_login(cast.patient_a.user)
    response = _fhir(client, "/fhir/Observation", _obs(cast.patient_a, code="8867-4", value=61, unit="/min"))
    assert response.status_code == 500
    assert response.json()["resourceType"] == "OperationOutcome"
    assert response.json()["issue"][0]["code"] == "exception"
    assert "a defect" not in response.content.decode()  # no internals to the caller


# --- the same reading under another client_id -----------------------------------------------------

def _weight(**extra):
    return {"measure": "body-weight", "value": 72, "unit": "kg",
            "effective_at": "2026-11-30T08:15:00+01:00", **extra}


def test_the_same_reading_under_a_new_client_id_is_stored_once_and_answered_with_the_first(cast):
    client = _rest(cast, DeviceKind.SCALE)
    first = client.post("/api/v1/readings", _weight(), content_type="application/json")
    again = [client.post("/api/v1/readings", _weight(client_id=c), content_type="application/json")
             for c in ("w1", "w2")]
    assert first.status_code == 201
    assert [r.status_code for r in again] == [200, 200]
    assert {r.json()["id"] for r in again} == {first.json()["id"]}
    # Other values, or another time, are other readings.
    other = client.post("/api/v1/readings", _weight(client_id="w3", value=72.5), content_type="application/json")
    assert other.status_code == 201
    assert Reading.objects.count() == 2


def test_in_one_batch_the_same_reading_under_two_client_ids_is_stored_once(cast):
    response = _rest(cast, DeviceKind.SCALE).post("/api/v1/readings", [_weight(client_id="a"), _weight(client_id="b")],
                                content_type="application/json")
    assert [r["status"] for r in response.json()["results"]] == [201, 200]
    assert Reading.objects.count() == 1


def test_a_reading_sent_through_fhir_and_then_rest_with_other_ids_is_one_reading(cast):
    client = _rest(cast, DeviceKind.SCALE)
    resource = _obs(cast.patient_a, code="29463-7", value=72, unit="kg", identifier="fhir-1",
                    effectiveDateTime="2026-11-30T08:15:00+01:00")
    assert _fhir(client, "/fhir/Observation", resource).status_code == 201
    rest = client.post("/api/v1/readings", _weight(client_id="rest-1"), content_type="application/json")
    assert rest.status_code == 200
    assert Reading.objects.count() == 1


# --- where an OperationOutcome points --------------------------------------------------------------

def test_an_ingest_refusal_names_the_observations_element(cast):
    response = _fhir(_rest(cast), "/fhir/Observation", _obs(cast.patient_a, code="8867-4", value=720, unit="/min"))
    assert response.status_code == 400
    [issue] = response.json()["issue"]
    assert issue["expression"] == ["Observation.valueQuantity.value"]


def test_a_refused_transaction_reports_every_bad_entry_and_stores_nothing(cast):
    good = _obs(cast.patient_a, code="8867-4", value=61, unit="/min")
    parse_bad = {**_obs(cast.patient_a, code="8867-4", value=62, unit="/min"), "status": "bogus"}
    ingest_bad = _obs(cast.patient_a, code="8867-4", value=720, unit="/min")
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": r, "request": {"method": "POST", "url": "Observation"}} for r in (good, parse_bad, parse_bad)]}
    response = _fhir(_rest(cast), "/fhir", bundle)
    assert response.status_code == 400
    expressions = [e for issue in response.json()["issue"] for e in issue["expression"]]
    assert expressions == ["Bundle.entry[1].resource.status", "Bundle.entry[2].resource.status"]

    bundle["entry"] = [{"resource": r, "request": {"method": "POST", "url": "Observation"}}
                       for r in (good, ingest_bad, ingest_bad)]
    response = _fhir(_rest(cast), "/fhir", bundle)
    assert response.status_code == 400
    expressions = [e for issue in response.json()["issue"] for e in issue["expression"]]
    assert expressions == [f"Bundle.entry[{i}].resource.valueQuantity.value" for i in (1, 2)]
    assert not Reading.objects.exists()


@pytest.mark.parametrize(("measure", "unit", "ok"), [
    ("heart-rate", "{beats}/min", True), ("heart-rate", "{breaths}/min", False),
    ("respiratory-rate", "{breaths}/min", True), ("respiratory-rate", "{beats}/min", False),
])
def test_a_counted_unit_is_taken_for_its_own_measure_only(cast, measure, unit, ok):
    response = _by_hand(cast).post("/api/v1/readings",
                                   {**_hr(_recent()), "measure": measure, "value": 20, "unit": unit},
                                   content_type="application/json")
    assert response.status_code == (201 if ok else 400)
    if not ok:
        assert unit in response.json()["unit"][0]


def test_a_huge_unit_or_measure_is_not_echoed_back_whole(cast):
    response = _rest(cast).post("/api/v1/readings", {**_hr(_recent()), "unit": "x" * 100_000},
                                content_type="application/json")
    assert response.status_code == 400 and len(response.content) < 2_000
    response = _rest(cast).post("/api/v1/readings", {**_hr(_recent()), "measure": "y" * 100_000},
                                content_type="application/json")
    assert response.status_code == 400 and len(response.content) < 2_000


@pytest.mark.parametrize(("system", "code"), [("urn:oid:1.2.208.176.2.1", "NPU03011"), ("http://loinc.org", "2708-6")])
def test_the_code_a_sender_used_is_kept_and_given_back_beside_the_platforms(cast, system, code):
    resource = _obs(cast.patient_a, code="59408-5", value=97, unit="%")
    resource["code"] = {"coding": [{"system": system, "code": code}]}
    response = _fhir(_rest(cast), "/fhir/Observation", resource)
    assert response.status_code == 201, response.json()
    codings = response.json()["code"]["coding"]
    assert codings[0]["code"] == "59408-5"  # the platform's LOINC code first
    assert {"system": system, "code": code} in codings
    assert Reading.objects.get().original["code"] == code


# --- from a review of this change -------------------------------------------------------------------

def test_a_devices_token_cannot_store_a_reading_as_another_device_of_the_same_patient(cast):
    from monitoring.models import DeviceKind
    from monitoring.services import device_register

    other = device_register(kind=DeviceKind.SCALE, serial="S-2", patient=cast.patient_a,
                            lent_from=timezone.localdate() - timedelta(days=30), by=cast.clinician_a)
    response = _rest(cast).post("/api/v1/readings", _hr(_recent(), device=other.pk), content_type="application/json")
    assert response.status_code == 404 and "device" in response.json()
    fhir = _fhir(_rest(cast), "/fhir/Observation", _obs(cast.patient_a, code="8867-4", value=61, unit="/min",
                                                        device={"reference": f"Device/{other.pk}"}))
    assert fhir.status_code == 404
    assert not Reading.objects.exists()
    # Naming its own device is fine.
    own = _rest(cast).post("/api/v1/readings", _hr(_recent(), device=cast.device_a.pk),
                           content_type="application/json")
    assert own.status_code == 201


def test_a_time_beyond_the_year_9999_is_said_to_lie_in_the_future(cast):
    response = _rest(cast).post("/api/v1/readings", _hr("9999-12-31T23:30:00-01:00"), content_type="application/json")
    assert response.status_code == 400
    assert "future" in response.json()["effective_at"][0]
