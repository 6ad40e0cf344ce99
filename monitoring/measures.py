"""The measures the platform knows: a registry keyed by short name.

Each has its LOINC code (FHIR vital-signs profile), its canonical UCUM unit, the range of
physiologically possible values and, inside it, the usual range. Values outside the possible
range are device or typing errors and are rejected; values outside the usual range are stored
and flagged ``unusual`` for a second look. Alert thresholds are rules (alerts app), not this.

Blood pressure is one measure with two components: systolic in ``Reading.value`` and
diastolic in ``Reading.value2`` (LOINC panel 85354-9 with components 8480-6 / 8462-4).

Glucose is stored as a substance concentration in mmol/L, the unit Danish glucometers and
Danish clinical practice use; its primary LOINC code is therefore 15074-8 "Glucose
[Moles/volume] in Blood". 2339-0 "Glucose [Mass/volume] in Blood" names the same quantity
measured as a *mass* concentration (mg/dL): it is accepted as a synonym and the value converted
(molar mass 180.16 g/mol), but it would be wrong to label a stored mmol/L value with it.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_stubs_ext import StrOrPromise


@dataclass(frozen=True)
class Component:
    """The second value of a two-part measure (diastolic of blood pressure)."""

    loinc: str
    display: str
    label: StrOrPromise
    minimum: Decimal
    maximum: Decimal
    usual_low: Decimal
    usual_high: Decimal


@dataclass(frozen=True)
class Measure:
    code: str
    loinc: str
    display: str
    label: StrOrPromise  # shown to people; translatable
    unit: str  # canonical UCUM unit
    unit_label: StrOrPromise  # how the unit is shown to people
    minimum: Decimal  # lowest possible value (inclusive)
    maximum: Decimal  # highest possible value (inclusive)
    step: Decimal
    # The usual range (inclusive); outside it but possible, a reading is flagged unusual.
    usual_low: Decimal = Decimal("-Infinity")
    usual_high: Decimal = Decimal("Infinity")
    # For a panel (blood pressure): the LOINC code of the first component (value).
    value_loinc: str | None = None
    second: Component | None = None
    # g/mol, for measures given either as mass or as substance concentration (glucose).
    molar_mass: Decimal | None = None

    def is_unusual(self, value: Decimal, value2: Decimal | None = None) -> bool:
        if not (self.usual_low <= value <= self.usual_high):
            return True
        s = self.second
        return s is not None and value2 is not None and not (s.usual_low <= value2 <= s.usual_high)


# Ranges: "possible" is wide on purpose (a value a living patient can have at home); "usual"
# marks what a nurse should glance at even when no rule of the patient's programme fires.
MEASURES: dict[str, Measure] = {
    m.code: m
    for m in [
        Measure("body-weight", "29463-7", "Body weight", _("Weight"), "kg", "kg",
                Decimal("0.5"), Decimal("400"), Decimal("0.1"),
                usual_low=Decimal("35"), usual_high=Decimal("200")),
        Measure("spo2", "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry",
                _("Oxygen saturation (SpO2)"), "%", "%", Decimal("50"), Decimal("100"), Decimal("1"),
                usual_low=Decimal("85")),
        Measure("heart-rate", "8867-4", "Heart rate", _("Pulse"), "/min", _("beats per minute"),
                Decimal("20"), Decimal("300"), Decimal("1"),
                usual_low=Decimal("40"), usual_high=Decimal("180")),
        Measure("body-temperature", "8310-5", "Body temperature", _("Temperature"), "Cel", "°C",
                Decimal("25"), Decimal("45"), Decimal("0.1"),
                usual_low=Decimal("35"), usual_high=Decimal("40")),
        Measure("respiratory-rate", "9279-1", "Respiratory rate", _("Breathing rate"), "/min",
                _("breaths per minute"), Decimal("2"), Decimal("80"), Decimal("1"),
                usual_low=Decimal("8"), usual_high=Decimal("35")),
        Measure("blood-pressure", "85354-9", "Blood pressure panel with all children optional",
                _("Blood pressure"), "mm[Hg]", "mmHg", Decimal("40"), Decimal("300"), Decimal("1"),
                usual_low=Decimal("80"), usual_high=Decimal("200"),
                value_loinc="8480-6",
                second=Component("8462-4", "Diastolic blood pressure", _("Diastolic"),
                                 Decimal("20"), Decimal("200"), Decimal("40"), Decimal("120"))),
        # What a peak-flow meter (the registry's device kind) reads: the best of three blows, in
        # whole litres per minute; for asthma and COPD home monitoring.
        Measure("peak-flow", "19935-6", "Maximum expiratory gas flow Respiratory system airway by Peak flow meter",
                _("Peak flow"), "L/min", _("litres per minute"), Decimal("30"), Decimal("1000"), Decimal("1"),
                usual_low=Decimal("100"), usual_high=Decimal("800")),
        Measure("glucose", "15074-8", "Glucose [Moles/volume] in Blood", _("Blood sugar"),
                "mmol/L", "mmol/L", Decimal("0.5"), Decimal("60"), Decimal("0.1"),
                usual_low=Decimal("3"), usual_high=Decimal("25"), molar_mass=Decimal("180.16")),
    ]
}
BY_LOINC: dict[str, Measure] = {m.loinc: m for m in MEASURES.values()}

# Other LOINC codes real senders use for the same quantity (Synthea, older vital-signs profiles).
LOINC_SYNONYMS: dict[str, str] = {
    "2708-6": "spo2",  # Oxygen saturation in Arterial blood (FHIR vital-signs profile)
    "3141-9": "body-weight",  # Body weight Measured
    "8331-1": "body-temperature",  # Oral temperature
    "55284-4": "blood-pressure",  # Blood pressure systolic and diastolic (older panel)
    "2339-0": "glucose",  # Glucose [Mass/volume] in Blood (mg/dL; converted)
    "14743-9": "glucose",  # Glucose [Moles/volume] in Capillary blood by Glucometer
    "41653-7": "glucose",  # Glucose [Mass/volume] in Capillary blood by Glucometer
}

# Danish NPU (and MedCom/DNK local) codes sent by home-monitoring equipment, mapped to our
# measures. Sources: [DK] HL7 Denmark's DK Core NPU value set (https://hl7.dk/fhir/core/);
# [OT] the OpenTele/KIH home-monitoring server's IupacCode table (Region Midtjylland);
# [EH] the Danish national eHealth infrastructure's telemedicine code list
# (https://docs.ehealth.sundhed.dk/). Codes we could not confirm are left out, e.g. for
# respiratory rate, which is refused as NPU until a source is found.
NPU_CODES: dict[str, str] = {
    "NPU03011": "spo2",  # [DK][OT][EH] Hb(Fe; O2-bind.; aB)—Oxygen(O2); sat. = ?
    "NPU27280": "spo2",  # [DK] Hb(Fe; O2-bind.; aB)—Oxygen(O2); sat.(Pulse oximetry) = ?
    "NPU03804": "body-weight",  # [DK][OT][EH] Pt—Body; mass = ? kg
    "NPU21692": "heart-rate",  # [DK][OT][EH] Heart—Systole; freq. = ? × 1/min
    "NPU08676": "body-temperature",  # [DK][OT] Pt—Body; temp. = ? °C
    "NPU22089": "glucose",  # [OT][EH] P(kB)—Glucose; subst.c. = ? mmol/L
    "NPU02187": "glucose",  # [OT] B—Glucose; subst.c. = ? mmol/L
}
# Blood-pressure component codes (systolic, diastolic) for mapping FHIR Observation components:
# LOINC, DNK05472/DNK05473 (clinic) and MCS88019/MCS88020 (home), as OpenTele/KIH send them.
SYSTOLIC_CODES = frozenset({"8480-6", "DNK05472", "MCS88019"})
DIASTOLIC_CODES = frozenset({"8462-4", "DNK05473", "MCS88020"})


@dataclass(frozen=True)
class Coding:
    """How a sender named a measure: the measure and, when not our own name, what it sent."""

    measure: Measure
    system: str | None  # None: our short name or primary LOINC code; "LOINC" or "NPU" otherwise
    code: str


def _all_codings() -> dict[str, Coding]:
    table: dict[str, Coding] = {}
    for m in MEASURES.values():
        table[m.code] = Coding(m, None, m.code)
        table[m.loinc] = Coding(m, None, m.loinc)
    for code, name in LOINC_SYNONYMS.items():
        table[code] = Coding(MEASURES[name], "LOINC", code)
    for code, name in NPU_CODES.items():
        table[code] = Coding(MEASURES[name], "NPU", code)
    return table


CODINGS: dict[str, Coding] = _all_codings()


def coding_lookup(code: str) -> Coding | None:
    """Find how ``code`` (short name, LOINC or NPU code; NPU case-insensitively) names a measure."""
    found = CODINGS.get(code)
    if found is None and code[:3].lower() == "npu":
        found = CODINGS.get(code.upper())
    return found


def measure_lookup(code: str) -> Measure | None:
    """Find a measure by short name, LOINC code or NPU code."""
    coding = coding_lookup(code)
    return coding.measure if coding else None


def component_labels(measure: Measure) -> tuple[str, str] | None:
    """The names of the two parts of a two-part measure, or None for a one-value measure."""
    second = getattr(measure, "second", None)
    if second is None:
        return None
    first = gettext("Systolic") if measure.code == "blood-pressure" else str(measure.label)
    return first, str(second.label)
