import copy
import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.operationoutcome import OperationOutcome

from monitoring.models import DeviceKind, Reading
from tests.factories import device_token_of
from tests.factories import vital_signs_observation as _obs

pytestmark = pytest.mark.django_db
FHIR = "application/fhir+json"


def _device(cast, kind: str | None = None) -> Client:
    """The cast's pulse oximeter, or a device of ``kind`` lent to patient A: a device's token sends
    only what its kind measures."""
    token = cast.device_token_a if kind is None else device_token_of(cast.patient_a, kind)[1]
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}")


def _patient(cast) -> Client:
    """Patient A, sending by hand: any measure (a Bundle of several kinds of device's readings)."""
    client = Client()
    client.force_login(cast.patient_a.user)
    return client


def _post(client: Client, path: str, body) -> "object":
    return client.post(path, json.dumps(body), content_type=FHIR)


def test_a_device_posts_an_observation_stored_once_and_answered_as_r4(cast):
    client = _device(cast, DeviceKind.SCALE)
    resource = _obs(cast.patient_a, identifier="w-1")
    first = _post(client, "/fhir/Observation", resource)
    assert first.status_code == 201, first.json()
    Observation.model_validate(first.json())
    assert first["Location"].endswith(f"/fhir/Observation/{first.json()['id']}")
    again = _post(client, "/fhir/Observation", resource)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert Reading.objects.filter(patient=cast.patient_a).count() == 1
    changed = {**resource, "valueQuantity": {**resource["valueQuantity"], "value": 90}}
    conflict = _post(client, "/fhir/Observation", changed)
    assert conflict.status_code == 409 and conflict.json()["issue"][0]["code"] == "conflict"


def test_a_low_spo2_observation_raises_the_alert_like_any_reading(cast, django_capture_on_commit_callbacks):
    from alerts.models import Alert

    with django_capture_on_commit_callbacks(execute=True):
        response = _post(_device(cast), "/fhir/Observation", _obs(cast.patient_a, "59408-5", 85, "%"))
    assert response.status_code == 201
    assert Alert.objects.filter(patient=cast.patient_a, severity="red").count() == 1


@pytest.mark.parametrize(
    ("change", "status", "needle"),
    [
        ({"status": None}, 400, "Observation.status"),
        ({"valueQuantity": {"value": 81.4}}, 400, "valueQuantity.code"),
        ({"code": {"coding": [{"system": "http://loinc.org", "code": "59408-5"}]},
          "valueQuantity": {"value": 150, "code": "%"}}, 400, "value"),
        ({"valueQuantity": {"value": 81.4, "code": "mm[Hg]", "system": "http://unitsofmeasure.org"}}, 400, "unit"),
    ],
    ids=["missing-status", "value-without-unit", "impossible-value", "incompatible-unit"],
)
def test_invalid_observations_are_operation_outcomes_and_store_nothing(cast, change, status, needle):
    resource = _obs(cast.patient_a)
    for key, value in change.items():
        if value is None:
            resource.pop(key)
        else:
            resource[key] = value
    response = _post(_device(cast), "/fhir/Observation", resource)
    assert response.status_code == status, response.json()
    outcome = OperationOutcome.model_validate(response.json())
    assert any(needle in ((i.diagnostics or "") + " ".join(i.expression or [])) for i in outcome.issue)
    assert not Reading.objects.exists()


def test_an_observation_for_another_patient_is_404_and_a_clinician_cannot_post_one(cast):
    assert _post(_device(cast), "/fhir/Observation", _obs(cast.patient_b)).status_code == 404
    clinician = Client()
    clinician.force_login(cast.clinician_a)
    assert _post(clinician, "/fhir/Observation", _obs(cast.patient_a)).status_code == 403
    assert _post(Client(), "/fhir/Observation", _obs(cast.patient_a)).status_code in (401, 403)
    assert not Reading.objects.exists()


def _bundle(kind: str, *resources) -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": [
        {"resource": r, "request": {"method": "POST", "url": "Observation"}} for r in resources]}


def test_a_batch_bundle_stores_the_good_entries_and_answers_each_one(cast):
    bad = _obs(cast.patient_a)
    bad.pop("status")
    response = _post(_device(cast, DeviceKind.SCALE), "/fhir", _bundle("batch", _obs(cast.patient_a), bad))
    assert response.status_code == 200, response.json()
    bundle = Bundle.model_validate(response.json())
    assert bundle.type == "batch-response"
    assert [e.response.status for e in bundle.entry] == ["201 Created", "400 Bad Request"]
    assert Reading.objects.count() == 1


