"""Editing a published questionnaire's wording, English translation, answer colours and contact
question in a form (issue 24): the edit is a new version (questionnaires.services.questionnaire_revise),
so answers given keep the version they were given to.

The contact question ("Vil du gerne kontaktes af os?") is the yes/no item whose linkId is
``contact``: the patient's receipt, the review colours and every programme's safety net look for
that linkId (questionnaires.safety.CONTACT_LINK_ID). Making another yes/no question the contact
question therefore renames its linkId in the new version; a questionnaire that has a contact
question cannot lose it here (a "contact me" that reaches nobody is the failure this prevents)."""

import copy
from collections.abc import Iterator
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _l

from proplatform.forms import DescribedForm
from questionnaires.definition import EXT_ANSWER_SEVERITY, EXT_TRANSLATION
from questionnaires.models import Questionnaire
from questionnaires.safety import CONTACT_LINK_ID

COLOURS = [("", _l("No colour (green)")), ("yellow", _l("Yellow")), ("red", _l("Red"))]
# The library instruments' wording (questionnaires/library/*.json), offered for a new contact question.
CONTACT_DA = "Vil du gerne kontaktes af os?"
CONTACT_EN = "Do you want us to contact you?"
ADD_CONTACT = "+add"
# "Yes" to the contact question is always at least yellow (questionnaires.safety); red if chosen.
CONTACT_COLOURS = [("yellow", _l("Yellow (seen the same working day)")), ("red", _l("Red (seen at once)"))]


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


def _set_english(item: dict[str, Any], english: str) -> None:
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


def _item_colour(item: dict[str, Any]) -> str:
    found = [e.get("valueCode") for e in item.get("extension") or [] if e.get("url") == EXT_ANSWER_SEVERITY]
    return "red" if "red" in found else "yellow" if "yellow" in found else ""


