"""What in a response needs a person soon, read from the answers and the definition alone.

Two facts, used by the patient's receipt (at submission, before any rule has run) and by the
alert rule kind ``safety`` (alerts/rules/safety.py), so the two can never disagree:

- the answers the definition colours red (answer-severity extension, questionnaires.definition);
- whether the patient asked to be contacted (boolean item ``contact`` answered yes, or another
  linkId a rule names).

Pure: no database, no clock. Answers to unknown linkIds carry no colour.
"""

from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

from questionnaires.definition import Definition, Item, response_items_walk

CONTACT_LINK_ID = "contact"


@dataclass(frozen=True)
class Answer:
    """One answer in words, as the questionnaire phrases it in the active language."""

    link_id: str
    question: str
    answer: str
    severity: str  # "red" for a red answer; the contact answer's own colour or "yellow"


@dataclass(frozen=True)
class Signals:
    red: list[Answer] = field(default_factory=list)
    contact: Answer | None = None

    @property
    def any(self) -> bool:
        return bool(self.red) or self.contact is not None


def _shown(item: Item, answer: dict[str, Any], lang: str | None) -> tuple[str | None, str] | None:
    """(colour, answer in words) for one answer, or None when the answer is not one of the item's."""
    if item.type == "boolean":
        if answer.get("valueBoolean") is not True:
            return None
        return item.severity, _("Yes")
    option = item.option_for(answer)
    if option is None:
        return None
    return option.severity, option.display_for(lang)


def safety_signals(definition: Definition, items: list[dict[str, Any]], lang: str | None,
                   contact_link_id: str = CONTACT_LINK_ID) -> Signals:
    """The red answers and the contact request in ``items`` (a QuestionnaireResponse's items)."""
    by_id = definition.by_link_id()
    red: list[Answer] = []
    contact: Answer | None = None
    for given in response_items_walk(items):
        item = by_id.get(given.get("linkId", ""))
        if item is None:
            continue
        for answer in given.get("answer") or []:
            if not isinstance(answer, dict):
                continue  # stored responses are validated; a malformed answer still never crashes a receipt
            hit = _shown(item, answer, lang)
            if hit is None:
                continue
            colour, shown = hit
            question = item.text_for(lang) or item.linkId
            if item.linkId == contact_link_id and item.type == "boolean":
                # The patient asked for a call: never nothing, red if the department coloured it so.
                contact = Answer(item.linkId, question, shown, "red" if colour == "red" else "yellow")
            elif colour == "red":
                red.append(Answer(item.linkId, question, shown, "red"))
    return Signals(red=red, contact=contact)
