"""Four-band thresholds on one measure (OpenTele): the kind decides the colour per reading.

    alert_low < warning_low  ·  normal  ·  warning_high < alert_high
    red below alert_low or above alert_high; yellow below warning_low or above warning_high;
    nothing in between. A limit itself belongs to the better band: SpO2 exactly 88 with
    ``alert_low: 88`` is yellow (if 88 < warning_low), not red — "below 88" means 87.

Any of the four limits may be left out (e.g. SpO2 has only low bands). For a two-part measure
(blood pressure) ``bands`` watch the first component (systolic) and ``bands2`` the second
(diastolic), in one rule: the worse colour of the two decides, and the reason names the part(s)
outside their bands, the deciding one first.

Why a kind of its own rather than more parameters on ``threshold``: ``threshold`` has one limit
per side and the rule's own colour, and the triage and existing alerts rely on that meaning;
here the colour comes from the reading. Keeping them apart keeps both parameter sets small and
each validation message specific. ``Rule.severity`` is unused by this kind (the finding carries
the colour). A clinician's snooze is matched against the deciding part only (Finding.snooze holds
one measure/component/value): when a snooze covers the deciding part, the whole finding is
dropped, including the other part if it is outside its bands with the same or a lower colour.

Invalid definitions are refused when saved: unknown measure, limits out of order, a limit
outside the values the measure can have, ``bands2`` on a one-part measure, no limit at all.
"""

from decimal import Decimal
from typing import TYPE_CHECKING

import pydantic
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l

from alerts.rules.form_spec import (
    Ascending,
    MeasurePick,
    Number,
    OneOf,
)
from monitoring.measures import MEASURES

if TYPE_CHECKING:
    from alerts.rules import Finding
    from alerts.rules.context import Context
    from monitoring.models import Reading
    from monitoring.rows import ReadingRow

ORDER = ("alert_low", "warning_low", "warning_high", "alert_high")


