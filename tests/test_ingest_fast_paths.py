"""The batch endpoint's fast paths (orjson body, plain-value results, array dedupe query) answer
exactly as the general paths did: what orjson refuses is parsed by DRF, retries without a
client_id find the stored readings, and the model instance is still there for callers that
ask for it."""

from datetime import timedelta

import orjson
import pytest
from django.utils import timezone

from monitoring.ingest import readings_ingest
from monitoring.models import Reading, Source

pytestmark = pytest.mark.django_db

URL = "/api/v1/readings"


def _item(i: int, **overrides):
    body = {"measure": "spo2", "value": 95, "unit": "%",
            "effective_at": (timezone.now() - timedelta(minutes=10 + i)).isoformat()}
    body.update(overrides)
    return body


def _post(client, raw: bytes | str, token: str, content_type: str = "application/json"):
    return client.post(URL, raw, content_type=content_type, headers={"Authorization": f"Bearer {token}"})


def test_an_integer_beyond_64_bits_is_one_bad_item_not_a_malformed_body(cast, client):
    # orjson refuses integers beyond 64 bits; DRF's parser reads them, and the item is refused.
    raw = b"[" + orjson.dumps(_item(0)) + b"," + orjson.dumps(_item(1))[:-1] + b',"value":' + b"9" * 30 + b"}]"
    response = _post(client, raw, cast.device_token_a)
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 400]
    assert "value" in results[1]["errors"]
    assert Reading.objects.count() == 1


def test_a_body_in_another_charset_is_decoded_by_that_charset(cast, client):
    # The test client encodes a str body with the charset named in the content type.
    body = orjson.dumps([_item(0, client_id="måling-1")]).decode()
    response = _post(client, body, cast.device_token_a, "application/json; charset=latin-1")
    assert response.status_code == 200, response.content
    assert Reading.objects.get().client_id == "måling-1"


def test_malformed_json_in_a_batch_is_a_400_with_drfs_message_and_nothing_stored(cast, client):
    response = _post(client, b'[{"measure": "spo2", "value": 9', cast.device_token_a)
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]
    assert not Reading.objects.exists()


def test_a_retried_batch_without_client_ids_gets_the_stored_ids_back_with_200(cast, client):
    items = [_item(i, value=95 + i) for i in range(3)]
    first = _post(client, orjson.dumps(items), cast.device_token_a).json()["results"]
    again = _post(client, orjson.dumps(items), cast.device_token_a).json()["results"]
    assert [r["status"] for r in first] == [201, 201, 201]
    assert [r["status"] for r in again] == [200, 200, 200]
    assert [r["id"] for r in again] == [r["id"] for r in first]
    assert Reading.objects.count() == 3


def test_a_different_value_at_the_same_time_without_client_id_is_a_new_reading(cast, client):
    when = (timezone.now() - timedelta(minutes=5)).isoformat()
    _post(client, orjson.dumps([_item(0, effective_at=when)]), cast.device_token_a)
    response = _post(client, orjson.dumps([_item(0, effective_at=when, value=96)]), cast.device_token_a)
    assert [r["status"] for r in response.json()["results"]] == [201]
    assert sorted(Reading.objects.values_list("value", flat=True)) == [95, 96]


def test_results_give_the_model_instance_for_new_and_earlier_readings(cast):
    items = [_item(0, client_id="a"), _item(1, client_id="b")]
    first = readings_ingest(patient=cast.patient_a, items=items, source=Source.API)
    again = readings_ingest(patient=cast.patient_a, items=[items[1], items[0]], source=Source.API)
    assert [r.status for r in first] == [201, 201] and [r.status for r in again] == [200, 200]
    for result in [*first, *again]:
        stored = Reading.objects.get(pk=result.id)
        assert result.reading.pk == stored.pk
        assert (result.reading.client_id, result.reading.value, result.reading.patient_id) == (
            stored.client_id, stored.value, stored.patient_id)
        assert result.reading.effective_at == stored.effective_at
