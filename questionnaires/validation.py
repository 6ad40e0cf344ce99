"""Validate a FHIR QuestionnaireResponse ``item`` list against one questionnaire version.

Independent of Django forms and requests: the patient web form, the draft store and
``POST /fhir/QuestionnaireResponse`` all call ``response_validate``. It returns the cleaned items
(rebuilt in the questionnaire's own structure and order, with the questionnaire's texts and the
options' own codings) and a list of ``(linkId, message)`` errors. Answers to items that are
disabled by enableWhen are dropped — never stored — and listed in ``dropped``.

Messages follow the active language (``gettext``); wrap the call in ``translation.override`` to
choose another.
"""

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from django.utils.translation import gettext as _

from questionnaires.definition import (
    DATE_RE,
    DATETIME_RE,
    TIME_RE,
    VALUE_KEY,
    Definition,
    Item,
    response_items_walk,
)
from questionnaires.enablewhen import enabled_items

# Free text is limited even where the questionnaire sets no maxLength: a response is stored as
# one JSON document, and nobody types more than this into a symptom questionnaire.
TEXT_LIMIT = 5000


class ResponseError(NamedTuple):
    link_id: str | None
    message: str


class MissingAnswer(ResponseError):
    """A required answer not given: the questionnaire page sums these up as a count."""


@dataclass
class Validated:
    items: list[dict[str, Any]]
    errors: list[ResponseError] = field(default_factory=list)
    # linkIds whose answers were dropped because the item is disabled
    dropped: list[str] = field(default_factory=list)
    # linkId -> cleaned answers, for every enabled answered item
    answers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


class _Invalid(Exception):
    pass


def _flatten(raw: Any, errors: list[ResponseError], out: dict[str, list[Any]]) -> None:
    if not isinstance(raw, list):
        errors.append(ResponseError(None, _("item must be a list.")))
        return
    for entry in raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("linkId"), str) or not entry["linkId"]:
            errors.append(ResponseError(None, _("Every item needs a linkId.")))
            continue
        link_id = entry["linkId"]
        if link_id in out:
            errors.append(ResponseError(link_id, _("This item is given more than once.")))
            continue
        answers = entry.get("answer", [])
        if not isinstance(answers, list):
            errors.append(ResponseError(link_id, _("answer must be a list.")))
            answers = []
        nested = []
        for answer in answers:
            if isinstance(answer, dict) and "item" in answer:
                # A question's follow-up questions (items nested under a question item): FHIR R4
                # puts their answers under the answer. They are checked like any other item.
                nested.append(answer["item"])
                answer = {k: v for k, v in answer.items() if k != "item"}
            out.setdefault(link_id, []).append(answer)
        out.setdefault(link_id, [])
        if "item" in entry:
            _flatten(entry["item"], errors, out)
        for children in nested:
            _flatten(children, errors, out)


def _one_value(answer: Any) -> tuple[str, Any]:
    if not isinstance(answer, dict):
        raise _Invalid(_("Each answer must be an object with one value."))
    values = [(k, v) for k, v in answer.items() if k.startswith("value")]
    if len(values) != 1:
        raise _Invalid(_("Each answer must have exactly one value."))
    return values[0]


def _number(value: Any, integer: bool) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        raise _Invalid(_("Enter a whole number.") if integer else _("Enter a number."))
    number = Decimal(str(value))
    if not number.is_finite():
        raise _Invalid(_("Enter a number."))
    return number


def _check_range(item: Item, value: Any) -> None:
    low, high = item.min_value, item.max_value
    if isinstance(value, Decimal):
        try:
            low = None if low is None else Decimal(str(low))
            high = None if high is None else Decimal(str(high))
        except InvalidOperation:
            return
    elif isinstance(value, str):
        # dates and times: ISO strings of the same precision sort as the moments do
        low = low if isinstance(low, str) and len(low) == len(value) else None
        high = high if isinstance(high, str) and len(high) == len(value) else None
    if low is not None and value < low:
        raise _Invalid(_("The answer must be at least %(low)s.") % {"low": item.min_value})
    if high is not None and value > high:
        raise _Invalid(_("The answer must be at most %(high)s.") % {"high": item.max_value})


