"""Declarative scoring of questionnaire responses.

A questionnaire version carries its scoring rules in ``Questionnaire.scoring`` as JSON. The JSON is
parsed here, at the boundary, into ``ScoringSpec``; a malformed spec is refused with a message naming
the offending element (``ScoringSpecError``) rather than scoring something wrong quietly.

The shape, with PHQ-9 as the example (see questionnaires/library/phq-9.scoring.json)::

    {"scales": [{
        "code": {"system": "http://loinc.org", "code": "44261-6", "display": "PHQ-9 total score"},
        "method": "sum",                      # or "mean"
        "items": ["phq9-1", ..., "phq9-9"],   # linkIds whose values are scored
        "reverse_items": [],                  # scored as item_min + item_max - value
        "item_min": 0, "item_max": 3,         # the range of one item; required for reverse items
        "missing": {"max_missing": 1, "prorate": true},
        "round_to": 0,                        # decimals of the result (half up); null = unrounded
        "bands": [{"min": 0, "max": 4, "code": "minimal", "display_da": "...", "display_en": "..."}, ...],
        "subscales": []                       # scales of the same shape, reported after their parent
    }]}

An item's value is the ``ordinalValue`` (or, failing that, ``itemWeight``) extension of the answer
option the patient chose, as defined in *the questionnaire* (never a weight the client sent), or the
number itself for integer/decimal answers. An item with no answer, or an answer the questionnaire
cannot value, counts as missing.
"""

from collections.abc import Iterable, Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, Literal

import pydantic

from questionnaires.definition import contained_answer_options, response_items_walk

if TYPE_CHECKING:
    from questionnaires.models import Questionnaire

ORDINAL_VALUE = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
# R4's older name for the same idea; read when no ordinalValue is given.
ITEM_WEIGHT = "http://hl7.org/fhir/StructureDefinition/itemWeight"
NUMERIC_TYPES = {"integer", "decimal"}


class ScoringSpecError(ValueError):
    """A scoring spec that cannot be used; the message names each problem."""


class _Strict(pydantic.BaseModel):
    # A typo in a scoring spec ("revrse_items") must not silently score without reversal.
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)


class ScoreCode(_Strict):
    system: str = pydantic.Field(min_length=1)
    code: str = pydantic.Field(min_length=1)
    display: str = pydantic.Field(min_length=1)


class Band(_Strict):
    """A severity band; ``min`` and ``max`` are both inclusive."""

    min: Decimal
    max: Decimal
    code: str = pydantic.Field(min_length=1)
    display_da: str = pydantic.Field(min_length=1)
    display_en: str = pydantic.Field(min_length=1)

    @pydantic.model_validator(mode="after")
    def _ordered(self) -> "Band":
        if self.min > self.max:
            raise ValueError(f"band {self.code!r}: min {self.min} is above max {self.max}")
        return self


class MissingRule(_Strict):
    # How many of the scale's items may be unanswered and still give a score.
    max_missing: int = pydantic.Field(default=0, ge=0)
    # Sum scales only: scale the sum of the answered items up to the full item count.
    prorate: bool = False


