"""Editing a published questionnaire's wording, English translation and answer colours in a
form (issue 24): the edit is a new version (questionnaires.services.questionnaire_revise), so
answers given keep the version they were given to."""

import copy
from collections.abc import Iterator
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _l

from proplatform.forms import DescribedForm
from questionnaires.definition import EXT_ANSWER_SEVERITY, EXT_TRANSLATION
from questionnaires.models import Questionnaire

COLOURS = [("", _l("No colour (green)")), ("yellow", _l("Yellow")), ("red", _l("Red"))]


def _walk(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in items:
        yield item
        yield from _walk(item.get("item") or [])


def _english(item: dict[str, Any]) -> str:
    for ext in (item.get("_text") or {}).get("extension") or []:
        if ext.get("url") != EXT_TRANSLATION:
            continue
        parts = {sub.get("url"): sub.get("valueCode") or sub.get("valueString") for sub in ext.get("extension") or []}
        if str(parts.get("lang") or "").lower().startswith("en"):
            return str(parts.get("content") or "")
    return ""


def _option_label(option: dict[str, Any]) -> str:
    coding = option.get("valueCoding") or {}
    return str(coding.get("display") or coding.get("code") or option.get("valueString") or
               option.get("valueInteger") or "")


def _option_colour(option: dict[str, Any]) -> str:
    extensions = (option.get("extension") or []) + ((option.get("valueCoding") or {}).get("extension") or [])
    found = [e.get("valueCode") for e in extensions if e.get("url") == EXT_ANSWER_SEVERITY]
    return "red" if "red" in found else "yellow" if "yellow" in found else ""


class QuestionnaireEditForm(DescribedForm):
    """One fieldset per question: its Danish text, its English text and each answer's colour."""

    def __init__(self, *args: Any, questionnaire: Questionnaire, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.questionnaire = questionnaire
        self.questions: list[dict[str, Any]] = []
        for n, item in enumerate(i for i in _walk(questionnaire.resource.get("item") or [])
                                 if i.get("type") not in ("group", "display")):
            text = f"q{n}_text"
            self.fields[text] = forms.CharField(
                label=_l("Question (Danish)"), initial=item.get("text") or "", max_length=1000,
                error_messages={"required": _l("A question needs its text.")})
            english = f"q{n}_en"
            self.fields[english] = forms.CharField(label=_l("Question (English)"), initial=_english(item),
                                                   required=False, max_length=1000)
            colours = []
            for m, option in enumerate(item.get("answerOption") or []):
                name = f"q{n}_o{m}"
                self.fields[name] = forms.ChoiceField(
                    label=_l("Colour of the answer “%(answer)s”") % {"answer": _option_label(option)},
                    choices=COLOURS, required=False, initial=_option_colour(option))
                colours.append(name)
            self.questions.append({"link_id": item["linkId"], "text": text, "en": english, "colours": colours})
        self.fields["reason"] = forms.CharField(
            label=_l("Why this change?"), max_length=500, widget=forms.Textarea(attrs={"rows": 2}),
            error_messages={"required": _l("Say why the questionnaire is changed.")})

    def rows(self) -> list[dict[str, Any]]:
        return [{"link_id": q["link_id"], "text": self[q["text"]], "en": self[q["en"]],
                 "colours": [self[c] for c in q["colours"]]} for q in self.questions]

    def edited_resource(self) -> dict[str, Any]:
        resource = copy.deepcopy(self.questionnaire.resource)
        items = [i for i in _walk(resource.get("item") or []) if i.get("type") not in ("group", "display")]
        for item, q in zip(items, self.questions, strict=True):
            item["text"] = self.cleaned_data[q["text"]]
            english = self.cleaned_data[q["en"]].strip()
            element = item.setdefault("_text", {})
            kept = [e for e in element.get("extension") or [] if not (
                e.get("url") == EXT_TRANSLATION and any(
                    str(s.get("valueCode") or "").lower().startswith("en") for s in e.get("extension") or []))]
            if english:
                kept.append({"url": EXT_TRANSLATION, "extension": [
                    {"url": "lang", "valueCode": "en"}, {"url": "content", "valueString": english}]})
            if kept:
                element["extension"] = kept
            else:
                item.pop("_text", None)
            for option, name in zip(item.get("answerOption") or [], q["colours"], strict=True):
                colour = self.cleaned_data[name]
                for holder in (option, option.get("valueCoding") or {}):
                    if holder.get("extension"):
                        holder["extension"] = [e for e in holder["extension"] if e.get("url") != EXT_ANSWER_SEVERITY]
                        if not holder["extension"]:
                            holder.pop("extension")
                if colour:
                    option.setdefault("extension", []).append({"url": EXT_ANSWER_SEVERITY, "valueCode": colour})
        return resource
