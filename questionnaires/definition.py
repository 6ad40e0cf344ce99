"""Typed view of a stored FHIR R4 Questionnaire (SDC subset).

The JSON in the database is parsed here at the boundary; the rest of the code works with these
models. ``review()`` lists what the platform cannot honour, each naming the item: *errors* make
an import fail, *warnings* are imported and shown (see ADR 0004), nothing is dropped silently.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any, Literal

import pydantic

EXT = "http://hl7.org/fhir/StructureDefinition/"
EXT_TRANSLATION = EXT + "translation"
EXT_ORDINAL = EXT + "ordinalValue"
EXT_ITEM_WEIGHT = EXT + "itemWeight"
EXT_MIN = EXT + "minValue"
EXT_MAX = EXT + "maxValue"
EXT_ITEM_CONTROL = EXT + "questionnaire-itemControl"
EXT_SLIDER_STEP = EXT + "questionnaire-sliderStepValue"
# Presentation hints whose absence only changes looks: the plain ``text`` they decorate is, by
# the specification, the fallback every renderer may show.
HARMLESS_EXTENSIONS = {
    EXT + "rendering-markdown", EXT + "rendering-xhtml", EXT + "rendering-style",
    EXT + "entryFormat", EXT + "questionnaire-displayCategory",
}
KNOWN_ITEM_EXTENSIONS = {EXT_MIN, EXT_MAX, EXT_ITEM_CONTROL, EXT_SLIDER_STEP, *HARMLESS_EXTENSIONS}
KNOWN_OPTION_EXTENSIONS = {EXT_ORDINAL, EXT_ITEM_WEIGHT}
# The platform's own extensions (e.g. answer-severity, read by the alert rules) are its business.
PLATFORM_EXTENSIONS = "https://proplatform.example/fhir/StructureDefinition/"
# AmbuFlex-style colour of an answer (valueCode yellow|red), read by the answer-severity rule kind:
# on an answerOption it colours that answer; on a boolean item it colours the answer "yes".
EXT_ANSWER_SEVERITY = PLATFORM_EXTENSIONS + "answer-severity"
SEVERITIES = ("yellow", "red")
ITEM_CONTROLS = {"radio-button", "check-box", "drop-down", "slider"}

ANSWERABLE_TYPES = {"boolean", "choice", "open-choice", "integer", "decimal", "string", "text",
                    "date", "dateTime", "time"}
SUPPORTED_TYPES = {"group", "display", *ANSWERABLE_TYPES}
ItemType = Literal[
    "group", "display", "boolean", "choice", "open-choice", "integer", "decimal", "string",
    "text", "date", "dateTime", "time", "url", "attachment", "reference", "quantity", "question",
]
Operator = Literal["exists", "=", "!=", ">", "<", ">=", "<="]
# The value[x] an answer to each item type carries (FHIR R4 QuestionnaireResponse).
VALUE_KEY = {"boolean": "valueBoolean", "integer": "valueInteger", "decimal": "valueDecimal",
             "string": "valueString", "text": "valueString", "date": "valueDate",
             "dateTime": "valueDateTime", "time": "valueTime"}

DATE_RE = re.compile(r"^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?$")
DATETIME_RE = re.compile(
    r"^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01])"
    r"(T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00)))?)?)?$"
)
TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d(:([0-5]\d|60)(\.\d+)?)?$")


class _Fhir(pydantic.BaseModel):
    # FHIR resources carry many elements we do not use; keep them, ignore them.
    model_config = pydantic.ConfigDict(extra="allow", populate_by_name=True)


class Extension(_Fhir):
    url: str
    extension: list["Extension"] = []

    def value(self) -> Any:
        return next((v for k, v in (self.model_extra or {}).items() if k.startswith("value")), None)


class Element(_Fhir):
    """The ``_text``-style sibling of a primitive: only its extensions matter to us."""
    extension: list[Extension] = []


def _translated(base: str | None, element: Element | None, lang: str | None) -> str | None:
    """``base`` in the language asked for, from the translation extension, else ``base``."""
    if element is None or not lang:
        return base
    wanted = lang.lower()
    found: dict[str, str] = {}
    for ext in element.extension:
        if ext.url != EXT_TRANSLATION:
            continue
        parts = {sub.url: sub.value() for sub in ext.extension}
        if isinstance(parts.get("lang"), str) and isinstance(parts.get("content"), str):
            found[parts["lang"].lower()] = parts["content"]
    # "da" matches "da-DK" and the other way round.
    for code, content in found.items():
        if code == wanted or code.split("-")[0] == wanted.split("-")[0]:
            return content
    return base


def _extension_values(extensions: list[Extension], url: str) -> list[Any]:
    return [e.value() for e in extensions if e.url == url]


def _severity(extensions: list[Extension]) -> str | None:
    # The worst colour given wins; unknown codes are refused on import (see _review_item).
    found = [v for v in _extension_values(extensions, EXT_ANSWER_SEVERITY) if v in SEVERITIES]
    return max(found, key=SEVERITIES.index) if found else None


class Coding(_Fhir):
    system: str | None = None
    version: str | None = None
    code: str | None = None
    display: str | None = None
    display_element: Element | None = pydantic.Field(default=None, alias="_display")
    extension: list[Extension] = []

    def display_for(self, lang: str | None) -> str:
        return _translated(self.display, self.display_element, lang) or self.code or ""

    def as_fhir(self) -> dict[str, Any]:
        return {k: v for k, v in (("system", self.system), ("version", self.version),
                                  ("code", self.code), ("display", self.display)) if v is not None}


class AnswerOption(_Fhir):
    valueCoding: Coding | None = None
    valueString: str | None = None
    valueString_element: Element | None = pydantic.Field(default=None, alias="_valueString")
    valueInteger: int | None = None
    valueDate: str | None = None
    valueTime: str | None = None
    initialSelected: bool = False
    extension: list[Extension] = []

    @property
    def key(self) -> str:
        """What the web form posts for this option (the code for codings)."""
        if self.valueCoding is not None:
            return self.valueCoding.code or ""
        value = self.fhir_value()
        return str(next(iter(value.values()))) if value else ""

    def fhir_value(self) -> dict[str, Any]:
        """The option as a QuestionnaireResponse answer (``{"valueCoding": {...}}``)."""
        if self.valueCoding is not None:
            return {"valueCoding": self.valueCoding.as_fhir()}
        for key in ("valueString", "valueInteger", "valueDate", "valueTime"):
            if getattr(self, key) is not None:
                return {key: getattr(self, key)}
        return {}

    def display_for(self, lang: str | None = None) -> str:
        if self.valueCoding is not None:
            return self.valueCoding.display_for(lang)
        if self.valueString is not None:
            return _translated(self.valueString, self.valueString_element, lang) or ""
        return self.key

    @property
    def display(self) -> str:
        return self.display_for(None)

    @property
    def code(self) -> str:
        return self.key

    @property
    def weight(self) -> Decimal | None:
        """ordinalValue (R4) or itemWeight (R5/SDC), on the option or on its coding."""
        extensions = self.extension + (self.valueCoding.extension if self.valueCoding else [])
        for url in (EXT_ORDINAL, EXT_ITEM_WEIGHT):
            for value in _extension_values(extensions, url):
                if isinstance(value, int | float | str) and not isinstance(value, bool):
                    try:
                        return Decimal(str(value))
                    except InvalidOperation:
                        continue
        return None

    @property
    def severity(self) -> str | None:
        """The colour this answer carries (answer-severity extension, on the option or on its
        coding as in a contained ValueSet expansion), or None."""
        return _severity(self.extension + (self.valueCoding.extension if self.valueCoding else []))

    def matches(self, answer: dict[str, Any]) -> bool:
        """Whether a response answer (``{"valueCoding": ...}`` etc.) picks this option."""
        if self.valueCoding is not None:
            given = answer.get("valueCoding")
            if not isinstance(given, dict) or given.get("code") != self.valueCoding.code:
                return False
            # A system given on both sides must agree; a missing one is not held against it.
            return not (given.get("system") and self.valueCoding.system
                        and given["system"] != self.valueCoding.system)
        return bool(self.fhir_value()) and answer == self.fhir_value()


class EnableWhen(_Fhir):
    question: str
    operator: Operator

    def expected(self) -> tuple[str, Any]:
        """(value[x] name, value), e.g. ("answerBoolean", True)."""
        for key, value in (self.model_extra or {}).items():
            if key.startswith("answer"):
                return key, value
        return "", None


class Item(_Fhir):
    linkId: str
    prefix: str | None = None
    text: str | None = None
    text_element: Element | None = pydantic.Field(default=None, alias="_text")
    type: ItemType
    required: bool = False
    repeats: bool = False
    readOnly: bool = False
    maxLength: int | None = pydantic.Field(default=None, ge=1)
    code: list[Coding] = []
    answerOption: list[AnswerOption] = []
    answerValueSet: str | None = None
    initial: list[dict[str, Any]] = []
    enableWhen: list[EnableWhen] = []
    enableBehavior: Literal["all", "any"] | None = None
    extension: list[Extension] = []
    item: list["Item"] = []

    def walk(self) -> Iterator["Item"]:
        yield self
        for child in self.item:
            yield from child.walk()

    def text_for(self, lang: str | None) -> str:
        return _translated(self.text, self.text_element, lang) or ""

    @property
    def answerable(self) -> bool:
        return self.type in ANSWERABLE_TYPES

    @property
    def control(self) -> str | None:
        """The item-control hint (radio-button, check-box, drop-down, slider, ...)."""
        for value in _extension_values(self.extension, EXT_ITEM_CONTROL):
            for coding in (value or {}).get("coding", []):
                if coding.get("code"):
                    return str(coding["code"])
        return None

    def _bound(self, url: str) -> Any:
        values = [v for v in _extension_values(self.extension, url) if v is not None]
        return values[0] if values else None

    @property
    def min_value(self) -> Any:
        return self._bound(EXT_MIN)

    @property
    def max_value(self) -> Any:
        return self._bound(EXT_MAX)

    @property
    def slider_step(self) -> Any:
        return self._bound(EXT_SLIDER_STEP)

    @property
    def severity(self) -> str | None:
        """The colour of the answer "yes" to a boolean item (answer-severity on the item)."""
        return _severity(self.extension) if self.type == "boolean" else None

    @property
    def calculated_score(self) -> bool:
        """Its value is the sum of the ordinal values answered (SDC calculatedExpression), which
        the platform computes as a score (derived_scoring): not a question to put to anyone."""
        return _sum_of_ordinals(self)

    @property
    def is_slider(self) -> bool:
        return (self.control == "slider" and self.type in ("integer", "decimal")
                and self.min_value is not None and self.max_value is not None)

    @property
    def free_text_choice(self) -> bool:
        """A choice whose options live in a value set we cannot expand: answered as text (ADR 0004)."""
        return self.type in ("choice", "open-choice") and not self.answerOption

    def option_for(self, answer: dict[str, Any]) -> AnswerOption | None:
        return next((o for o in self.answerOption if o.matches(answer)), None)

    def initial_answers(self) -> list[dict[str, Any]]:
        """initial[x] (and initialSelected options) as response answers."""
        answers = [{k: v for k, v in i.items() if k.startswith("value")} for i in self.initial]
        answers += [o.fhir_value() for o in self.answerOption if o.initialSelected]
        return [a for a in answers if a]


def contained_answer_options(contained: list[Any], answer_value_set: str) -> list[dict[str, Any]]:
    """The answer options a contained ValueSet (``answerValueSet: "#id"``) lists, as answerOption
    JSON: its ``expansion.contains``, or else its ``compose.include[].concept[]`` when every
    include enumerates its codes (HL7's SDC PHQ-9 ships only a compose). An include with a
    ``filter`` or a ``valueSet`` needs a terminology server: then nothing (ADR 0004: answered in
    free text, with a warning). The concepts' extensions (ordinalValue, the weights the scores
    add up) go with their codings."""
    wanted = answer_value_set[1:] if answer_value_set.startswith("#") else None
    value_set = next((c for c in contained if isinstance(c, dict) and c.get("resourceType") == "ValueSet"
                      and c.get("id") == wanted), None) if wanted else None
    if not isinstance(value_set, dict):
        return []
    codings: list[dict[str, Any]] = []
    contains = (value_set.get("expansion") or {}).get("contains") or []
    if contains:
        codings = [{k: c[k] for k in ("system", "version", "code", "display", "extension") if k in c}
                   for c in contains if isinstance(c, dict) and c.get("code")]
    else:
        includes = (value_set.get("compose") or {}).get("include") or []
        if not includes or any(not isinstance(i, dict) or i.get("filter") or i.get("valueSet") or not i.get("concept")
                                or (value_set.get("compose") or {}).get("exclude") for i in includes):
            return []
        for include in includes:
            for concept in include["concept"]:
                if isinstance(concept, dict) and concept.get("code"):
                    codings.append({**{k: include[k] for k in ("system", "version") if k in include},
                                    **{k: concept[k] for k in ("code", "display", "extension") if k in concept}})
    return [{"valueCoding": coding} for coding in codings]


def response_items_walk(items: Any) -> Iterator[dict[str, Any]]:
    """Every item of a QuestionnaireResponse at any depth: under ``item`` (groups) and under
    ``answer[].item`` (questions nested under a question, where FHIR R4 puts them)."""
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        yield item
        yield from response_items_walk(item.get("item"))
        for answer in item.get("answer") or []:
            if isinstance(answer, dict):
                yield from response_items_walk(answer.get("item"))


# SDC's calculatedExpression for "the sum of the chosen answers' ordinal values" (HL7's PHQ-9
# example): the platform computes it as a scale (questionnaires.scoring), so it is honoured.
EXT_CALCULATED = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression"
SUM_OF_ORDINALS = {"%resource.answers().value.ordinal().sum()", "%resource.item.answer.value.ordinal().sum()",
                   "%resource.repeat(item).answer.value.ordinal().sum()"}


def _sum_of_ordinals(item: "Item") -> bool:
    for value in _extension_values(item.extension, EXT_CALCULATED):
        expression = (value or {}).get("expression") if isinstance(value, dict) else None
        if isinstance(expression, str) and "".join(expression.split()) in SUM_OF_ORDINALS:
            return True
    return False


def derived_scoring(definition: "Definition") -> dict[str, Any] | None:
    """A scoring spec (questionnaires.scoring) for an item whose calculatedExpression sums the
    ordinal values of every answer: the scale sums the items whose options carry ordinal values,
    coded as the calculated item is. None when there is no such item (or it carries no code)."""
    for total in definition.items():
        if not _sum_of_ordinals(total) or not total.code:
            continue
        scored = [i.linkId for i in definition.items()
                  if i.answerOption and all(o.weight is not None for o in i.answerOption)]
        code = total.code[0]
        if not scored or not (code.system and code.code):
            continue
        return {"scales": [{"code": {"system": code.system, "code": code.code,
                                     "display": code.display or total.text or code.code},
                            "method": "sum", "items": scored}]}
    return None


@dataclass(frozen=True)
class Issue:
    """Something in a Questionnaire the platform cannot honour as written."""
    severity: Literal["error", "warning"]
    link_id: str | None
    message: str

    def __str__(self) -> str:
        where = f"item {self.link_id!r}: " if self.link_id else ""
        return f"{where}{self.message}"


class Definition(_Fhir):
    resourceType: Literal["Questionnaire"]
    id: str | None = None
    url: str | None = None
    version: str | None = None
    name: str | None = None
    title: str | None = None
    title_element: Element | None = pydantic.Field(default=None, alias="_title")
    status: Literal["draft", "active", "retired", "unknown"]
    language: str | None = None
    contained: list[dict[str, Any]] = []
    extension: list[Extension] = []
    item: list[Item] = []

    @pydantic.model_validator(mode="after")
    def _expand_contained_value_sets(self) -> "Definition":
        """``answerValueSet: "#id"`` naming a contained ValueSet that lists its codes is as good
        as answerOption: it travels with the questionnaire, so it works offline."""
        for item in self.items():
            if item.answerOption or not (item.answerValueSet or "").startswith("#"):
                continue
            item.answerOption = [AnswerOption.model_validate(o)
                                 for o in contained_answer_options(self.contained, item.answerValueSet or "")]
        return self

    def items(self) -> Iterator[Item]:
        for item in self.item:
            yield from item.walk()

    def by_link_id(self) -> dict[str, Item]:
        return {i.linkId: i for i in self.items()}

    def parents(self) -> dict[str, Item | None]:
        out: dict[str, Item | None] = {}

        def visit(items: list[Item], parent: Item | None) -> None:
            for item in items:
                out[item.linkId] = parent
                visit(item.item, item)

        visit(self.item, None)
        return out

    def title_for(self, lang: str | None) -> str:
        return _translated(self.title, self.title_element, lang) or self.name or self.url or ""

    def unsupported(self) -> list[str]:
        """Human-readable reasons an import fails (the errors of ``review``)."""
        return [str(i) for i in self.review() if i.severity == "error"]

    def review(self) -> list[Issue]:
        """Everything this platform cannot honour as written, each naming its item."""
        issues: list[Issue] = []
        by_id: dict[str, Item] = {}
        for item in self.items():
            if item.linkId in by_id:
                issues.append(Issue("error", item.linkId, "linkId is used twice"))
            by_id[item.linkId] = item
        for ext in self.extension:
            if ext.url not in HARMLESS_EXTENSIONS and not ext.url.startswith(PLATFORM_EXTENSIONS):
                issues.append(Issue("warning", None, f"extension {ext.url} is ignored"))
        for item in self.items():
            issues.extend(_review_item(item, by_id))
        return issues


def _review_item(item: Item, by_id: dict[str, Item]) -> Iterator[Issue]:
    """What the reviewer is told about one item, in this order: its type and answer options, its
    extensions, its controls and expressions, its enableWhen."""
    yield from _review_type(item)
    yield from _review_extensions(item)
    yield from _review_controls(item)
    yield from _review_enable_when(item, by_id)


def _review_type(item: Item) -> Iterator[Issue]:
    error = partial(Issue, "error", item.linkId)
    warning = partial(Issue, "warning", item.linkId)
    if item.type not in SUPPORTED_TYPES and item.calculated_score:
        pass  # computed as a score, not asked (derived_scoring)
    elif item.type not in SUPPORTED_TYPES:
        if item.required:
            yield error(f"item type {item.type!r} cannot be answered here, and the item is required")
        else:
            yield warning(f"item type {item.type!r} cannot be answered here; it is shown as a note")
    if item.item and item.type == "display":
        # FHIR R4 que-1: a display item cannot have nested items.
        yield error("items nested under a display item are not allowed (FHIR que-1); use a group")
    if item.type == "group" and item.repeats:
        yield warning("a repeating group is shown once")
    if item.repeats and item.type not in ("choice", "open-choice", "group"):
        yield warning("only one answer is taken for this item (repeats is honoured for choice items)")
    if item.type in ("choice", "open-choice"):
        keys = [o.key for o in item.answerOption]
        if len(set(keys)) != len(keys):
            yield error("two answer options have the same code")
        if not item.answerOption:
            if item.answerValueSet:
                yield warning(f"answerValueSet {item.answerValueSet} cannot be expanded here; the "
                              "question is answered in free text (ADR 0004)")
            else:
                yield error("a choice item needs answerOption or answerValueSet")
    elif item.answerOption or item.answerValueSet:
        yield warning("answer options on a non-choice item are ignored")


def _review_extensions(item: Item) -> Iterator[Issue]:
    warning = partial(Issue, "warning", item.linkId)
    error = partial(Issue, "error", item.linkId)
    for ext in item.extension:
        if ext.url == EXT_CALCULATED and _sum_of_ordinals(item):
            continue  # computed as a scale (derived_scoring)
        if ext.url not in KNOWN_ITEM_EXTENSIONS and not ext.url.startswith(PLATFORM_EXTENSIONS):
            name = ext.url.rsplit("/", 1)[-1]
            yield warning(f"extension {name} ({ext.url}) is ignored")
    for option in item.answerOption:
        for ext in option.extension:
            if ext.url not in KNOWN_OPTION_EXTENSIONS and not ext.url.startswith(PLATFORM_EXTENSIONS):
                yield warning(f"answer option extension {ext.url} is ignored")
    # A misspelt colour would silently never alert: refuse it.
    holders: list[tuple[Item | AnswerOption, str]] = [
        (item, "the item"), *((o, f"answer option {o.key!r}") for o in item.answerOption)]
    for holder, where in holders:
        for value in _extension_values(holder.extension, EXT_ANSWER_SEVERITY):
            if value not in SEVERITIES:
                yield error(f"answer-severity on {where} must be 'yellow' or 'red', not {value!r}")
    if item.type != "boolean" and _extension_values(item.extension, EXT_ANSWER_SEVERITY):
        yield warning("answer-severity on a non-boolean item is ignored; put it on its answer options")


def _review_controls(item: Item) -> Iterator[Issue]:
    error = partial(Issue, "error", item.linkId)
    warning = partial(Issue, "warning", item.linkId)
    control = item.control
    if control is not None and control not in ITEM_CONTROLS:
        yield warning(f"item control {control!r} is not supported; the default control is used")
    if control == "slider" and not item.is_slider:
        yield warning("a slider needs an integer or decimal item with minValue and maxValue; "
                      "a number field is used")
    for other in ("answerExpression", "initialExpression", "calculatedExpression",
                  "enableWhenExpression", "candidateExpression"):
        # Expressions usually arrive as extensions (reported above); as elements they are
        # equally ignored.
        if (item.model_extra or {}).get(other):
            yield warning(f"{other} is ignored")
    if item.readOnly and item.required and not item.initial_answers():
        yield error("a read-only required item needs an initial value")


def _review_enable_when(item: Item, by_id: dict[str, Item]) -> Iterator[Issue]:
    error = partial(Issue, "error", item.linkId)
    for condition in item.enableWhen:
        source = by_id.get(condition.question)
        kind, value = condition.expected()
        if source is None:
            yield error(f"enableWhen refers to unknown item {condition.question!r}")
        elif not source.answerable:
            yield error(f"enableWhen refers to {condition.question!r}, which has no answers")
        if not kind:
            yield error("enableWhen needs an answer[x]")
        elif condition.operator == "exists" and kind != "answerBoolean":
            yield error("enableWhen 'exists' needs answerBoolean")
    if len(item.enableWhen) > 1 and item.enableBehavior is None:
        yield error("enableBehavior is required when there is more than one enableWhen")


def parse(resource: dict[str, Any]) -> Definition:
    return Definition.model_validate(resource)


def to_decimal(value: Any) -> Decimal:
    return Decimal(str(value))