def test_a_transaction_bundle_is_all_or_nothing(cast):
    bad = _obs(cast.patient_a, "59408-5", 150, "%")  # impossible SpO2
    refused = _post(_patient(cast), "/fhir", _bundle("transaction", _obs(cast.patient_a), bad))
    assert refused.status_code == 400
    assert "entry[1]" in json.dumps(refused.json())
    assert not Reading.objects.exists()

    synthea_bp = {
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
        "subject": {"reference": f"Patient/{cast.patient_a.pk}"},
        "effectiveDateTime": (timezone.now() - timedelta(days=3)).isoformat(),
        "component": [
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
             "valueQuantity": {"value": 131, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org",
                               "code": "mm[Hg]"}},
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
             "valueQuantity": {"value": 82, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org",
                               "code": "mm[Hg]"}}]}
    accepted = _post(_patient(cast), "/fhir", _bundle("transaction", _obs(cast.patient_a), synthea_bp))
    assert accepted.status_code == 200, accepted.json()
    assert Bundle.model_validate(accepted.json()).type == "transaction-response"
    bp = Reading.objects.get(measure="blood-pressure")
    assert (bp.value, bp.value2) == (131, 82)
    assert Reading.objects.count() == 2


@pytest.mark.parametrize(
    "body",
    [{"resourceType": "Observation"}, {"resourceType": "Bundle", "type": "collection", "entry": []},
     {"resourceType": "Bundle", "type": "batch", "entry": []}],
    ids=["not-a-bundle", "wrong-bundle-type", "empty"],
)
def test_bundles_that_are_not_batches_of_observations_are_refused(cast, body):
    response = _post(_device(cast), "/fhir", body)
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


def test_a_bundle_entry_that_is_not_an_observation_create_is_refused_alone(cast):
    entry = copy.deepcopy(_bundle("batch", _obs(cast.patient_a)))
    entry["entry"].append({"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}})
    response = _post(_device(cast, DeviceKind.SCALE), "/fhir/", entry)  # the base URL with a slash works too
    assert response.status_code == 200
    assert [e["response"]["status"] for e in response.json()["entry"]] == ["201 Created", "400 Bad Request"]


def test_the_observation_search_returns_home_readings_and_scores_by_category(cast):
    from questionnaires.models import QuestionnaireResponse

    _post(_device(cast, DeviceKind.SCALE), "/fhir/Observation", _obs(cast.patient_a))
    QuestionnaireResponse.objects.create(
        patient=cast.patient_a, questionnaire=cast.questionnaire, author=cast.patient_a.user, items=[],
        scores=[{"code": {"system": "http://loinc.org", "code": "44261-6", "display": "PHQ-9"}, "value": 4}])
    clinician = Client()
    clinician.force_login(cast.clinician_a)
    patient = str(cast.patient_a.pk)
    everything = clinician.get("/fhir/Observation", {"patient": patient}).json()
    assert everything["total"] == 2
    vital = clinician.get("/fhir/Observation", {"patient": patient, "category": "vital-signs"}).json()
    assert [e["resource"]["code"]["coding"][0]["code"] for e in vital["entry"]] == ["29463-7"]
    Observation.model_validate(vital["entry"][0]["resource"])
    survey = clinician.get("/fhir/Observation", {"patient": patient, "category": "survey"}).json()
    assert [e["resource"]["code"]["coding"][0]["code"] for e in survey["entry"]] == ["44261-6"]
    # laboratory is a category FHIR knows and we hold none of: an empty searchset, not an error
    assert clinician.get("/fhir/Observation", {"patient": patient, "category": "laboratory"}).json()["total"] == 0


def test_the_location_of_a_created_observation_can_be_read_by_the_team_and_the_patient_only(cast):
    created = _post(_device(cast, DeviceKind.SCALE), "/fhir/Observation", _obs(cast.patient_a, identifier="loc-1"))
    assert created.status_code == 201
    path = created["Location"].split("/fhir", 1)[1]

    team = Client()
    team.force_login(cast.clinician_a)
    read = team.get("/fhir" + path)
    assert read.status_code == 200 and read.json() == created.json()
    Observation.model_validate(read.json())

    own = Client()
    own.force_login(cast.patient_a.user)
    assert own.get("/fhir" + path).status_code == 200

    other = Client()
    other.force_login(cast.clinician_b)
    foreign = other.get("/fhir" + path)
    unknown = other.get("/fhir/Observation/reading-999999")
    garbage = other.get("/fhir/Observation/not-an-id")
    for response in (foreign, unknown, garbage):
        assert response.status_code == 404 and response.json()["resourceType"] == "OperationOutcome"
    from audit.models import AuditEvent

    assert AuditEvent.objects.filter(username="clinician-b", outcome="denied",
                                     resource__startswith="Observation/").count() == 3


def test_a_score_observation_from_the_search_can_be_read_by_its_id(cast):
    from questionnaires.models import Questionnaire, QuestionnaireResponse

    questionnaire = Questionnaire.objects.first()  # the cast's programmes have questionnaires
    assert questionnaire is not None
    QuestionnaireResponse.objects.create(
        patient=cast.patient_a, questionnaire=questionnaire, status="completed", items=[],
        scores=[{"code": {"system": "urn:t", "code": "sum", "display": "Sum"}, "value": 7}],
        authored_at=timezone.now())
    team = Client()
    team.force_login(cast.clinician_a)
    bundle = team.get(f"/fhir/Observation?patient={cast.patient_a.pk}&category=survey").json()
    [entry] = bundle["entry"]
    read = team.get(f"/fhir/Observation/{entry['resource']['id']}")
    assert read.status_code == 200 and read.json() == entry["resource"]
