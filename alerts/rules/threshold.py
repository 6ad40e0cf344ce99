"""Threshold on one measure: below ``low`` or above ``high`` fires (limits themselves are fine)."""

from decimal import Decimal
from typing import TYPE_CHECKING

import pydantic
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from monitoring.measures import MEASURES

if TYPE_CHECKING:
    from alerts.rules import Finding
    from monitoring.models import Reading


class Params(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    measure: str
    low: Decimal | None = None
    high: Decimal | None = None

    @pydantic.model_validator(mode="after")
    def _check(self) -> "Params":
        if self.measure not in MEASURES:
            raise ValueError(f"unknown measure {self.measure!r}")
        if self.low is None and self.high is None:
            raise ValueError("give low, high or both")
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ValueError("low must be below high")
        return self


def evaluate_reading(params: Params, reading: "Reading") -> "Finding | None":
    from alerts.rules import Finding

    if reading.measure != params.measure:
        return None
    m = MEASURES[reading.measure]
    value = Decimal(reading.value).normalize()
    shown = {"measure": m.label, "value": number_format(value), "unit": m.unit_label}
    if params.low is not None and value < params.low:
        reason = _("%(measure)s %(value)s %(unit)s is below the limit of %(limit)s %(unit)s.")
        limit = params.low
    elif params.high is not None and value > params.high:
        reason = _("%(measure)s %(value)s %(unit)s is above the limit of %(limit)s %(unit)s.")
        limit = params.high
    else:
        return None
    return Finding(
        reason=reason % {**shown, "limit": number_format(limit)},
        evidence={
            "reading_id": reading.pk,
            "measure": reading.measure,
            "value": str(value),
            "unit": reading.unit,
            "effective_at": reading.effective_at.isoformat(),
            "limit": str(limit),
        },
    )
