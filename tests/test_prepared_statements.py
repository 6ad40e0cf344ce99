import pytest
from django.db import IntegrityError, connection, transaction

from proplatform.db import prepared_cursor

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql",
                                reason="prepared statements: the PostgreSQL hot paths only")


def _prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def _reading(i: int) -> dict[str, object]:
    from datetime import timedelta

    from django.utils import timezone

    # odd ones without a client_id: deduplicated by device, measure and time, under the lock
    return {"measure": "spo2", "value": 96, "unit": "%", **({"client_id": f"p{i}"} if i % 2 == 0 else {}),
            "effective_at": (timezone.now() - timedelta(minutes=i)).isoformat()}


def test_the_ingest_statements_are_prepared_once_per_connection_and_reused(cast, client):
    def post(*numbers: int) -> None:
        response = client.post("/api/v1/readings", [_reading(i) for i in numbers], content_type="application/json",
                               headers={"Authorization": f"Bearer {cast.device_token_a}"})
        assert response.status_code == 200, response.content
        assert [r["status"] for r in response.json()["results"]] == [201] * len(numbers)

    def three_shapes(base: int) -> None:
        post(base)  # one reading with a client_id: the one-statement insert
        post(base + 1)  # none: under the patient's lock, deduplicated by time
        post(base + 2, base + 4)  # several: deduplicated by client_id, ids reserved, COPY

    three_shapes(0)
    after_one = _prepared()
    # the device-token join, the one-statement insert, the patient's lock, the dedupe query,
    # the id reservation
    assert any("key_hash" in s for s in after_one)
    assert any("ON CONFLICT" in s for s in after_one)
    assert any("pg_advisory_xact_lock" in s for s in after_one)
    assert any("client_id = ANY" in s for s in after_one)
    assert any("nextval" in s for s in after_one)
    three_shapes(10)
    assert sorted(_prepared()) == sorted(after_one)  # bound and executed again, not prepared again


def test_errors_come_out_as_djangos_and_roll_back_like_any_statement(cast):
    from monitoring.models import Reading

    reading = Reading.objects.create(patient=cast.patient_a, measure="spo2", value=95, unit="%",
                                     effective_at="2026-01-01T10:00:00Z", source="api", client_id="x")
    with pytest.raises(IntegrityError), transaction.atomic(), prepared_cursor() as cursor:
        cursor.execute("UPDATE monitoring_reading SET value = 97 WHERE id = %s", [reading.pk], prepare=True)
        # the same client_id twice for one patient: uniq_reading_client_id
        cursor.execute("""INSERT INTO monitoring_reading (patient_id, measure, value, unit, unusual,
                          erroneous_reason, effective_at, received_at, source, client_id)
                          SELECT patient_id, measure, value, unit, unusual, erroneous_reason, effective_at,
                                 received_at, source, client_id FROM monitoring_reading WHERE id = %s""",
                       [reading.pk], prepare=True)
    reading.refresh_from_db()
    assert reading.value == 95  # the statement before it in the transaction rolled back too
    assert Reading.objects.count() == 1