class Bands(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    alert_low: Decimal | None = None
    warning_low: Decimal | None = None
    warning_high: Decimal | None = None
    alert_high: Decimal | None = None

    @pydantic.model_validator(mode="after")
    def _ordered(self) -> "Bands":
        given = [(name, getattr(self, name)) for name in ORDER if getattr(self, name) is not None]
        if not given:
            raise ValueError("give at least one of alert_low, warning_low, warning_high, alert_high")
        for (lower, a), (upper, b) in zip(given, given[1:], strict=False):
            if not a < b:
                raise ValueError(f"bands out of order: {lower} ({a}) must be below {upper} ({b})")
        return self

    def colour(self, value: Decimal) -> tuple[str, str, Decimal] | None:
        """(severity, side "low"/"high", the limit crossed) or None inside the normal band."""
        if self.alert_low is not None and value < self.alert_low:
            return "red", "low", self.alert_low
        if self.alert_high is not None and value > self.alert_high:
            return "red", "high", self.alert_high
        if self.warning_low is not None and value < self.warning_low:
            return "yellow", "low", self.warning_low
        if self.warning_high is not None and value > self.warning_high:
            return "yellow", "high", self.warning_high
        return None


# Findings carry Finding.snooze (measure, component, value): a clinician may snooze a level.
SNOOZABLE = True


class Params(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    measure: str
    bands: Bands | None = None  # the value (systolic for blood pressure)
    bands2: Bands | None = None  # the second component (diastolic for blood pressure)

    @pydantic.model_validator(mode="after")
    def _check(self) -> "Params":
        m = MEASURES.get(self.measure)
        if m is None:
            raise ValueError(f"unknown measure {self.measure!r}; known: {', '.join(sorted(MEASURES))}")
        if self.bands is None and self.bands2 is None:
            raise ValueError("give bands (and bands2 for the diastolic of blood pressure)")
        if self.bands2 is not None and m.second is None:
            raise ValueError(f"{self.measure} has no second component; bands2 applies to blood pressure only")
        for name, bands, low, high in (
            ("bands", self.bands, m.minimum, m.maximum),
            ("bands2", self.bands2, m.second.minimum if m.second else None, m.second.maximum if m.second else None),
        ):
            if bands is None or low is None or high is None:
                continue
            for limit in ORDER:
                value = getattr(bands, limit)
                if value is not None and not (low <= value <= high):
                    raise ValueError(f"{name}.{limit} {value} is outside the possible {self.measure} "
                                     f"values {low}–{high}")
        return self


def _label(measure: str, component: str) -> str:
    m = MEASURES[measure]
    if m.second is None:
        return str(m.label)
    if component == "value2":
        return _("%(measure)s (diastolic)") % {"measure": m.label}
    return _("%(measure)s (systolic)") % {"measure": m.label}


def _reason(measure: str, component: str, value: Decimal, severity: str, side: str, limit: Decimal) -> str:
    m = MEASURES[measure]
    shown = {"measure": _label(measure, component), "value": number_format(value), "unit": m.unit_label,
             "limit": number_format(limit)}
    if severity == "red":
        template = (_("%(measure)s %(value)s %(unit)s is below the red limit of %(limit)s %(unit)s.")
                    if side == "low" else
                    _("%(measure)s %(value)s %(unit)s is above the red limit of %(limit)s %(unit)s."))
    else:
        template = (_("%(measure)s %(value)s %(unit)s is below the yellow limit of %(limit)s %(unit)s.")
                    if side == "low" else
                    _("%(measure)s %(value)s %(unit)s is above the yellow limit of %(limit)s %(unit)s."))
    return template % shown


def evaluate_reading(params: Params, reading: "Reading | ReadingRow", ctx: "Context") -> "Finding | None":
    from alerts.rules import Finding

    if reading.measure != params.measure:
        return None
    hits: list[tuple[str, str, Decimal, str, Decimal]] = []  # (component, severity, value, side, limit)
    for component, bands in (("value", params.bands), ("value2", params.bands2)):
        raw = getattr(reading, component)
        if bands is None or raw is None:
            continue
        value = Decimal(raw).normalize()
        found = bands.colour(value)
        if found is not None:
            severity, side, limit = found
            hits.append((component, severity, value, side, limit))
    if not hits:
        return None
    # Red before yellow; on a tie the systolic (listed first) decides.
    hits.sort(key=lambda h: h[1] != "red")
    component, severity, value, _side, _limit = hits[0]
    return Finding(
        reason=" ".join(_reason(params.measure, c, v, s, side, lim) for c, s, v, side, lim in hits),
        evidence={
            "reading_id": reading.pk,
            "measure": reading.measure,
            "effective_at": reading.effective_at.isoformat(),
            "unit": reading.unit,
            "component": component,
            "findings": [
                {"component": c, "value": str(v), "severity": s, "side": side, "limit": str(lim)}
                for c, s, v, side, lim in hits
            ],
        },
        severity=severity,
        snooze=(reading.measure, component, value),
    )


# How the editor asks for the parameters (alerts.rules.form_spec, issue 24).
FORM = (
    MeasurePick("measure", _l("Measurement"), _l("Only the measurements of the programme's devices.")),
    Number("bands.alert_low", _l("Red below"), _l("E.g. 88 % oxygen saturation in COPD.")),
    Number("bands.warning_low", _l("Yellow below"), _l("E.g. 92 % oxygen saturation.")),
    Number("bands.warning_high", _l("Yellow above"), _l("E.g. 140 mmHg systolic.")),
    Number("bands.alert_high", _l("Red above"), _l("E.g. 180 mmHg systolic.")),
)
CHECKS = (
    OneOf(("bands.alert_low", "bands.warning_low", "bands.warning_high", "bands.alert_high"),
          _l("Give at least one limit.")),
    Ascending(("bands.alert_low", "bands.warning_low", "bands.warning_high", "bands.alert_high"),
              _l("The limits must rise from red below to red above.")),
)
