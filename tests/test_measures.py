"""The measures registry: LOINC and NPU lookup, plausibility, unusual ranges, and the item parser."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitoring.ingest import reading_parse
from monitoring.measures import MEASURES, NPU_CODES, coding_lookup, measure_lookup
from monitoring.rows import ReadingRow as Parsed

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def parse(**item):
    body = {"measure": "spo2", "value": 95, "unit": "%", "effective_at": "2026-11-22T07:00:00+01:00"}
    body.update(item)
    return reading_parse({k: v for k, v in body.items() if v is not ...}, index=0, latest=NOW)


@pytest.mark.parametrize(("code", "measure"), [
    ("spo2", "spo2"), ("59408-5", "spo2"), ("2708-6", "spo2"), ("NPU03011", "spo2"), ("npu03011", "spo2"),
    ("NPU03804", "body-weight"), ("NPU21692", "heart-rate"), ("NPU08676", "body-temperature"),
    ("NPU22089", "glucose"), ("15074-8", "glucose"), ("2339-0", "glucose"),
    ("85354-9", "blood-pressure"), ("blood-pressure", "blood-pressure"),
])
def test_measure_is_found_by_short_name_loinc_or_npu_code(code, measure):
    assert measure_lookup(code).code == measure


def test_unknown_codes_find_no_measure():
    assert measure_lookup("NPU99999") is None
    assert measure_lookup("1234-5") is None


def test_every_npu_code_maps_to_a_known_measure():
    assert set(NPU_CODES.values()) <= set(MEASURES)


def test_npu_code_keeps_the_original_coding():
    p = parse(measure="NPU03011")
    assert isinstance(p, Parsed)
    assert p.measure == "spo2"
    assert p.original == {"system": "NPU", "code": "NPU03011"}


def test_converted_value_keeps_the_original_value_and_unit():
    p = parse(measure="body-weight", value=200, unit="[lb_av]")
    assert p.value == Decimal("90.718") and p.unit == "kg"
    assert p.original == {"unit": "[lb_av]", "value": "200"}


def test_reading_in_canonical_unit_by_short_name_has_no_original():
    assert parse().original is None


def test_blood_pressure_takes_systolic_and_diastolic():
    p = parse(measure="blood-pressure", value=..., systolic=135, diastolic=85, unit="mm[Hg]")
    assert (p.value, p.value2, p.unusual) == (Decimal("135.000"), Decimal("85.000"), False)


@pytest.mark.parametrize(("systolic", "diastolic"), [(80, 80), (70, 90)])
def test_blood_pressure_with_systolic_not_above_diastolic_is_refused(systolic, diastolic):
    errors = parse(measure="blood-pressure", value=..., systolic=systolic, diastolic=diastolic, unit="mm[Hg]")
    assert "systolic" in errors


def test_blood_pressure_given_as_value_is_refused_naming_both_fields():
    errors = parse(measure="blood-pressure", value=120, unit="mm[Hg]")
    assert set(errors) == {"value", "systolic", "diastolic"}


def test_systolic_on_a_one_value_measure_is_refused():
    assert "systolic" in parse(systolic=120)


def test_blood_pressure_in_kpa_is_converted_both_components():
    p = parse(measure="blood-pressure", value=..., systolic=16, diastolic=10.7, unit="kPa")
    assert p.value == Decimal("120.010") and p.value2 == Decimal("80.257")


@pytest.mark.parametrize(("item", "unusual"), [
    ({"value": 80}, True), ({"value": 90}, False),
    ({"measure": "heart-rate", "value": 190, "unit": "/min"}, True),
    ({"measure": "blood-pressure", "value": ..., "systolic": 150, "diastolic": 130, "unit": "mm[Hg]"}, True),
    ({"measure": "glucose", "value": 2.5, "unit": "mmol/L"}, True),
    ({"measure": "glucose", "value": 100, "unit": "mg/dL"}, False),
])
def test_possible_but_unusual_values_are_accepted_and_flagged(item, unusual):
    p = parse(**item)
    assert isinstance(p, Parsed), p
    assert p.unusual is unusual


@pytest.mark.parametrize(("item", "field"), [
    ({"value": 101}, "value"), ({"measure": "body-weight", "value": 0, "unit": "kg"}, "value"),
    ({"measure": "body-weight", "value": -3, "unit": "kg"}, "value"),
    ({"measure": "glucose", "value": 2000, "unit": "mg/dL"}, "value"),
    ({"unit": ...}, "unit"), ({"unit": "kg"}, "unit"), ({"value": True}, "value"),
    ({"value": "NaN"}, "value"), ({"value": 1e300}, "value"),
    ({"effective_at": "2026-11-22T07:00:00"}, "effective_at"),
    ({"effective_at": (NOW + timedelta(hours=1)).isoformat()}, "effective_at"),
    ({"client_id": ""}, "client_id"), ({"patient": "not-a-uuid"}, "patient"), ({"device": "x"}, "device"),
])
def test_bad_item_is_refused_naming_the_field(item, field):
    errors = parse(**item)
    assert isinstance(errors, dict) and errors[field][0], errors


def test_an_item_that_is_not_an_object_is_refused():
    assert "non_field_errors" in reading_parse([1, 2], index=0, latest=NOW)


@given(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(), st.lists(st.integers()),
                 st.dictionaries(st.text(), st.integers())))
def test_parser_never_crashes_on_any_json_value_in_any_field(junk):
    for name in ("measure", "value", "unit", "effective_at", "client_id", "patient", "device"):
        result = parse(**{name: junk})
        assert isinstance(result, Parsed | dict)


@given(st.decimals(min_value=Decimal("50"), max_value=Decimal("100"), places=3))
def test_every_value_in_the_possible_range_is_accepted(value):
    p = parse(value=value)
    assert isinstance(p, Parsed) and p.value == value


def test_coding_lookup_tells_our_own_codes_from_synonyms():
    assert coding_lookup("59408-5").system is None
    assert coding_lookup("2339-0").system == "LOINC"
