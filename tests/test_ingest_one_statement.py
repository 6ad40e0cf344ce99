"""One reading with a client_id (a device's single upload) is stored with its pending batch by one
statement (monitoring.ingest._insert_one): committed on its own outside a transaction, all or
nothing, in a savepoint inside a caller's transaction, and stored exactly as the general path
(_store: dedupe, reserved ids, COPY) stores it."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import DatabaseError, IntegrityError, connection, connections, transaction
from django.utils import timezone

from alerts.evaluation import PendingEvaluation
from monitoring.ingest import readings_ingest
from monitoring.ingest import storage as ingest
from monitoring.models import Device, DeviceKind, Reading, Source
from tests.factories import make_cast

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement insert: PostgreSQL"),
    pytest.mark.django_db(transaction=True),
]


def _item(value: int = 96, client_id: str = "one-1") -> dict[str, object]:
    return {"measure": "spo2", "value": value, "unit": "%", "client_id": client_id,
            "effective_at": (timezone.now() - timedelta(minutes=5)).isoformat()}


@pytest.fixture
def general_path_refused(monkeypatch):
    """Any use of the general path fails the test: what passes was done by the one statement."""
    def refuse(**kwargs: object) -> None:
        raise AssertionError("the general path ran")

    monkeypatch.setattr(ingest, "_store", refuse)


def _committed_readings() -> int:
    """Readings another connection sees: committed ones only."""
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM monitoring_reading")
            return cursor.fetchone()[0]
    finally:
        other.close()


def test_one_reading_is_committed_by_its_own_statement_and_evaluated(general_path_refused):
    cast = make_cast()
    [result] = readings_ingest(patient=cast.patient_a, items=[_item()], source=Source.DEVICE, device=cast.device_a)

    assert result.status == 201
    assert _committed_readings() == 1
    reading = Reading.objects.get()
    assert (reading.pk, reading.client_id, reading.device_id, reading.value, reading.unit, reading.source) == (
        result.id, "one-1", cast.device_a.pk, 96, "%", Source.DEVICE)
    assert result.reading == reading and result.reading.received_at == reading.received_at
    assert not PendingEvaluation.objects.exists()  # its batch was evaluated at the commit


def test_a_converted_unit_keeps_the_original_value_and_unit(general_path_refused):
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


def test_a_repeat_is_answered_by_the_general_path_with_the_stored_reading_and_another_body_is_a_conflict(
        monkeypatch):
    cast = make_cast()
    one_statement: list[int | None] = []
    general: list[int] = []
    insert_one, store = ingest._insert_one, ingest._store

    def spy_insert_one(*args, **kwargs):
        one_statement.append(batch := insert_one(*args, **kwargs))
        return batch

    def spy_store(**kwargs):
        general.append(len(kwargs["candidates"]))
        return store(**kwargs)

    monkeypatch.setattr(ingest, "_insert_one", spy_insert_one)
    monkeypatch.setattr(ingest, "_store", spy_store)
    item = _item()
    [first] = readings_ingest(patient=cast.patient_a, items=[item], source=Source.DEVICE, device=cast.device_a)
    [again] = readings_ingest(patient=cast.patient_a, items=[item], source=Source.DEVICE, device=cast.device_a)
    [other] = readings_ingest(patient=cast.patient_a, items=[{**item, "value": 91}], source=Source.DEVICE,
                              device=cast.device_a)

    assert (first.status, again.status, again.id) == (201, 200, first.id)
    assert other.status == 409 and "client_id" in other.errors
    assert [batch is not None for batch in one_statement] == [True, False, False]  # stored once, then nothing
    assert general == [1, 1]  # the repeat and the conflict were answered by the general path
    assert Reading.objects.count() == 1 and Reading.objects.get().value == 96
    # the same client_id for another patient is that patient's own reading
    [theirs] = readings_ingest(patient=cast.patient_b, items=[item], source=Source.DEVICE, device=cast.device_b)
    assert theirs.status == 201 and Reading.objects.count() == 2


_STORED = [c for c in ingest._COPY_COLUMNS if c not in ("id", "client_id", "received_at")]


@pytest.mark.parametrize("shape", ["device-spo2", "device-blood-pressure", "patient-weight-in-lb"])
def test_the_one_statement_stores_what_the_general_path_stores(monkeypatch, shape):
    cast = make_cast()
    effective_at = "2026-11-30T08:15:00+01:00"  # not UTC
    if shape == "device-spo2":
        item, device, source, entered_by = ({"measure": "spo2", "value": 88, "unit": "%"}, cast.device_a,
                                            Source.DEVICE, None)
    elif shape == "device-blood-pressure":
        device = Device.objects.create(kind=DeviceKind.BLOOD_PRESSURE, serial="BP-1", patient=cast.patient_a,
                                       lent_from=date(2026, 1, 1))
        item, source, entered_by = ({"measure": "blood-pressure", "systolic": 150, "diastolic": 95,
                                     "unit": "mm[Hg]"}, Source.DEVICE, None)
    else:
        item, device, source, entered_by = ({"measure": "body-weight", "value": 170, "unit": "[lb_av]"}, None,
                                            Source.API, cast.patient_a.user)

    def ingest_one(client_id: str, effective_at: str) -> int:
        [result] = readings_ingest(patient=cast.patient_a, items=[{**item, "effective_at": effective_at,
                                                                   "client_id": client_id}],
                                   source=source, device=device, entered_by=entered_by)
        assert result.status == 201 and result.id is not None, result.errors
        return result.id

    fast = ingest_one("fast", effective_at)
    monkeypatch.setattr(ingest, "_insert_one", lambda *args, **kwargs: None)  # as if stored already: general path
    # A minute later: the same values at the same time would be the same reading, answered 200.
    general = ingest_one("general", "2026-11-30T08:16:00+01:00")

    rows = {r["id"]: r for r in Reading.objects.filter(pk__in=[fast, general]).values("id", *_STORED)}
    assert rows[general]["effective_at"] - rows[fast]["effective_at"] == timedelta(minutes=1)
    assert ({k: v for k, v in rows[fast].items() if k not in ("id", "effective_at")}
            == {k: v for k, v in rows[general].items() if k not in ("id", "effective_at")})
    assert rows[fast]["device_id"] == (device.pk if device else None)
    assert rows[fast]["entered_by_id"] == (entered_by.pk if entered_by else None)


def test_a_failing_statement_stores_nothing_not_even_the_pending_batch(general_path_refused):
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
    statement = ingest._insert_one_sql
    monkeypatch.setattr(ingest, "_insert_one_sql", lambda still_lent: statement(still_lent).replace(
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
