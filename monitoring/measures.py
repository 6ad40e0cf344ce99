"""The measures the platform knows: a registry keyed by short name.

Each has its LOINC code (FHIR vital-signs profile), its canonical UCUM unit and the range of
physiologically possible values. Values outside that range are device or typing errors and are
rejected; alert thresholds are rules (alerts app), not this.
Blood pressure (a two-component panel) and unit conversion arrive with the monitoring issue.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Measure:
    code: str
    loinc: str
    display: str
    label: str  # shown to people; translatable
    unit: str  # canonical UCUM unit
    unit_label: str  # how the unit is shown to people
    minimum: Decimal  # lowest possible value (inclusive)
    maximum: Decimal  # highest possible value (inclusive)
    step: Decimal


MEASURES: dict[str, Measure] = {
    m.code: m
    for m in [
        Measure("body-weight", "29463-7", "Body weight", _("Weight"), "kg", "kg",
                Decimal("0.5"), Decimal("400"), Decimal("0.1")),
        Measure("spo2", "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry",
                _("Oxygen saturation (SpO2)"), "%", "%", Decimal("50"), Decimal("100"), Decimal("1")),
        Measure("heart-rate", "8867-4", "Heart rate", _("Pulse"), "/min", _("beats per minute"),
                Decimal("20"), Decimal("300"), Decimal("1")),
        Measure("body-temperature", "8310-5", "Body temperature", _("Temperature"), "Cel", "°C",
                Decimal("25"), Decimal("45"), Decimal("0.1")),
        Measure("respiratory-rate", "9279-1", "Respiratory rate", _("Breathing rate"), "/min",
                _("breaths per minute"), Decimal("2"), Decimal("80"), Decimal("1")),
    ]
}
BY_LOINC: dict[str, Measure] = {m.loinc: m for m in MEASURES.values()}


def measure_lookup(code: str) -> Measure | None:
    """Find a measure by short name or LOINC code."""
    return MEASURES.get(code) or BY_LOINC.get(code)
