"""Unit normalisation: a value in any unit we can convert becomes a value in the measure's
canonical UCUM unit.

pint does the arithmetic; the only table here is how UCUM spells a unit versus how pint
does. pint's answer is turned once per (unit, measure) into ``canonical = a * value + b``
(affine, for Fahrenheit) and cached, so a batch of a thousand converted readings costs a
thousand multiplications, not a thousand pint calls.

Mass and substance concentration (glucose in mg/dL vs mmol/L) are different dimensions; the
measure's molar mass (180.16 g/mol for glucose) bridges them, and only for measures that have one.
"""

from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

import pint
from django.utils.translation import gettext as _

from monitoring.measures import Measure

_ureg: pint.UnitRegistry[Any] = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)

# UCUM code as sent -> pint expression. One row per spelling we accept.
UCUM_TO_PINT: dict[str, str] = {
    "kg": "kilogram",
    "g": "gram",
    "[lb_av]": "pound",
    "lb": "pound",  # not UCUM, but what consumer scales send; unambiguous
    "Cel": "degree_Celsius",
    "[degF]": "degree_Fahrenheit",
    "K": "kelvin",
    "mm[Hg]": "millimeter_Hg",
    "kPa": "kilopascal",
    "%": "percent",
    "1": "dimensionless",  # UCUM's unity: SpO2 as a fraction (0.97) becomes 97 %
    "/min": "1 / minute",
    "{beats}/min": "1 / minute",
    "{breaths}/min": "1 / minute",
    "/s": "1 / second",
    "mmol/L": "millimole / liter",
    "mg/dL": "milligram / deciliter",
    "g/L": "gram / liter",
    "L/min": "liter / minute",
    "L/s": "liter / second",
}

# UCUM annotations are only words, but a count of beats is no count of breaths: each of these
# spellings is taken for its own measure only.
ANNOTATED_FOR: dict[str, str] = {"{beats}/min": "heart-rate", "{breaths}/min": "respiratory-rate"}

# Three decimals: what Reading.value stores.
_PLACES = Decimal("0.001")


class UnitError(ValueError):
    """The unit is unknown, or cannot be converted to the measure's unit."""


@dataclass(frozen=True)
class Conversion:
    factor: Decimal
    offset: Decimal

    def apply(self, value: Decimal) -> Decimal:
        return (value * self.factor + self.offset).quantize(_PLACES)


def _refused(unit: str, measure: Measure) -> UnitError:
    """The error for a unit ``measure`` cannot be given in: it names the units it can."""
    shown = unit if len(unit) <= 40 else unit[:40] + "…"  # a 100 KB "unit" is not echoed back whole
    return UnitError(_('%(measure)s cannot be given in "%(unit)s"; use %(units)s.') % {
        "measure": measure.label, "unit": shown, "units": ", ".join(accepted_units(measure))})


def _pint_convert(value: float, unit: str, measure: Measure) -> float:
    source = _ureg.Quantity(value, _ureg.Unit(UCUM_TO_PINT[unit]))
    target = _ureg.Unit(UCUM_TO_PINT[measure.unit])
    if source.dimensionality != target.dimensionality and measure.molar_mass is not None:
        molar_mass = _ureg.Quantity(float(measure.molar_mass), "gram / mole")
        source = source / molar_mass if source.check("[mass] / [length] ** 3") else source * molar_mass
    return float(source.to(target).magnitude)


@cache
def accepted_units(measure: Measure) -> list[str]:
    """The UCUM codes a value of ``measure`` may be sent in: its own unit first, then every
    spelling in the table that pint can convert to it."""
    others = []
    for unit in sorted(UCUM_TO_PINT):
        if ANNOTATED_FOR.get(unit, measure.code) != measure.code:
            continue
        try:
            _pint_convert(1.0, unit, measure)
        except pint.DimensionalityError:
            continue
        if unit != measure.unit:
            others.append(unit)
    return [measure.unit, *others]


def pint_convert(value: float, unit: str, measure: Measure) -> float:
    """``value`` in ``unit`` expressed in the canonical unit of ``measure``, straight from pint.
    A unit that is not in the table, or not one of this measure's, is a UnitError."""
    if unit not in UCUM_TO_PINT or ANNOTATED_FOR.get(unit, measure.code) != measure.code:
        raise _refused(unit, measure)
    try:
        return _pint_convert(value, unit, measure)
    except pint.DimensionalityError:
        raise _refused(unit, measure) from None


@cache
def conversion(unit: str, measure: Measure) -> Conversion:
    """The affine map from ``unit`` to the measure's unit (raises UnitError)."""
    at_zero = pint_convert(0.0, unit, measure)
    at_one = pint_convert(1.0, unit, measure)
    # 12 significant digits: pint's float arithmetic is exact far beyond what we store.
    return Conversion(Decimal(f"{at_one - at_zero:.12g}"), Decimal(f"{at_zero:.12g}"))


def to_canonical(value: Decimal, unit: str, measure: Measure) -> Decimal:
    """``value`` (in ``unit``) in the measure's canonical unit, rounded to three decimals."""
    if unit == measure.unit:
        return value
    return conversion(unit, measure).apply(value)


def from_canonical(value: Decimal, unit: str, measure: Measure) -> Decimal:
    """The inverse of ``to_canonical`` (for showing a value in the unit it was sent in)."""
    if unit == measure.unit:
        return value
    c = conversion(unit, measure)
    return ((value - c.offset) / c.factor).quantize(_PLACES)
