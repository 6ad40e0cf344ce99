"""Typed specs of the schedule kinds. A Schedule stores ``kind`` and ``params`` (JSON); both are
parsed here — in ``Schedule.clean()``, in the services that create schedules and again when
occurrences are generated — and never read as loose dicts elsewhere.

Every day number is relative to the episode's index date (``TreatmentEpisode.treatment_start``):
day 0 is the start of treatment, day -7 a week before it.
"""

from datetime import date, timedelta
from typing import Annotated, Any, Literal

import pydantic
from django.core.exceptions import ValidationError

# Ten years either side of the index date: far beyond any follow-up programme, and small enough
# that a typo ("3650" for "365") cannot make generation write tens of thousands of rows.
DAY_LIMIT = 3650
MAX_OCCURRENCES = 1000

Day = Annotated[int, pydantic.Field(ge=-DAY_LIMIT, le=DAY_LIMIT)]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Spec(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    def days(self, index_date: date) -> list[int]:
        raise NotImplementedError

    def dates(self, index_date: date) -> list[date]:
        return [index_date + timedelta(days=d) for d in self.days(index_date)]


class _Range(_Spec):
    from_day: Day
    to_day: Day

    @pydantic.model_validator(mode="after")
    def _range_in_order(self) -> "_Range":
        if self.to_day < self.from_day:
            raise ValueError(
                f"to_day: the range ends (day {self.to_day}) before it starts (day {self.from_day})"
            )
        return self


class Offsets(_Spec):
    """Fixed days, e.g. baseline at -7 and then days 7, 14, 30, 90."""

    kind: Literal["offsets"] = "offsets"
    days_: list[Day] = pydantic.Field(alias="days", min_length=1, max_length=MAX_OCCURRENCES)

    @pydantic.field_validator("days_")
    def _unique(cls, value: list[int]) -> list[int]:  # noqa: N805 - pydantic validator
        if len(set(value)) != len(value):
            raise ValueError("days: each day may appear once")
        return sorted(value)

    def days(self, index_date: date) -> list[int]:
        return list(self.days_)


class Every(_Range):
    """Every N days from day A to day B (both inclusive when they fall on the rhythm)."""

    kind: Literal["every"] = "every"
    every_days: Annotated[int, pydantic.Field(ge=1, le=366)]

    @pydantic.model_validator(mode="after")
    def _not_too_many(self) -> "Every":
        if (self.to_day - self.from_day) // self.every_days + 1 > MAX_OCCURRENCES:
            raise ValueError(f"every_days: more than {MAX_OCCURRENCES} occurrences; check the range")
        return self

    def days(self, index_date: date) -> list[int]:
        return list(range(self.from_day, self.to_day + 1, self.every_days))


class Weekdays(_Range):
    """Fixed weekdays (e.g. Monday and Thursday) between day A and day B."""

    kind: Literal["weekdays"] = "weekdays"
    weekdays: list[Weekday] = pydantic.Field(min_length=1, max_length=7)

    @pydantic.field_validator("weekdays")
    def _unique(cls, value: list[Weekday]) -> list[Weekday]:  # noqa: N805 - pydantic validator
        if len(set(value)) != len(value):
            raise ValueError("weekdays: each weekday may appear once")
        return value

    def days(self, index_date: date) -> list[int]:
        wanted = {WEEKDAYS.index(w) for w in self.weekdays}
        return [
            d for d in range(self.from_day, self.to_day + 1)
            if (index_date + timedelta(days=d)).weekday() in wanted
        ]


class Once(_Spec):
    """One occurrence at a relative day, e.g. the 12-month follow-up at day 365."""

    kind: Literal["once"] = "once"
    day: Day

    def days(self, index_date: date) -> list[int]:
        return [self.day]


Spec = Offsets | Every | Weekdays | Once
KINDS: dict[str, type[_Spec]] = {"offsets": Offsets, "every": Every, "weekdays": Weekdays, "once": Once}


def spec_parse(kind: str, params: Any) -> Spec:
    """Parse a schedule's kind and JSON parameters, or raise ValidationError keyed by field."""
    model = KINDS.get(kind)
    if model is None:
        raise ValidationError({"kind": f"Unknown schedule kind {kind!r}; known kinds: {', '.join(KINDS)}."})
    if not isinstance(params, dict):
        raise ValidationError({"params": "The parameters must be a JSON object."})
    if "kind" in params and params["kind"] != kind:
        raise ValidationError({"params": f"params.kind {params['kind']!r} disagrees with kind {kind!r}."})
    try:
        # KINDS maps each kind to its own model, one of Spec's; model_validate says only BaseModel
        return model.model_validate({**params, "kind": kind})  # type: ignore[return-value]
    except pydantic.ValidationError as exc:
        raise ValidationError({"params": [_message(e) for e in exc.errors()]}) from exc


def spec_params(spec: Spec) -> dict[str, Any]:
    """The JSON stored in ``Schedule.params`` for a spec (without the kind, which is a column)."""
    return spec.model_dump(by_alias=True, exclude={"kind"})


def _message(error: Any) -> str:
    where = ".".join(str(p) for p in error["loc"])
    msg = str(error["msg"]).removeprefix("Value error, ")
    # Our own validators already begin with the field they are about ("to_day: ..."); pydantic's
    # built-in ones ("Input should be greater than 0") need the location in front.
    if not where or msg.startswith(f"{error['loc'][0]}:"):
        return msg
    return f"{where}: {msg}"
