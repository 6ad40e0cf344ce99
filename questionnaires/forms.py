"""A Django form built from a questionnaire definition: server-side validation of every answer
(type, required, options), rendered without JavaScript."""

from decimal import Decimal
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from questionnaires.definition import Definition, Item

YES_NO = [("true", _("Yes")), ("false", _("No"))]


def field_name(item: Item) -> str:
    return f"q-{item.linkId}"


def _field(item: Item) -> forms.Field | None:
    common: dict[str, Any] = {"label": item.text or item.linkId, "required": item.required}
    if item.type == "boolean":
        return forms.ChoiceField(choices=YES_NO, widget=forms.RadioSelect, **common)
    if item.type == "choice":
        choices = [(o.code, o.display) for o in item.answerOption]
        if item.repeats:
            return forms.MultipleChoiceField(
                choices=choices, widget=forms.CheckboxSelectMultiple, **common
            )
        return forms.ChoiceField(choices=choices, widget=forms.RadioSelect, **common)
    if item.type == "integer":
        return forms.IntegerField(widget=forms.NumberInput(attrs={"inputmode": "numeric"}), **common)
    if item.type == "decimal":
        return forms.DecimalField(
            widget=forms.NumberInput(attrs={"inputmode": "decimal", "step": "any"}), **common
        )
    if item.type == "string":
        return forms.CharField(max_length=item.maxLength or 500, **common)
    if item.type == "text":
        return forms.CharField(max_length=item.maxLength or 5000, widget=forms.Textarea, **common)
    return None  # group and display items carry no answer


class ResponseForm(forms.Form):
    def __init__(self, *args: Any, definition: Definition, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.definition = definition
        for item in definition.items():
            field = _field(item)
            if field is not None:
                self.fields[field_name(item)] = field

    def sections(self) -> list[dict[str, Any]]:
        """Top-level groups with their bound fields and display texts, in order, for the template."""
        sections = []
        for top in self.definition.item:
            entries = []
            for item in top.walk() if top.type == "group" else [top]:
                if item.type == "display":
                    entries.append({"display": item.text})
                elif item.type != "group":
                    entries.append({"field": self[field_name(item)]})
            sections.append({"title": top.text if top.type == "group" else None, "entries": entries})
        return sections

    def fhir_items(self) -> list[dict[str, Any]]:
        """The cleaned answers as FHIR QuestionnaireResponse.item (unanswered items omitted)."""
        return [i for i in (self._fhir_item(item) for item in self.definition.item) if i]

    def _fhir_item(self, item: Item) -> dict[str, Any] | None:
        out: dict[str, Any] = {"linkId": item.linkId}
        if item.text:
            out["text"] = item.text
        if item.type == "group":
            children = [c for c in (self._fhir_item(child) for child in item.item) if c]
            if not children:
                return None
            out["item"] = children
            return out
        if item.type == "display":
            return None
        value = self.cleaned_data.get(field_name(item))
        if value in (None, "", []):
            return None
        out["answer"] = _answers(item, value)
        return out


def _answers(item: Item, value: Any) -> list[dict[str, Any]]:
    if item.type == "boolean":
        return [{"valueBoolean": value == "true"}]
    if item.type == "choice":
        options = {o.code: o for o in item.answerOption}
        chosen = value if isinstance(value, list) else [value]
        answers = []
        for code in chosen:
            option = options[code]
            if option.valueCoding is not None:
                answers.append({"valueCoding": option.valueCoding.model_dump(exclude_none=True)})
            elif option.valueString is not None:
                answers.append({"valueString": option.valueString})
            else:
                answers.append({"valueInteger": option.valueInteger})
        return answers
    if item.type == "integer":
        return [{"valueInteger": int(value)}]
    if item.type == "decimal":
        # FHIR decimals are JSON numbers; keep the digits the patient typed.
        return [{"valueDecimal": float(Decimal(value))}]
    return [{"valueString": str(value)}]