def _text(item: Item, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(_("Write an answer, or leave the question out."))
    limit = min(item.maxLength or TEXT_LIMIT, TEXT_LIMIT)
    if len(value) > limit:
        raise _Invalid(_("The answer may be at most %(limit)d characters.") % {"limit": limit})
    return value


def _clean_answer(item: Item, answer: Any) -> dict[str, Any]:
    kind, value = _one_value(answer)
    if item.type in ("choice", "open-choice"):
        return _clean_choice(item, answer, kind, value)
    expected = VALUE_KEY[item.type]
    if kind != expected:
        raise _Invalid(_("This question takes %(kind)s, not %(given)s.") % {"kind": expected, "given": kind})
    if item.type == "boolean":
        if not isinstance(value, bool):
            raise _Invalid(_("Answer yes or no."))
        return {kind: value}
    if item.type in ("integer", "decimal"):
        _check_range(item, _number(value, integer=item.type == "integer"))
        return {kind: value}
    if item.type in ("string", "text"):
        return {kind: _text(item, value)}
    return {kind: _clean_when(item, value)}


def _clean_choice(item: Item, answer: Any, kind: str, value: Any) -> dict[str, Any]:
    option = item.option_for(answer)
    if option is not None:
        return option.fhir_value()
    if kind == "valueString" and (item.type == "open-choice" or item.free_text_choice):
        return {"valueString": _text(item, value)}
    if kind == "valueCoding" and item.free_text_choice:
        # The options are in a value set we cannot expand (ADR 0004): a coding is taken as given.
        if not isinstance(value, dict) or not isinstance(value.get("code"), str):
            raise _Invalid(_("A coded answer needs a code."))
        return {"valueCoding": {k: value[k] for k in ("system", "code", "display") if k in value}}
    raise _Invalid(_("Choose one of the options shown."))


def _clean_when(item: Item, value: Any) -> str:
    """A date, dateTime or time answer: well formed, a day that exists, a zone with a time of day."""
    pattern = {"date": DATE_RE, "dateTime": DATETIME_RE, "time": TIME_RE}[item.type]
    if not isinstance(value, str) or not pattern.match(value):
        raise _Invalid({"date": _("Enter a date."), "dateTime": _("Enter a date and a time."),
                        "time": _("Enter a time.")}[item.type])
    if item.type == "dateTime" and "T" in value and not value.endswith("Z") and value[-6] not in "+-":
        raise _Invalid(_("A time of day needs a time zone."))
    try:
        if item.type == "date" and len(value) == 10:
            dt.date.fromisoformat(value)
        elif item.type == "dateTime" and "T" in value:
            dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _Invalid(_("Enter a date that exists.")) from exc
    _check_range(item, value)
    return value


def _clean(item: Item, raw_answers: list[Any]) -> list[dict[str, Any]]:
    if not item.answerable:
        raise _Invalid(_("This item cannot be answered."))
    cleaned = [_clean_answer(item, a) for a in raw_answers]
    if len(cleaned) > 1 and not (item.repeats and item.type in ("choice", "open-choice")):
        raise _Invalid(_("Give only one answer."))
    if len({repr(sorted(a.items())) for a in cleaned}) != len(cleaned):
        raise _Invalid(_("The same answer is given twice."))
    if item.readOnly:
        if cleaned and cleaned != item.initial_answers():
            raise _Invalid(_("This item cannot be changed."))
        cleaned = item.initial_answers()
    return cleaned


def response_validate(
    definition: Definition,
    items: Any,
    *,
    check_required: bool | Collection[str] = True,
) -> Validated:
    """Check ``items`` (QuestionnaireResponse.item) against ``definition``.

    ``check_required``: True checks every enabled required item (a submission); False none (a
    draft); a collection of linkIds only those (one page of the web form)."""
    errors: list[ResponseError] = []
    given: dict[str, list[Any]] = {}
    _flatten(items, errors, given)
    by_id = definition.by_link_id()

    answers: dict[str, list[dict[str, Any]]] = {}
    for link_id, raw in given.items():
        item = by_id.get(link_id)
        if item is None:
            errors.append(ResponseError(link_id, _("No question has this linkId.")))
            continue
        if item.type in ("group", "display"):
            if raw:
                errors.append(ResponseError(link_id, _("This item cannot be answered.")))
            continue
        try:
            cleaned = _clean(item, raw)
        except _Invalid as exc:
            errors.append(ResponseError(link_id, str(exc.args[0])))
            continue
        if cleaned:
            answers[link_id] = cleaned
    # Read-only items carry their initial value whether or not the client sent it.
    for item in by_id.values():
        if item.readOnly and item.answerable and item.linkId not in answers and item.initial_answers():
            answers[item.linkId] = item.initial_answers()

    enabled = enabled_items(definition, answers)
    dropped = [link_id for link_id in answers if link_id not in enabled]
    answers = {k: v for k, v in answers.items() if k in enabled}

    already = {e.link_id for e in errors}
    for item in by_id.values():
        if item.linkId in already:  # its own error says enough
            continue
        wanted = check_required is True or (
            not isinstance(check_required, bool) and item.linkId in check_required)
        if not (wanted and item.required and item.linkId in enabled):
            continue
        if item.type == "group":
            if not any(child.linkId in answers for child in item.walk()):
                errors.append(MissingAnswer(item.linkId, _("Answer at least one question here.")))
        elif item.answerable and item.linkId not in answers:
            errors.append(MissingAnswer(item.linkId, _("This question must be answered.")))

    return Validated(items=build_items(definition, answers), errors=errors, dropped=dropped,
                     answers=answers)


def build_items(definition: Definition, answers: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Answers as nested QuestionnaireResponse.item in the questionnaire's order (groups kept
    only where something in them is answered)."""

    def build(items: list[Item]) -> list[dict[str, Any]]:
        out = []
        for item in items:
            entry: dict[str, Any] = {"linkId": item.linkId}
            if item.text:
                entry["text"] = item.text
            children = build(item.item)
            if item.type == "group":
                if not children:
                    continue
                entry["item"] = children
            elif item.linkId in answers:
                entry["answer"] = [dict(a) for a in answers[item.linkId]]
                if children:
                    # FHIR R4 (qrs-1): a question's nested items go under its answer, not beside it.
                    entry["answer"][0]["item"] = children
            elif children:
                entry["item"] = children  # follow-up questions answered, the question itself not
            else:
                continue
            out.append(entry)
        return out

    return build(definition.item)


def flat_answers(items: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """linkId -> answers of stored (already valid) response items."""
    out: dict[str, list[dict[str, Any]]] = {}
    for item in response_items_walk(items):
        if item.get("answer"):
            out[item["linkId"]] = [{k: v for k, v in a.items() if k != "item"} for a in item["answer"]]
    return out
