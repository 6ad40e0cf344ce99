"""Which items of a questionnaire are enabled, given the answers so far (FHIR R4 enableWhen).

Pure: no database, no request. The web form, the draft store and the FHIR endpoint all ask here,
and static/js/questionnaire.js mirrors it in the browser (the server stays authoritative).

Semantics (FHIR R4 QuestionnaireItemOperator):
- ``exists``: whether the question has an answer equals answerBoolean;
- ``=``/``>``/``<``/``>=``/``<=``: at least one answer compares so; no answer → false;
- ``!=``: no answer equals the value — so an unanswered question satisfies ``!=``;
- ``enableBehavior`` any/all combines several conditions (one condition: it alone decides);
- a disabled item disables its descendants, and its answers count as absent for others.

SDC test forms compare a coded answer with a plain value (``answerString: "2"`` or
``answerDecimal: 2.1`` against a Coding whose code is "2.2"); the coding's code is compared then.
"""

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from questionnaires.definition import Definition, EnableWhen, Item

Answers = Mapping[str, list[dict[str, Any]]]


def _value(answer: dict[str, Any]) -> tuple[str, Any]:
    for key, value in answer.items():
        if key.startswith("value"):
            return key, value
    return "", None


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _normal_time(value: str) -> str:
    return value + ":00" if len(value) == 5 else value


def _comparable(kind: str, value: Any) -> Any:
    """A plain Python value to compare: bool, Decimal, str, or (system, code) for codings."""
    if kind.endswith("Coding"):
        return (value or {}).get("system"), (value or {}).get("code")
    if kind.endswith("Boolean"):
        return value
    if kind.endswith(("Integer", "Decimal")):
        return _number(value)
    if kind.endswith("Time") and isinstance(value, str):
        return _normal_time(value)
    return value


def _pair(given_kind: str, given: Any, expected_kind: str, expected: Any) -> tuple[Any, Any] | None:
    """The two sides brought to one type, or None when they cannot be compared."""
    a, b = _comparable(given_kind, given), _comparable(expected_kind, expected)
    a_coding, b_coding = given_kind.endswith("Coding"), expected_kind.endswith("Coding")
    if a_coding and b_coding:
        return a, b
    if a_coding or b_coding:
        # A coded answer against a primitive (or a free-text answer against a coding): the code.
        code = a[1] if a_coding else b[1]
        other = b if a_coding else a
        if isinstance(other, Decimal):
            number = _number(code)
            return ((number, other) if a_coding else (other, number)) if number is not None else None
        if isinstance(other, str):
            return (code, other) if a_coding else (other, code)
        return None
    if isinstance(a, bool) != isinstance(b, bool):
        return None
    if isinstance(a, Decimal) != isinstance(b, Decimal):
        return None
    return a, b


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple):
        (system_a, code_a), (system_b, code_b) = a, b
        return code_a == code_b and not (system_a and system_b and system_a != system_b)
    return bool(a == b)


def _compare(operator: str, a: Any, b: Any) -> bool:
    if operator in ("=", "!="):
        return _equal(a, b)
    if isinstance(a, tuple) or isinstance(b, tuple) or isinstance(a, bool) or a is None or b is None:
        return False
    try:
        return bool({">": a > b, "<": a < b, ">=": a >= b, "<=": a <= b}[operator])
    except TypeError:
        return False


def condition_holds(condition: EnableWhen, answers: list[dict[str, Any]]) -> bool:
    expected_kind, expected = condition.expected()
    if condition.operator == "exists":
        return bool(answers) == bool(expected)
    matches = []
    for answer in answers:
        given_kind, given = _value(answer)
        pair = _pair(given_kind, given, expected_kind, expected)
        matches.append(pair is not None and _compare(condition.operator, *pair))
    if condition.operator == "!=":
        # Here "matches" holds for the answers *equal* to the value.
        return not any(matches)
    return any(matches)


def _item_enabled(item: Item, answers: Answers) -> bool:
    if not item.enableWhen:
        return True
    results = [condition_holds(c, list(answers.get(c.question, []))) for c in item.enableWhen]
    return all(results) if item.enableBehavior == "all" else any(results)


def _enabled_once(items: list[Item], answers: Answers, parent_enabled: bool) -> set[str]:
    out: set[str] = set()
    for item in items:
        on = parent_enabled and _item_enabled(item, answers)
        if on:
            out.add(item.linkId)
        out |= _enabled_once(item.item, answers, on)
    return out


def enabled_items(definition: Definition, answers: Answers) -> set[str]:
    """The linkIds of the enabled items. Answers to disabled items do not count: disabling one
    item can disable another that depends on it, so this repeats until nothing changes."""
    considered: dict[str, list[dict[str, Any]]] = {k: list(v) for k, v in answers.items() if v}
    enabled: set[str] = set()
    # Each round can only disable what an earlier round's answers enabled; a cycle of enableWhen
    # conditions cannot make it run for ever because the round count is bounded.
    for _ in range(len(definition.by_link_id()) + 1):
        enabled = _enabled_once(definition.item, considered, True)
        narrowed = {k: v for k, v in considered.items() if k in enabled}
        if narrowed == considered:
            break
        considered = narrowed
    return enabled