class Scale(_Strict):
    code: ScoreCode
    method: Literal["sum", "mean"]
    items: list[str] = pydantic.Field(min_length=1)
    reverse_items: list[str] = []
    item_min: Decimal | None = None
    item_max: Decimal | None = None
    missing: MissingRule = MissingRule()
    round_to: int | None = pydantic.Field(default=None, ge=0, le=6)
    bands: list[Band] = []
    subscales: list["Scale"] = []

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> "Scale":
        where = f"scale {self.code.code!r}"
        if len(set(self.items)) != len(self.items):
            raise ValueError(f"{where}: an item is listed twice")
        stray = [i for i in self.reverse_items if i not in self.items]
        if stray:
            raise ValueError(f"{where}: reverse items {stray} are not among the scale's items")
        if self.reverse_items and (self.item_min is None or self.item_max is None):
            raise ValueError(f"{where}: reverse items need item_min and item_max")
        if self.item_min is not None and self.item_max is not None and self.item_min >= self.item_max:
            raise ValueError(f"{where}: item_min must be below item_max")
        if self.missing.max_missing >= len(self.items):
            raise ValueError(f"{where}: max_missing must leave at least one answered item")
        if self.missing.prorate and self.method != "sum":
            raise ValueError(f"{where}: prorate applies to sum scales only (a mean needs none)")
        ordered = sorted(self.bands, key=lambda b: b.min)
        if ordered != self.bands:
            raise ValueError(f"{where}: bands must be listed from lowest to highest")
        for low, high in zip(ordered, ordered[1:], strict=False):
            if high.min <= low.max:
                raise ValueError(f"{where}: bands {low.code!r} and {high.code!r} overlap")
        return self

    def walk(self) -> Iterator["Scale"]:
        yield self
        for sub in self.subscales:
            yield from sub.walk()


class ScoringSpec(_Strict):
    scales: list[Scale] = pydantic.Field(min_length=1)

    def all_scales(self) -> Iterator[Scale]:
        for scale in self.scales:
            yield from scale.walk()

    def link_ids(self) -> set[str]:
        return {link_id for scale in self.all_scales() for link_id in scale.items}


def parse_spec(raw: Any) -> ScoringSpec:
    """Parse stored scoring JSON; raises ScoringSpecError naming every problem."""
    try:
        return ScoringSpec.model_validate(raw)
    except pydantic.ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]) or "spec"
            problems.append(f"{where}: {error['msg']}")
        raise ScoringSpecError("Invalid scoring spec: " + "; ".join(problems)) from exc


# --- the questionnaire side: what each scored item is worth --------------------------------------

class ItemValues(pydantic.BaseModel):
    """What the questionnaire says about one item, for scoring."""

    type: str
    # (system, code) -> value; system None matches any system with that code.
    options: dict[tuple[str | None, str], Decimal] = {}


def _option_value(option: dict[str, Any]) -> Decimal | None:
    # R4 allows ordinalValue on the answerOption and on its Coding (LOINC forms use the latter).
    extensions = [*(option.get("extension") or []), *((option.get("valueCoding") or {}).get("extension") or [])]
    for url in (ORDINAL_VALUE, ITEM_WEIGHT):
        for ext in extensions:
            if ext.get("url") == url and ext.get("valueDecimal") is not None:
                return Decimal(str(ext["valueDecimal"]))
    return None