def _rename_link_id(items: list[dict[str, Any]], old: str, new: str) -> None:
    """``old`` becomes ``new`` on the item and in every enableWhen that refers to it."""
    for item in _walk(items):
        if item.get("linkId") == old:
            item["linkId"] = new
        for condition in item.get("enableWhen") or []:
            if condition.get("question") == old:
                condition["question"] = new


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
        answerable = [i for i in _walk(questionnaire.resource.get("item") or [])
                      if i.get("type") not in ("group", "display")]
        self.contact = next((i for i in answerable if i.get("linkId") == CONTACT_LINK_ID
                             and i.get("type") == "boolean"), None)
        for n, item in enumerate(answerable):
            if item is self.contact:
                continue  # in its own fieldset below
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
        self._contact_fields(answerable)
        self.fields["reason"] = forms.CharField(
            label=_l("Why this change?"), max_length=500, widget=forms.Textarea(attrs={"rows": 2}),
            error_messages={"required": _l("Say why the questionnaire is changed.")})

    def _contact_fields(self, answerable: list[dict[str, Any]]) -> None:
        if self.contact is not None:
            choices = [(CONTACT_LINK_ID, self.contact.get("text") or CONTACT_LINK_ID)]
            initial = CONTACT_LINK_ID
        else:
            yes_no = [(i["linkId"], _l("Make “%(text)s” the contact question") % {"text": i.get("text") or i["linkId"]})
                      for i in answerable if i.get("type") == "boolean"]
            choices = [("", _l("No contact question")), *yes_no,
                       (ADD_CONTACT, _l("Add the contact question at the end"))]
            initial = ADD_CONTACT
        self.fields["contact_item"] = forms.ChoiceField(
            label=_l("Which question is the contact question"), choices=choices, initial=initial, required=False,
            help_text=_l("“Yes” to it puts the patient on the worklist, at least yellow, in every programme."))
        self.fields["contact_text"] = forms.CharField(
            label=_l("Contact question (Danish)"), max_length=1000, required=False,
            initial=(self.contact or {}).get("text") or CONTACT_DA)
        self.fields["contact_en"] = forms.CharField(
            label=_l("Contact question (English)"), max_length=1000, required=False,
            initial=_english(self.contact) if self.contact is not None else CONTACT_EN)
        self.fields["contact_colour"] = forms.ChoiceField(
            label=_l("Colour of the answer “Yes”"), choices=CONTACT_COLOURS, required=False,
            initial=_item_colour(self.contact) if self.contact is not None and _item_colour(self.contact) else "yellow")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        chosen = cleaned.get("contact_item") or ""
        if chosen and not (cleaned.get("contact_text") or "").strip():
            self.add_error("contact_text", _l("The contact question needs its text."))
        if chosen and chosen not in (CONTACT_LINK_ID, ADD_CONTACT):
            from alerts.models import Rule

            # Renaming the item's linkId would leave a rule that names it without answers.
            naming = [r.name for r in Rule.objects.filter(params__link_id=chosen, safety_net_for="")
                      if r.params.get("questionnaire") in (None, self.questionnaire.url)]
            if naming:
                self.add_error("contact_item", _l("The rule “%(rule)s” uses this question; change the rule first, "
                                                  "or add the contact question at the end.") % {"rule": naming[0]})
        return cleaned

    def contact_rows(self) -> dict[str, Any]:
        return {"item": self["contact_item"], "text": self["contact_text"], "en": self["contact_en"],
                "colour": self["contact_colour"], "link_id": CONTACT_LINK_ID if self.contact is not None else ""}

    def _edit_contact(self, resource: dict[str, Any]) -> None:
        chosen = self.cleaned_data.get("contact_item") or ""
        if not chosen:
            return
        items = resource.setdefault("item", [])
        if chosen == ADD_CONTACT:
            item: dict[str, Any] = {"linkId": CONTACT_LINK_ID, "type": "boolean", "required": True}
            items.append(item)
        else:
            if chosen != CONTACT_LINK_ID:
                _rename_link_id(items, chosen, CONTACT_LINK_ID)
            item = next(i for i in _walk(items) if i.get("linkId") == CONTACT_LINK_ID)
        item["text"] = self.cleaned_data["contact_text"].strip()
        _set_english(item, self.cleaned_data["contact_en"].strip())
        # Yellow is what "yes" to the contact question always is at least: only red is written.
        kept = [e for e in item.get("extension") or [] if e.get("url") != EXT_ANSWER_SEVERITY]
        if self.cleaned_data.get("contact_colour") == "red":
            kept.append({"url": EXT_ANSWER_SEVERITY, "valueCode": "red"})
        if kept:
            item["extension"] = kept
        else:
            item.pop("extension", None)

    def rows(self) -> list[dict[str, Any]]:
        return [{"link_id": q["link_id"], "text": self[q["text"]], "en": self[q["en"]],
                 "colours": [self[c] for c in q["colours"]]} for q in self.questions]

    def edited_resource(self) -> dict[str, Any]:
        resource = copy.deepcopy(self.questionnaire.resource)
        items = [i for i in _walk(resource.get("item") or []) if i.get("type") not in ("group", "display")
                 and not (self.contact is not None and i.get("linkId") == CONTACT_LINK_ID)]
        for item, q in zip(items, self.questions, strict=True):
            item["text"] = self.cleaned_data[q["text"]]
            _set_english(item, self.cleaned_data[q["en"]].strip())
            for option, name in zip(item.get("answerOption") or [], q["colours"], strict=True):
                colour = self.cleaned_data[name]
                for holder in (option, option.get("valueCoding") or {}):
                    if holder.get("extension"):
                        holder["extension"] = [e for e in holder["extension"] if e.get("url") != EXT_ANSWER_SEVERITY]
                        if not holder["extension"]:
                            holder.pop("extension")
                if colour:
                    option.setdefault("extension", []).append({"url": EXT_ANSWER_SEVERITY, "valueCode": colour})
        # After the questions' own wording: a question made the contact question takes its words.
        self._edit_contact(resource)
        return resource
