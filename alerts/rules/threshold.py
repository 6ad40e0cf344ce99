"""Threshold on one measure: below ``low`` or above ``high`` fires (limits themselves are fine).

For a two-part measure (blood pressure) ``component`` picks the part: ``value`` (systolic, the
default) or ``value2`` (diastolic)."""

from decimal import Decimal
from typing import TYPE_CHECKING, Literal

import pydantic
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l

from alerts.rules.form_spec import (
    Ascending,
    Choice,
    MeasurePick,
    Number,
    OneOf,
)
from monitoring.measures import MEASURES

if TYPE_CHECKING:
    from alerts.rules import Finding
    from alerts.rules.context import Context
    from monitoring.models import Reading


# Findings carry Finding.snooze (measure, component, value): a clinician may snooze a level.
SNOOZABLE = True


class Params(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    measure: str
    low: Decimal | None = None
    high: Decimal | None = None
    component: Literal["value", "value2"] = "value"

    @pydantic.model_validator(mode="after")
    def _check(self) -> "Params":
        if self.measure not in MEASURES:
            raise ValueError(f"unknown measure {self.measure!r}")
        if self.low is None and self.high is None:
            raise ValueError(_("Give a lower limit, an upper limit or both."))
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ValueError(_("The lower limit must be below the upper limit."))
        measure = MEASURES[self.measure]
        if self.component == "value2" and measure.second is None:
            raise ValueError(f"{self.measure} has no second component")
        return self


def save_problems(params: Params) -> list[str]:
    """Checked when a rule or a patient's override is saved, not when stored rules are parsed to
    run: a limit outside what the measure can be would never fire (or always fire), so a typo
    such as 500 for a temperature must not quietly switch the alert off. A rule stored before
    this check keeps running as it was."""
    measure = MEASURES[params.measure]
    part = measure.second if params.component == "value2" else measure
    assert part is not None  # value2 is accepted only for a two-part measure (the params' check)
    return [
        _("%(limit)s %(unit)s is outside the possible range of %(measure)s (%(lo)s to %(hi)s).") % {
            "limit": number_format(limit.normalize()), "unit": measure.unit_label, "measure": part.label,
            "lo": number_format(part.minimum), "hi": number_format(part.maximum)}
        for limit in (params.low, params.high)
        if limit is not None and not (part.minimum <= limit <= part.maximum)
    ]


def evaluate_reading(params: Params, reading: "Reading", ctx: "Context") -> "Finding | None":
    if reading.measure != params.measure:
        return None
    m = MEASURES[reading.measure]
    raw = reading.value2 if params.component == "value2" else reading.value
    if raw is None:
        return None
    # Compare first: most readings are inside their limits, and the words are only needed for
    # the few that are not (formatting is most of this function's cost on a 1,000-reading batch).
    if params.low is not None and raw < params.low:
        reason = _("%(measure)s %(value)s %(unit)s is below the limit of %(limit)s %(unit)s.")
        limit = params.low
    elif params.high is not None and raw > params.high:
        reason = _("%(measure)s %(value)s %(unit)s is above the limit of %(limit)s %(unit)s.")
        limit = params.high
    else:
        return None
    value = Decimal(raw).normalize()
    label = m.label
    if params.component == "value" and m.second is not None:
        label = _("%(measure)s (systolic)") % {"measure": m.label}
    elif params.component == "value2":
        label = _("%(measure)s (diastolic)") % {"measure": m.label}
    shown = {"measure": label, "value": number_format(value), "unit": m.unit_label}
    from alerts.rules import Finding  # here, not per reading: most readings return above

    return Finding(
        reason=reason % {**shown, "limit": number_format(limit)},
        evidence={
            "reading_id": reading.pk,
            "measure": reading.measure,
            "component": params.component,
            "value": f"{value:f}",  # 90, not str(Decimal("90").normalize()) == "9E+1"
            "unit": reading.unit,
            "effective_at": reading.effective_at.isoformat(),
            "limit": f"{limit:f}",
        },
        snooze=(reading.measure, params.component, value),
    )


# How the editor asks for the parameters (alerts.rules.form_spec, issue 24).
FORM = (
    MeasurePick("measure", _l("Measurement"), _l("Only the measurements of the programme's devices.")),
    Choice("component", _l("Which value"), (("value", _l("The value (systolic for blood pressure)")),
                                            ("value2", _l("Diastolic (blood pressure only)"))), initial="value"),
    Number("low", _l("Alarm below"), _l("E.g. 92 for oxygen saturation in COPD: 91 % alerts, 92 % does not.")),
    Number("high", _l("Alarm above"), _l("E.g. 38.5 for temperature after chemotherapy.")),
)
CHECKS = (
    OneOf(("low", "high"), _l("Give a lower limit, an upper limit or both.")),
    Ascending(("low", "high"), _l("The lower limit must be below the upper limit.")),
)