def _walk_items(items: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Questionnaire items, or response items (with those nested under an answer), at any depth."""
    yield from response_items_walk(list(items))


def item_values(resource: dict[str, Any]) -> dict[str, ItemValues]:
    """linkId -> its type and the value of each answer option, read from a FHIR Questionnaire."""
    found: dict[str, ItemValues] = {}
    for item in _walk_items(resource.get("item") or []):
        options: dict[tuple[str | None, str], Decimal] = {}
        # answerOption, or the codes of a contained ValueSet (HL7's SDC PHQ-9 keeps its ordinal
        # values there), read as the questionnaire's definition reads them.
        listed = item.get("answerOption") or contained_answer_options(resource.get("contained") or [],
                                                                     str(item.get("answerValueSet") or ""))
        for option in listed:
            value = _option_value(option)
            coding = option.get("valueCoding")
            if value is None or not coding or "code" not in coding:
                continue
            options[(coding.get("system"), coding["code"])] = value
        found[item["linkId"]] = ItemValues(type=item.get("type", ""), options=options)
    return found


def spec_problems(spec: ScoringSpec, resource: dict[str, Any]) -> list[str]:
    """Ways a (well-formed) spec does not fit its questionnaire: unknown linkIds, unscorable items."""
    values = item_values(resource)
    problems = []
    for scale in spec.all_scales():
        for link_id in scale.items:
            item = values.get(link_id)
            if item is None:
                problems.append(f"scale {scale.code.code!r}: no item with linkId {link_id!r}")
            elif item.type not in NUMERIC_TYPES and not item.options:
                problems.append(
                    f"scale {scale.code.code!r}: item {link_id!r} has no ordinalValue on its answer options"
                    " and is not a number"
                )
    return problems


# --- the response side -----------------------------------------------------------------------------

def _answered_value(item: ItemValues | None, answers: list[dict[str, Any]]) -> Decimal | None:
    # A scored item takes exactly one answer; several (a repeating item) cannot be valued.
    if item is None or len(answers) != 1:
        return None
    answer = answers[0]
    coding = answer.get("valueCoding")
    if coding is not None:
        code = coding.get("code")
        exact = item.options.get((coding.get("system"), code))
        if exact is not None:
            return exact
        # A coding without a system still matches when the code is unambiguous in this item.
        if coding.get("system") is None:
            hits = [v for (_system, c), v in item.options.items() if c == code]
            return hits[0] if len(hits) == 1 else None
        return None
    for key in ("valueInteger", "valueDecimal"):
        raw = answer.get(key)
        if raw is not None and not isinstance(raw, bool) and item.type in NUMERIC_TYPES:
            return Decimal(str(raw))
    return None


def _number(value: Decimal) -> int | float:
    # Stored as JSON: an int when whole, so a PHQ-9 total reads 9, not 9.0.
    return int(value) if value == value.to_integral_value() else float(value)


def _score_scale(scale: Scale, given: dict[str, Decimal]) -> dict[str, Any]:
    values = []
    for link_id in scale.items:
        value = given.get(link_id)
        if value is None:
            continue
        if link_id in scale.reverse_items:
            assert scale.item_min is not None and scale.item_max is not None  # checked by the spec
            value = scale.item_min + scale.item_max - value
        values.append(value)
    answered, missing = len(values), len(scale.items) - len(values)
    result: dict[str, Any] = {
        "code": scale.code.model_dump(),
        "value": None,
        "band": None,
        "answered": answered,
        "missing": missing,
        "reason_no_score": None,
    }
    if missing > scale.missing.max_missing:
        result["reason_no_score"] = (
            f"{missing} of {len(scale.items)} items unanswered; "
            f"at most {scale.missing.max_missing} may be missing"
        )
        return result
    total = sum(values, Decimal(0))
    if scale.method == "mean":
        score = total / answered
    elif scale.missing.prorate and missing:
        score = total * len(scale.items) / answered
    else:
        score = total
    if scale.round_to is not None:
        score = score.quantize(Decimal(1).scaleb(-scale.round_to), rounding=ROUND_HALF_UP)
    result["value"] = _number(score)
    band = next((b for b in scale.bands if b.min <= score <= b.max), None)
    if band is not None:
        result["band"] = {"code": band.code, "display_da": band.display_da, "display_en": band.display_en}
    return result


def score_items(*, spec: ScoringSpec, resource: dict[str, Any], items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Score response items (FHIR QuestionnaireResponse.item) against a parsed spec and its
    questionnaire resource. One result per scale, subscales after their parent."""
    definitions = item_values(resource)
    wanted = spec.link_ids()
    given: dict[str, Decimal] = {}
    for item in _walk_items(items):
        link_id = item.get("linkId")
        if link_id not in wanted:
            continue
        value = _answered_value(definitions.get(link_id), item.get("answer") or [])
        if value is not None:
            given[link_id] = value
    return [_score_scale(scale, given) for scale in spec.all_scales()]


def score_response(*, questionnaire: "Questionnaire", items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The scores of a response to ``questionnaire``; [] when the version is unscored.

    Pure: reads only the questionnaire's ``resource`` and ``scoring`` and the items given.
    Raises ScoringSpecError when the stored spec is malformed.
    """
    if not questionnaire.scoring:
        return []
    spec = parse_spec(questionnaire.scoring)
    return score_items(spec=spec, resource=questionnaire.resource, items=items)
