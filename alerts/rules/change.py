"""Change over a window against the patient's own earlier readings (heart failure: weight up
more than 2 kg in 3 days or more than 1 kg in 24 hours; SpO2 down 3 points or more from the
14-day median).

Each new reading is compared with the ``reference`` (median, lowest, highest or earliest) of the
patient's readings of the same measure *measured* in the ``window`` before it — from
``effective_at - window`` up to ``effective_at``, both ends included, the reading itself left
out. ``min_readings`` earlier readings are needed (fewer: no judgement, e.g. the first days at
home). "Weight up > 2 kg in 3 days" is ``direction: up, more_than: 2, window: P3D, reference:
lowest``: any rise of more than 2 kg over the lowest weight of the last three days. For "> 1 kg
in 24 h" add a second rule with ``window: PT24H, more_than: 1``.

Exactly at the limit: ``more_than: 2`` fires at 2.01 kg, not at 2.00 kg; ``at_least: 3`` fires
at 3 points. Give exactly one of them.

``window`` is an ISO 8601 duration ("P3D", "PT24H", "P14D") or seconds; zero or negative is
refused when the rule is saved.

Late uploads are judged by when they were measured: a reading measured on Monday and uploaded on
Thursday is compared with the readings measured in the window before Monday. What is ignored:
a late upload can change the comparison an *earlier-judged* later reading would have had (e.g.
Monday's low weight, arriving on Thursday, would have made Wednesday's reading a gain). Only
the new reading is judged; readings already evaluated are not judged again — a re-evaluation of
history is what back-testing is for. Readings marked erroneous are never in the window (Context).
"""

from datetime import timedelta
from decimal import Decimal
from statistics import median
from typing import TYPE_CHECKING, Literal

import pydantic
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l
from django.utils.translation import ngettext

from alerts.rules.context import patient_of
from alerts.rules.form_spec import (
    Choice,
    MeasurePick,
    Number,
)
from monitoring.measures import MEASURES

if TYPE_CHECKING:
    from alerts.rules import Finding
    from alerts.rules.context import Context
    from monitoring.models import Reading
    from monitoring.rows import ReadingRow


