"""Typed view of a stored FHIR R4 Questionnaire (SDC subset).

The JSON in the database is parsed here at the boundary; the rest of the code works with these
models. Features the platform does not yet render are reported by ``unsupported()`` so an
import can refuse them with a message naming the item, rather than drop them silently.
"""

from collections.abc import Iterator
from decimal import Decimal
from typing import Any, Literal

import pydantic

SUPPORTED_TYPES = {"group", "display", "boolean", "choice", "integer", "decimal", "string", "text"}
ItemType = Literal[
    "group", "display", "boolean", "choice", "open-choice", "integer", "decimal", "string",
    "text", "date", "dateTime", "time", "url", "attachment", "reference", "quantity", "question",
]


class _Fhir(pydantic.BaseModel):
    # FHIR resources carry many elements we do not use; keep them, ignore them.
    model_config = pydantic.ConfigDict(extra="allow", populate_by_name=True)


class Coding(_Fhir):
    system: str | None = None
    code: str
    display: str | None = None


class AnswerOption(_Fhir):
    valueCoding: Coding | None = None
    valueString: str | None = None
    valueInteger: int | None = None

    @property
    def code(self) -> str:
        if self.valueCoding is not None:
            return self.valueCoding.code
        return str(self.valueString if self.valueString is not None else self.valueInteger)

    @property
    def display(self) -> str:
        if self.valueCoding is not None:
            return self.valueCoding.display or self.valueCoding.code
        return self.code


class Item(_Fhir):
    linkId: str
    text: str | None = None
    type: ItemType
    required: bool = False
    repeats: bool = False
    readOnly: bool = False
    maxLength: int | None = None
    code: list[Coding] = []
    answerOption: list[AnswerOption] = []
    item: list["Item"] = []

    def walk(self) -> Iterator["Item"]:
        yield self
        for child in self.item:
            yield from child.walk()


class Definition(_Fhir):
    resourceType: Literal["Questionnaire"]
    url: str | None = None
    version: str | None = None
    name: str | None = None
    title: str | None = None
    status: Literal["draft", "active", "retired", "unknown"]
    item: list[Item] = []

    def items(self) -> Iterator[Item]:
        for item in self.item:
            yield from item.walk()

    def by_link_id(self) -> dict[str, Item]:
        return {i.linkId: i for i in self.items()}

    def unsupported(self) -> list[str]:
        """Human-readable reasons this definition cannot be rendered faithfully yet."""
        problems = []
        seen: set[str] = set()
        for item in self.items():
            where = f"item {item.linkId!r}"
            if item.linkId in seen:
                problems.append(f"{where}: linkId is used twice")
            seen.add(item.linkId)
            if item.type not in SUPPORTED_TYPES:
                problems.append(f"{where}: item type {item.type!r} is not supported yet")
            for element in ("enableWhen", "answerValueSet", "initial", "extension"):
                if getattr(item, "model_extra", {}).get(element):
                    problems.append(f"{where}: {element} is not supported yet")
            if item.type == "choice" and not item.answerOption:
                problems.append(f"{where}: a choice item needs answerOption")
        return problems


def parse(resource: dict[str, Any]) -> Definition:
    return Definition.model_validate(resource)


def to_decimal(value: Any) -> Decimal:
    return Decimal(str(value))
