"""A symptom answer and a home reading that together mean more than either alone, e.g.
"breathlessness at least moderate AND SpO2 below 92 %" (lung cancer, heart failure).

Both conditions must hold within ``window_hours`` of each other. The rule runs on both kinds of
event, and fires on whichever completes the pair:

- on a reading that meets the reading condition, the patient's *latest* answer to the item
  given within the window around the reading's measuring time must meet the answer condition;
- on a response whose answer meets the answer condition, the patient's *latest* reading of the
  measure measured within the window around the response must meet the reading condition.

"Latest" on the other side on purpose: a patient who was breathless on Monday and answered
"as usual" on Tuesday is no longer breathless. The window reaches after the event too, for late
uploads (a reading measured before the answer but received after it); back-testing never sees
what had not arrived yet (Context.as_of).

The answer condition is a minimum grade (the option's ordinalValue in the questionnaire version
answered, or the number for integer items) or a list of answer codes.
"""

from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

import pydantic
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l

from alerts.rules.context import patient_of
from alerts.rules.form_spec import (
    AnswerPick,
    Choice,
    ItemPick,
    MeasurePick,
    Number,
)
from monitoring.measures import MEASURES

if TYPE_CHECKING:
    from alerts.rules import Finding
    from alerts.rules.context import Context, PastAnswer
    from monitoring.models import Reading
    from monitoring.rows import ReadingRow
    from questionnaires.models import QuestionnaireResponse

Comparison = Literal["<", "<=", ">", ">="]


