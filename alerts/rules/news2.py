"""NEWS2 early-warning score from the vital signs a patient measures at home — a subset.

NEWS2 (Royal College of Physicians, *National Early Warning Score (NEWS) 2*, 2017) scores seven
parameters. At home we have five: respiratory rate, SpO2 (scale 1; scale 2 is for confirmed
hypercapnic respiratory failure and needs a clinician's decision), systolic blood pressure,
pulse and temperature. "Air or oxygen?" and consciousness (ACVPU) are not measured at home, so
the total can only be lower than a full NEWS2: every reason and every evidence says so
("NEWS2 (home subset: 5 of 7 parameters)").

On each new reading of one of the five, the latest non-erroneous reading of each parameter
measured within ``window_hours`` before it (the new one itself for its own parameter) is scored
with the chart's bands. Clinical response thresholds from the RCP chart: 5–6 is "medium" (urgent
response) → yellow by default, 7 or more "high" (emergency response) → red, and 3 points in any
single parameter is "low-medium" (urgent ward-based response) → yellow by default.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, Literal

import pydantic
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l
from django.utils.translation import ngettext

from alerts.rules.context import patient_of
from alerts.rules.form_spec import (
    Ascending,
    Number,
)
from monitoring.measures import MEASURES

if TYPE_CHECKING:
    from alerts.rules import Finding
    from alerts.rules.context import Context
    from monitoring.models import Reading
    from monitoring.rows import ReadingRow


@dataclass(frozen=True)
class Band:
    measure: str
    # The chart's resolution: values are rounded to it before banding (a temperature of
    # 36.05 °C is read as the chart reads 36.1, not left in the gap between 36.0 and 36.1).
    step: Decimal
    # (highest value of the band, points), lowest band first; None = and above.
    bands: tuple[tuple[Decimal | None, int], ...]

    def points(self, value: Decimal) -> tuple[Decimal, int]:
        shown = value.quantize(self.step, rounding=ROUND_HALF_UP)
        for upper, points in self.bands:
            if upper is None or shown <= upper:
                return shown, points
        raise AssertionError("the last band is open")  # pragma: no cover


def _d(value: str) -> Decimal:
    return Decimal(value)


# RCP 2017 NEWS2 chart, the five parameters a home can measure.
CHART: tuple[Band, ...] = (
    Band("respiratory-rate", _d("1"), ((_d("8"), 3), (_d("11"), 1), (_d("20"), 0), (_d("24"), 2), (None, 3))),
    Band("spo2", _d("1"), ((_d("91"), 3), (_d("93"), 2), (_d("95"), 1), (None, 0))),  # scale 1
    Band("blood-pressure", _d("1"),  # systolic
         ((_d("90"), 3), (_d("100"), 2), (_d("110"), 1), (_d("219"), 0), (None, 3))),
    Band("heart-rate", _d("1"),
         ((_d("40"), 3), (_d("50"), 1), (_d("90"), 0), (_d("110"), 1), (_d("130"), 2), (None, 3))),
    Band("body-temperature", _d("0.1"),
         ((_d("35.0"), 3), (_d("36.0"), 1), (_d("38.0"), 0), (_d("39.0"), 1), (None, 2))),
)
MEASURED = tuple(b.measure for b in CHART)
NOT_AT_HOME = ("supplemental-oxygen", "consciousness")
ALL_PARAMETERS = len(CHART) + len(NOT_AT_HOME)  # 7
MAX_TOTAL = 3 * len(CHART)  # 15: the highest total the home subset can reach


class Params(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    window_hours: Decimal = Decimal(12)
    yellow_total: int = 5
    red_total: int = 7
    # What 3 points in a single parameter raises on its own: NEWS2 asks for an urgent review.
    single_parameter_three: Literal["yellow", "red", "off"] = "yellow"
    # Fewer parameters than this within the window: no score (too little to go on).
    min_parameters: int = pydantic.Field(default=3, ge=1, le=len(CHART))

    @pydantic.model_validator(mode="after")
    def _check(self) -> "Params":
        if self.window_hours <= 0:
            raise ValueError("window_hours must be more than 0")
        for name in ("yellow_total", "red_total"):
            if not 1 <= getattr(self, name) <= MAX_TOTAL:
                raise ValueError(f"{name} must be between 1 and {MAX_TOTAL} (the most the home subset can score)")
        if self.yellow_total >= self.red_total:
            raise ValueError("yellow_total must be below red_total (the thresholds are inverted)")
        return self


def subset_label(present: int) -> str:
    """Language-neutral label kept in the evidence; the reason carries the translated one."""
    return f"NEWS2 (home subset: {present} of {ALL_PARAMETERS} parameters)"


def evaluate_reading(params: Params, reading: "Reading | ReadingRow", ctx: "Context") -> "Finding | None":
    from alerts.rules import Finding

    if reading.measure not in MEASURED:
        return None
    until: datetime = reading.effective_at
    latest = ctx.latest_readings(patient_of(reading), [m for m in MEASURED if m != reading.measure],
                                 since=until - timedelta(hours=float(params.window_hours)), until=until)
    scored: list[dict[str, Any]] = []
    for band in CHART:
        if band.measure == reading.measure:
            rid, value, at, unit = reading.pk, reading.value, reading.effective_at, reading.unit
        elif band.measure in latest:
            past = latest[band.measure]
            rid, value, at, unit = past.id, past.value, past.effective_at, MEASURES[band.measure].unit
        else:
            continue
        shown, points = band.points(Decimal(value))
        scored.append({"measure": band.measure, "component": "value", "reading_id": rid,
                       "value": str(_plain(shown)), "unit": unit, "effective_at": at.isoformat(),
                       "points": points})
    if len(scored) < params.min_parameters:
        return None
    total = sum(p["points"] for p in scored)
    threes = [p for p in scored if p["points"] == 3]
    if total >= params.red_total:
        severity, trigger = "red", "total"
    elif total >= params.yellow_total:
        severity, trigger = "yellow", "total"
    elif threes and params.single_parameter_three != "off":
        severity, trigger = params.single_parameter_three, "single-parameter"
    else:
        return None

    label = _("NEWS2 (home subset: %(present)s of %(all)s parameters)") % {
        "present": len(scored), "all": ALL_PARAMETERS}
    parts = ", ".join(_part(p) for p in scored)
    if trigger == "total":
        limit = params.red_total if severity == "red" else params.yellow_total
        reason = _("%(label)s is %(total)s; limit %(limit)s. %(parts)s.") % {
            "label": label, "total": total, "limit": limit, "parts": parts}
    else:
        reason = _("%(label)s is %(total)s, but %(measures)s alone scores 3 points. %(parts)s.") % {
            "label": label, "total": total, "parts": parts,
            "measures": ", ".join(str(_name(p["measure"])) for p in threes)}
    return Finding(
        reason=reason,
        evidence={
            "reading_id": reading.pk,
            "score": "NEWS2",
            "subset": subset_label(len(scored)),
            "parameters_present": len(scored),
            "parameters_of": ALL_PARAMETERS,
            "missing": [m for m in MEASURED if m not in {p["measure"] for p in scored}],
            "not_measured_at_home": list(NOT_AT_HOME),
            "total": total,
            "trigger": trigger,
            "window_hours": str(params.window_hours),
            "yellow_total": params.yellow_total,
            "red_total": params.red_total,
            "parameters": scored,
        },
        severity=severity,
    )


def _plain(value: Decimal) -> Decimal:
    # 90.000 (a DecimalField) -> 90, not normalize()'s 9E+1.
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def _name(measure: str) -> str:
    if measure == "blood-pressure":
        return _("Systolic blood pressure")
    return str(MEASURES[measure].label)


def _part(p: dict[str, Any]) -> str:
    m = MEASURES[p["measure"]]
    return ngettext("%(name)s %(value)s %(unit)s: %(points)s point", "%(name)s %(value)s %(unit)s: %(points)s points",
                    p["points"]) % {"name": _name(p["measure"]), "value": number_format(Decimal(p["value"])),
                                    "unit": m.unit_label, "points": p["points"]}


# How the editor asks for the parameters (alerts.rules.form_spec, issue 24).
FORM = (
    Number("window_hours", _l("Readings within"), _l("E.g. 12 hours: the vitals of one morning and evening."),
           unit=_l("hours"), required=True, minimum=Decimal("1"),
           maximum=Decimal("72"), initial=12),
    Number("yellow_total", _l("Yellow from a total of"), _l("RCP 2017: 5 asks for an urgent review."),
           unit=_l("points"), required=True, minimum=Decimal("1"),
           maximum=Decimal(MAX_TOTAL), whole=True, initial=5),
    Number("red_total", _l("Red from a total of"), _l("RCP 2017: 7 asks for an emergency response."),
           unit=_l("points"), required=True, minimum=Decimal("1"),
           maximum=Decimal(MAX_TOTAL), whole=True, initial=7),
)
CHECKS = (Ascending(("yellow_total", "red_total"), _l("Yellow must start below red.")),)
