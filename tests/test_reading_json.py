"""monitoring.api.reading_json writes a reading as the endpoint's serializer and DRF's renderer
do, byte for byte (the device fast path's 201, ADR 0016)."""

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Literal

import pytest
from django.utils import timezone as django_timezone
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.renderers import JSONRenderer

from monitoring.api import ReadingOut, reading_json
from monitoring.models import Reading, Source
from monitoring.rows import READING_ROW_COLUMNS, ReadingRow


def drf(reading: Reading) -> bytes:
    return JSONRenderer().render(ReadingOut(reading).data)


def _reading(**changes: object) -> Reading:
    fields = {
        "pk": 17, "patient_id": uuid.UUID("0f2fad35-cd9e-4ecf-bcb0-63923d11dd93"), "device_id": 4,
        "measure": "spo2", "value": Decimal("95"), "value2": None, "unit": "%",
        "effective_at": datetime(2026, 12, 3, 13, 38, 12, 728103, tzinfo=UTC),
        "received_at": datetime(2026, 12, 3, 14, 38, 12, 859677, tzinfo=UTC),
        "client_id": "c-1", "source": Source.DEVICE, "unusual": False,
    }
    return Reading(**{**fields, **changes})


@pytest.mark.parametrize("changes", [
    {},
    {"measure": "blood-pressure", "value": Decimal("142.5"), "value2": Decimal("88"), "unit": "mm[Hg]"},
    {"measure": "body-weight", "value": Decimal("74.84274105"), "unit": "kg"},  # from lb, more places than kept
    {"value": Decimal("0.0005"), "value2": Decimal("-0.0015")},  # rounding halves
    {"effective_at": datetime(2026, 7, 1, 23, 59, 59, tzinfo=timezone(timedelta(hours=-5)))},  # summer, an offset
    {"received_at": datetime(2026, 12, 3, 14, 0, tzinfo=UTC)},  # no microseconds
    {"client_id": None, "device_id": None, "source": Source.WEB, "unusual": True},
    {"client_id": "line\u2028para\u2029 tab\t nl\n ctl\x01 del\x7f quote\" back\\ slash/ æøå 🫀"},
])
def test_reading_json_is_the_serializer_and_renderer_byte_for_byte(changes):
    reading = _reading(**changes)
    assert reading_json(reading) == drf(reading)


def test_it_has_the_serializers_fields_in_their_order():
    import orjson

    assert list(orjson.loads(reading_json(_reading()))) == ReadingOut.Meta.fields


# Lone surrogates (category Cs) cannot be encoded as UTF-8: no client can send them.
_SURROGATES: tuple[Literal["Cs"]] = ("Cs",)


@settings(max_examples=200, deadline=None)
@given(value=st.decimals(min_value=-999999, max_value=999999, places=6, allow_nan=False),
       client_id=st.text(alphabet=st.characters(exclude_categories=_SURROGATES), min_size=1, max_size=100),
       minutes=st.integers(min_value=-10**6, max_value=10**6))
def test_for_any_value_client_id_and_time(value, client_id, minutes):
    reading = _reading(value=value, client_id=client_id,
                       effective_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes, microseconds=minutes))
    assert reading_json(reading) == drf(reading)


def _stored(reading: Reading) -> ReadingRow:
    return ReadingRow(**{name: getattr(reading, name) for name in READING_ROW_COLUMNS})


@pytest.mark.parametrize("zone", ["Europe/Copenhagen", "UTC", "America/St_Johns", "Pacific/Kiritimati"])
def test_in_any_current_time_zone_and_from_the_stored_fields_without_the_model(zone):
    reading = _reading(effective_at=datetime(2026, 3, 29, 0, 59, 59, 999999, tzinfo=UTC))  # the hour DST starts
    with django_timezone.override(zone):
        assert reading_json(reading) == drf(reading)
        assert reading_json(_stored(reading)) == drf(reading)


def test_times_the_serializer_writes_otherwise_are_left_to_it(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DATETIME_FORMAT": "%d.%m.%Y %H:%M"}
    reading = _reading()

    assert reading_json(reading) == drf(reading)
    assert b'"effective_at":"03.12.2026 14:38"' in reading_json(reading)  # Copenhagen time, the format
