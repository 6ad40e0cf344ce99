"""Two requests with the same readings at the same moment (a gateway app retrying while its
first upload is still being stored): each reading is stored once, both answers name it."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from alerts.evaluation import PendingEvaluation
from monitoring.ingest import ItemResult, readings_ingest
from monitoring.models import Reading, Source
from tests.factories import make_cast

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks and waiting inserts: PostgreSQL"),
    pytest.mark.django_db(transaction=True),
]


def _items(shape: str) -> list[dict[str, object]]:
    start = timezone.now() - timedelta(hours=1)
    return [{"measure": "spo2", "value": 95 + i % 3, "unit": "%",
             "effective_at": (start + timedelta(minutes=i)).isoformat(),
             **({"client_id": f"g{i}"} if shape != "natural_key" else {})}
            for i in range(1 if shape == "single" else 20)]


def _waiting_backends() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND wait_event_type = 'Lock'")
        return cursor.fetchone()[0]


class _RolledBack(Exception):
    pass


def _race(cast, first_items, second_items, *, first_commits: bool = True):
    """The first request stores its items and holds its transaction open until the second has
    arrived and waits for it; then it commits (or rolls back). Returns both answers."""
    from django.db import transaction

    answers: dict[str, list[ItemResult]] = {}
    first_stored = threading.Event()
    release_first = threading.Event()

    def first() -> None:
        try:
            with transaction.atomic():  # stored, not yet committed, while the second arrives
                answers["first"] = readings_ingest(patient=cast.patient_a, items=first_items, source=Source.API,
                                                   device=cast.device_a)
                first_stored.set()
                assert release_first.wait(10)
                if not first_commits:
                    raise _RolledBack
        except _RolledBack:
            pass
        finally:
            connections.close_all()

    def second() -> None:
        try:
            answers["second"] = readings_ingest(patient=cast.patient_a, items=second_items, source=Source.API,
                                                device=cast.device_a)
        finally:
            connections.close_all()

    a = threading.Thread(target=first)
    a.start()
    assert first_stored.wait(10)
    b = threading.Thread(target=second)
    b.start()
    deadline = time.monotonic() + 10
    while _waiting_backends() == 0:  # the second waits for the first (its lock, or the unique index)
        assert time.monotonic() < deadline, "the second request did not wait for the first"
        time.sleep(0.01)
    release_first.set()
    a.join(10)
    b.join(10)
    return answers["first"], answers["second"]


# single: one reading with a client_id, stored by the one-statement insert (ON CONFLICT)
@pytest.mark.parametrize("shape", ["client_ids", "natural_key", "single"])
def test_the_same_batch_sent_twice_at_once_is_stored_once_and_both_answers_name_the_same_readings(shape):
    cast = make_cast()
    items = _items(shape)
    first, second = _race(cast, items, items)

    assert Reading.objects.count() == len(items)
    assert [r.status for r in first] == [201] * len(items)
    assert [r.status for r in second] == [200] * len(items)  # repeats: the stored ones
    assert [r.id for r in second] == [r.id for r in first]
    assert not PendingEvaluation.objects.exists()  # the one batch was evaluated; the repeat left none


def test_a_single_reading_racing_one_with_its_client_id_and_another_value_is_a_conflict():
    cast = make_cast()
    [item] = _items("single")
    first, second = _race(cast, [item], [{**item, "value": 90}])

    assert [r.status for r in first] == [201]
    assert [r.status for r in second] == [409]
    assert list(Reading.objects.values_list("value", flat=True)) == [item["value"]]


def test_a_single_reading_waiting_on_a_request_that_rolls_back_is_stored():
    cast = make_cast()
    items = _items("single")
    first, second = _race(cast, items, items, first_commits=False)

    assert [r.status for r in second] == [201]
    assert list(Reading.objects.values_list("id", flat=True)) == [second[0].id]
    assert second[0].id != first[0].id  # the rolled-back one's id is gone
    assert not PendingEvaluation.objects.exists()  # the stored one was evaluated


# One item would take the one-statement insert, which takes no lock (docs/architecture.md).
@pytest.mark.parametrize("items", [2, 3])
def test_a_retry_under_a_new_client_id_while_the_first_is_being_stored_waits_and_finds_it(items):
    cast = make_cast()
    upload = _items("client_ids")[:items]
    retry = [{**item, "client_id": f"retry-{i}"} for i, item in enumerate(upload)]
    _first, second = _race(cast, upload, retry)  # the retry waits for the first (the patient's lock)

    assert [r.status for r in second] == [200] * items
    assert Reading.objects.count() == items
