"""Unit normalisation: pint converts, one table spells UCUM; property-based checks."""

import re
from decimal import Decimal

import pytest
from django.utils import translation
from hypothesis import given
from hypothesis import strategies as st

from monitoring.measures import MEASURES
from monitoring.units import UnitError, from_canonical, pint_convert, to_canonical

WEIGHT, TEMP, GLUCOSE, BP, SPO2 = (MEASURES[c] for c in
                                   ("body-weight", "body-temperature", "glucose", "blood-pressure", "spo2"))

values = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("1000"), places=3)


@pytest.mark.parametrize(("value", "unit", "measure", "expected"), [
    ("200", "[lb_av]", WEIGHT, "90.718"),
    ("98.6", "[degF]", TEMP, "37.000"),
    ("212", "[degF]", TEMP, "100.000"),
    ("90", "mg/dL", GLUCOSE, "4.996"),
    ("16", "kPa", BP, "120.010"),
    ("95", "%", SPO2, "95"),
])
def test_known_conversions_give_the_textbook_value(value, unit, measure, expected):
    assert to_canonical(Decimal(value), unit, measure) == Decimal(expected)


@pytest.mark.parametrize(("unit", "measure", "accepted"), [
    ("mmHg", SPO2, "%, 1"), ("stone", WEIGHT, "kg, [lb_av], g, lb"), ("", TEMP, "Cel, K, [degF]"),
    ("m", WEIGHT, "kg, [lb_av], g, lb"),
])
def test_an_unknown_unit_is_an_error_naming_the_units_of_that_measure(unit, measure, accepted):
    with translation.override("en"):
        with pytest.raises(UnitError) as caught:
            to_canonical(Decimal(1), unit, measure)
        assert str(caught.value) == f'{measure.label} cannot be given in "{unit}"; use {accepted}.'


@pytest.mark.parametrize(("unit", "measure"), [("kg", SPO2), ("mm[Hg]", WEIGHT), ("mg/dL", BP), ("1", BP),
                                               ("%", GLUCOSE), ("/min", TEMP)])
def test_an_incompatible_unit_is_an_error_naming_the_units_of_that_measure(unit, measure):
    with translation.override("en"), pytest.raises(UnitError, match=re.escape(f"use {measure.unit}")) as caught:
        to_canonical(Decimal(1), unit, measure)
    assert f'cannot be given in "{unit}"' in str(caught.value)


def test_the_unit_error_speaks_the_callers_language():
    with translation.override("da"), pytest.raises(UnitError, match='Vægt kan ikke angives i "stone"; brug kg'):
        to_canonical(Decimal(1), "stone", WEIGHT)


def test_spo2_as_a_fraction_of_one_becomes_percent():
    assert to_canonical(Decimal("0.97"), "1", SPO2) == Decimal("97.000")


@pytest.mark.parametrize(("unit", "measure"), [("[lb_av]", WEIGHT), ("[degF]", TEMP), ("mg/dL", GLUCOSE),
                                               ("kPa", BP), ("g", WEIGHT)])
@given(value=values)
def test_converting_there_and_back_returns_the_value_within_rounding(unit, measure, value):
    canonical = to_canonical(value, unit, measure)
    back = from_canonical(canonical, unit, measure)
    # One rounding to 3 decimals in the canonical unit, magnified by 1/factor on the way back.
    factor = abs(to_canonical(Decimal(1), unit, measure) - to_canonical(Decimal(0), unit, measure))
    assert abs(back - value) <= Decimal("0.0005") / factor + Decimal("0.001")


@pytest.mark.parametrize(("unit", "measure"), [("[lb_av]", WEIGHT), ("[degF]", TEMP), ("mg/dL", GLUCOSE),
                                               ("kPa", BP)])
@given(a=values, b=values)
def test_conversion_keeps_the_order_of_values(unit, measure, a, b):
    low, high = sorted((a, b))
    assert to_canonical(low, unit, measure) <= to_canonical(high, unit, measure)


@pytest.mark.parametrize(("unit", "measure"), [("[lb_av]", WEIGHT), ("[degF]", TEMP), ("mg/dL", GLUCOSE),
                                               ("kPa", BP)])
@given(value=values)
def test_cached_affine_conversion_agrees_with_pint(unit, measure, value):
    assert abs(float(to_canonical(value, unit, measure)) - pint_convert(float(value), unit, measure)) <= 0.0006