class Params(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    measure: str
    component: Literal["value", "value2"] = "value"
    direction: Literal["up", "down"]
    more_than: Decimal | None = None
    at_least: Decimal | None = None
    window: timedelta
    reference: Literal["median", "lowest", "highest", "earliest"] = "median"
    min_readings: int = pydantic.Field(default=1, ge=1, le=1000)

    @pydantic.model_validator(mode="after")
    def _check(self) -> "Params":
        m = MEASURES.get(self.measure)
        if m is None:
            raise ValueError(f"unknown measure {self.measure!r}; known: {', '.join(sorted(MEASURES))}")
        if self.component == "value2" and m.second is None:
            raise ValueError(f"{self.measure} has no second component")
        if (self.more_than is None) == (self.at_least is None):
            raise ValueError("give exactly one of more_than and at_least")
        limit = self.more_than if self.more_than is not None else self.at_least
        if limit is not None and limit <= 0:
            raise ValueError("the change limit must be more than 0 (direction says up or down)")
        if self.window <= timedelta(0):
            raise ValueError("window must be longer than zero, e.g. \"P3D\" or \"PT24H\"")
        return self

    @property
    def limit(self) -> Decimal:
        limit = self.more_than if self.more_than is not None else self.at_least
        if limit is None:  # _check refuses it; a Params built without validation must not pass either
            raise ValueError("give exactly one of more_than and at_least")
        return limit


def window_words(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    hours, rest = divmod(seconds, 3600)
    if rest == 0 and hours <= 48:
        return ngettext("%(n)s hour", "%(n)s hours", hours) % {"n": hours}
    days, rest = divmod(seconds, 86400)
    if rest == 0:
        return ngettext("%(n)s day", "%(n)s days", days) % {"n": days}
    minutes = max(1, seconds // 60)
    return ngettext("%(n)s minute", "%(n)s minutes", minutes) % {"n": minutes}


def _reference(values: list[Decimal], how: str) -> Decimal:
    if how == "lowest":
        return min(values)
    if how == "highest":
        return max(values)
    if how == "earliest":
        return values[0]
    return Decimal(median(values))


def evaluate_reading(params: Params, reading: "Reading | ReadingRow", ctx: "Context") -> "Finding | None":
    from alerts.rules import Finding

    if reading.measure != params.measure:
        return None
    raw = getattr(reading, params.component)
    if raw is None:
        return None
    value = Decimal(raw)
    earlier = [
        r for r in ctx.readings(patient_of(reading), params.measure,
                                since=reading.effective_at - params.window, until=reading.effective_at)
        if r.id != reading.pk and getattr(r, params.component) is not None
    ]
    if len(earlier) < params.min_readings:
        return None
    values = [Decimal(getattr(r, params.component)) for r in earlier]
    ref = _reference(values, params.reference)
    change = value - ref if params.direction == "up" else ref - value
    fired = change > params.limit if params.more_than is not None else change >= params.limit
    if not fired:
        return None
    m = MEASURES[params.measure]
    label = str(m.label)
    if m.second is not None:
        label = (_("%(measure)s (diastolic)") if params.component == "value2"
                 else _("%(measure)s (systolic)")) % {"measure": m.label}
    words = {"measure": label, "change": number_format(change.normalize()), "unit": m.unit_label,
             "window": window_words(params.window), "limit": number_format(params.limit.normalize()),
             "value": number_format(value.normalize()), "ref": number_format(ref.normalize()),
             "count": len(values)}
    if params.direction == "up":
        first = (_("%(measure)s up %(change)s %(unit)s in %(window)s; limit more than %(limit)s %(unit)s.")
                 if params.more_than is not None else
                 _("%(measure)s up %(change)s %(unit)s in %(window)s; limit %(limit)s %(unit)s."))
    else:
        first = (_("%(measure)s down %(change)s %(unit)s in %(window)s; limit more than %(limit)s %(unit)s.")
                 if params.more_than is not None else
                 _("%(measure)s down %(change)s %(unit)s in %(window)s; limit %(limit)s %(unit)s."))
    second = {
        "median": _("Now %(value)s %(unit)s; median of the %(count)s readings before: %(ref)s %(unit)s."),
        "lowest": _("Now %(value)s %(unit)s; lowest of the %(count)s readings before: %(ref)s %(unit)s."),
        "highest": _("Now %(value)s %(unit)s; highest of the %(count)s readings before: %(ref)s %(unit)s."),
        "earliest": _("Now %(value)s %(unit)s; earliest of the %(count)s readings before: %(ref)s %(unit)s."),
    }[params.reference]
    # A change of a percentage is in percentage points: 96 % to 88 % fell 8 points, not 8 %.
    change_unit = _("percentage points") if m.unit == "%" else m.unit_label
    return Finding(
        reason=f"{first % {**words, 'unit': change_unit}} {second % words}",
        evidence={
            "reading_id": reading.pk,
            "measure": reading.measure,
            "component": params.component,
            "value": str(value),
            "unit": reading.unit,
            "effective_at": reading.effective_at.isoformat(),
            "reference": params.reference,
            "reference_value": str(ref),
            "change": str(change),
            "limit": str(params.limit),
            "window_seconds": int(params.window.total_seconds()),
            "compared_with": [{"reading_id": r.id, "value": str(getattr(r, params.component)),
                               "effective_at": r.effective_at.isoformat()} for r in earlier],
        },
    )


# How the editor asks for the parameters (alerts.rules.form_spec, issue 24).
FORM = (
    MeasurePick("measure", _l("Measurement"), _l("Only the measurements of the programme's devices.")),
    Choice("component", _l("Which value"), (("value", _l("The value (systolic for blood pressure)")),
                                            ("value2", _l("Diastolic (blood pressure only)"))), initial="value"),
    Choice("direction", _l("Direction"), (("up", _l("Up")), ("down", _l("Down"))), initial="up"),
    Number("more_than", _l("Alarm when changed by more than"),
           _l("E.g. 2 kg in 3 days for heart failure."), required=True, minimum=Decimal("0.01")),
    Number("window", _l("Within"), _l("E.g. 72 hours (3 days)."), unit=_l("hours"), required=True,
           minimum=Decimal("1"), maximum=Decimal("2160"), as_hours=True),
    Choice("reference", _l("Compared with"), (("median", _l("The median in the period")),
                                              ("lowest", _l("The lowest in the period")),
                                              ("highest", _l("The highest in the period")),
                                              ("earliest", _l("The earliest in the period"))), initial="median"),
)
CHECKS = ()