class AnswerCondition(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    questionnaire: str  # canonical URL (any version)
    link_id: str = pydantic.Field(min_length=1)
    min_grade: Decimal | None = None
    codes: list[str] | None = None

    @pydantic.model_validator(mode="after")
    def _check(self) -> "AnswerCondition":
        if (self.min_grade is None) == (not self.codes):
            raise ValueError("give either min_grade or a non-empty list of codes")
        return self

    def met(self, answer: "PastAnswer") -> bool:
        if self.codes:
            return answer.code in self.codes
        return answer.grade is not None and self.min_grade is not None and answer.grade >= self.min_grade


class ReadingCondition(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    measure: str
    component: Literal["value", "value2"] = "value"
    comparison: Comparison
    value: Decimal

    @pydantic.model_validator(mode="after")
    def _check(self) -> "ReadingCondition":
        m = MEASURES.get(self.measure)
        if m is None:
            raise ValueError(f"unknown measure {self.measure!r}; known: {', '.join(sorted(MEASURES))}")
        if self.component == "value2" and m.second is None:
            raise ValueError(f"{self.measure} has no second component")
        low, high = (m.second.minimum, m.second.maximum) if self.component == "value2" and m.second else (
            m.minimum, m.maximum)
        if not low <= self.value <= high:
            # A limit outside what can be stored could never (or would always) be met.
            raise ValueError(f"value must be between {low} and {high} for {self.measure}")
        return self

    def met(self, value: Decimal) -> bool:
        return {
            "<": value < self.value, "<=": value <= self.value, ">": value > self.value, ">=": value >= self.value,
        }[self.comparison]


class Params(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    answer: AnswerCondition
    reading: ReadingCondition
    window_hours: Decimal = Decimal(24)

    @pydantic.model_validator(mode="after")
    def _check(self) -> "Params":
        if self.window_hours <= 0:
            raise ValueError("window_hours must be more than 0")
        return self

    @property
    def window(self) -> timedelta:
        return timedelta(hours=float(self.window_hours))


def _value(params: Params, value: Decimal, value2: Decimal | None) -> Decimal | None:
    raw = value2 if params.reading.component == "value2" else value
    return None if raw is None else _plain(Decimal(raw))


def _plain(value: Decimal) -> Decimal:
    # 90.000 (a DecimalField) -> 90, not normalize()'s 9E+1.
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def evaluate_reading(params: Params, reading: "Reading | ReadingRow", ctx: "Context") -> "Finding | None":
    if reading.measure != params.reading.measure:
        return None
    value = _value(params, reading.value, reading.value2)
    if value is None or not params.reading.met(value):
        return None
    at = reading.effective_at
    answers = ctx.latest_answers(patient_of(reading), params.answer.questionnaire, params.answer.link_id,
                                 since=at - params.window, until=at + params.window)
    answer = next((a for a in answers if params.answer.met(a)), None)
    if answer is None:
        return None
    return _finding(params, answer, reading.pk, value, reading.unit, at, completed_by="reading")


def evaluate_response(params: Params, response: "QuestionnaireResponse", ctx: "Context") -> "Finding | None":
    if response.questionnaire.url != params.answer.questionnaire:
        return None
    answer = next((a for a in ctx.answers(response, params.answer.link_id) if params.answer.met(a)), None)
    if answer is None:
        return None
    at = response.authored_at
    latest = ctx.latest_readings(response.patient_id, [params.reading.measure],
                                 since=at - params.window, until=at + params.window).get(params.reading.measure)
    if latest is None:
        return None
    value = _value(params, latest.value, latest.value2)
    if value is None or not params.reading.met(value):
        return None
    return _finding(params, answer, latest.id, value, MEASURES[latest.measure].unit, latest.effective_at,
                    completed_by="response")


def _finding(params: Params, answer: "PastAnswer", reading_id: int, value: Decimal, unit: str, effective_at: datetime,
             *, completed_by: str) -> "Finding":
    from alerts.rules import Finding

    m = MEASURES[params.reading.measure]
    label = str(m.label)
    if params.reading.component == "value2":
        label = _("%(measure)s (diastolic)") % {"measure": m.label}
    elif m.second is not None:
        label = _("%(measure)s (systolic)") % {"measure": m.label}
    reason = _("Answered “%(answer)s” to “%(question)s” and %(measure)s was %(value)s %(unit)s "
               "(limit %(comparison)s %(limit)s %(unit)s) within %(hours)s hours.") % {
        "answer": answer.display, "question": answer.question, "measure": label,
        "value": number_format(value), "unit": m.unit_label, "comparison": params.reading.comparison,
        "limit": number_format(params.reading.value), "hours": number_format(_plain(params.window_hours)),
    }
    return Finding(
        reason=reason,
        evidence={
            "completed_by": completed_by,
            "window_hours": str(params.window_hours),
            "response_id": answer.response_id,
            "link_id": params.answer.link_id,
            "question": answer.question,
            "answer": answer.display,
            "code": answer.code,
            "grade": None if answer.grade is None else str(answer.grade),
            "authored_at": answer.authored_at.isoformat(),
            "reading_id": reading_id,
            "measure": params.reading.measure,
            "component": params.reading.component,
            "value": str(value),
            "unit": unit,
            "effective_at": effective_at.isoformat(),
            "comparison": params.reading.comparison,
            "limit": str(params.reading.value),
        },
    )


# How the editor asks for the parameters (alerts.rules.form_spec, issue 24).
FORM = (
    ItemPick("answer.questionnaire", "answer.link_id", _l("Question"), _l("E.g. \"Are you more breathless?\"")),
    AnswerPick("answer.codes", _l("Answers"), _l("E.g. \"Yes\".")),
    MeasurePick("reading.measure", _l("Measurement"), _l("Only the measurements of the programme's devices.")),
    Choice("reading.comparison", _l("Reading is"), (("<", _l("below")), ("<=", _l("at or below")),
                                                   (">", _l("above")), (">=", _l("at or above"))), initial="<"),
    Number("reading.value", _l("Limit"), _l("E.g. 92 % oxygen saturation."), required=True),
    Number("window_hours", _l("Within"), _l("E.g. 24 hours between the answer and the reading."),
           unit=_l("hours"), required=True, minimum=Decimal("1"),
           maximum=Decimal("168"), initial=24),
)
CHECKS = ()
