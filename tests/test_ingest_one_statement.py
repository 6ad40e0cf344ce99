"""One reading with a client_id (a device's single upload) is stored with its pending batch by one
statement (monitoring.ingest._insert_one): committed on its own outside a transaction, all or
nothing, and in a savepoint inside a caller's transaction."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from monitoring import ingest
from monitoring.ingest import readings_ingest
from monitoring.models import Device, DeviceKind, PendingEvaluation, Reading, Source
from tests.factories import make_cast

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement insert: PostgreSQL"),
    pytest.mark.django_db(transaction=True),
]


def _item(value: int = 96, client_id: str = "one-1") -> dict[str, object]:
    return {"measure": "spo2", "value": value, "unit": "%", "client_id": client_id,
            "effective_at": (timezone.now() - timedelta(minutes=5)).isoformat()}


def _committed_readings() -> int:
    """Readings another connection sees: committed ones only."""
    from django.db import connections

    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM monitoring_reading")
            return cursor.fetchone()[0]
    finally:
        other.close()


def test_one_reading_is_committed_by_its_own_statement_and_evaluated():
    cast = make_cast()
    [result] = readings_ingest(patient=cast.patient_a, items=[_item()], source=Source.DEVICE, device=cast.device_a)

    assert result.status == 201
    assert not connection.in_atomic_block
    assert _committed_readings() == 1
    reading = Reading.objects.get()
    assert (reading.pk, reading.client_id, reading.device_id, reading.value, reading.unit, reading.source) == (
        result.id, "one-1", cast.device_a.pk, 96, "%", Source.DEVICE)
    assert result.reading == reading and result.reading.received_at == reading.received_at
    assert not PendingEvaluation.objects.exists()  # its batch was evaluated at the commit


def test_a_converted_unit_keeps_the_original_value_and_unit():
    cast = make_cast()
    scale = Device.objects.create(kind=DeviceKind.SCALE, serial="S-1", patient=cast.patient_a)
    [result] = readings_ingest(patient=cast.patient_a, items=[{**_item(), "measure": "body-weight", "value": 170,
                                                               "unit": "[lb_av]"}],
                               source=Source.DEVICE, device=scale)

    assert result.status == 201
    reading = Reading.objects.get()
    assert (reading.value, reading.unit, reading.original) == (
        Decimal("77.111"), "kg", {"value": "170", "unit": "[lb_av]"})
    assert result.reading.original == reading.original


def test_a_repeat_is_answered_with_the_stored_reading_and_another_body_is_a_conflict():
    cast = make_cast()
    item = _item()
    [first] = readings_ingest(patient=cast.patient_a, items=[item], source=Source.DEVICE, device=cast.device_a)
    [again] = readings_ingest(patient=cast.patient_a, items=[item], source=Source.DEVICE, device=cast.device_a)
    [other] = readings_ingest(patient=cast.patient_a, items=[{**item, "value": 91}], source=Source.DEVICE,
                              device=cast.device_a)

    assert (first.status, again.status, again.id) == (201, 200, first.id)
    assert other.status == 409 and "client_id" in other.errors
    assert Reading.objects.count() == 1 and Reading.objects.get().value == 96
    # the same client_id for another patient is that patient's own reading
    [theirs] = readings_ingest(patient=cast.patient_b, items=[item], source=Source.DEVICE, device=cast.device_b)
    assert theirs.status == 201 and Reading.objects.count() == 2


def test_a_failing_statement_stores_nothing_not_even_the_pending_batch():
    cast = make_cast()
    gone = Device(pk=987654, kind=DeviceKind.PULSE_OXIMETER, serial="gone", patient=cast.patient_a)  # never saved

    with pytest.raises(IntegrityError):  # the device's foreign key, checked as the statement commits
        readings_ingest(patient=cast.patient_a, items=[_item()], source=Source.DEVICE, device=gone)

    assert _committed_readings() == 0
    assert not Reading.objects.exists() and not PendingEvaluation.objects.exists()
    [result] = readings_ingest(patient=cast.patient_a, items=[_item()], source=Source.DEVICE, device=cast.device_a)
    assert result.status == 201  # the connection is still usable


def test_inside_a_callers_transaction_a_failure_rolls_back_to_its_savepoint(monkeypatch):
    cast = make_cast()
    # The same statement, made to fail at execution (division by zero in the pending batch).
    monkeypatch.setattr(ingest, "_INSERT_ONE_SQL", ingest._INSERT_ONE_SQL.replace(
        "jsonb_build_array(id), 1,", "jsonb_build_array(id), 1 / (id - id),"))

    with transaction.atomic():
        readings_ingest(patient=cast.patient_a, items=[{**_item(), "client_id": None}], source=Source.DEVICE,
                        device=cast.device_a)  # no client_id: the general path, stored
        with pytest.raises(DatabaseError):
            readings_ingest(patient=cast.patient_a, items=[_item()], source=Source.DEVICE, device=cast.device_a)
        assert Reading.objects.count() == 1  # the caller's transaction goes on
        Reading.objects.update(value=97)

    assert list(Reading.objects.values_list("client_id", "value")) == [(None, 97)]
    assert not PendingEvaluation.objects.exists()
