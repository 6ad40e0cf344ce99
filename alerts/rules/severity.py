"""Per-answer colours in a questionnaire (AmbuFlex): the response takes the worst colour of the
answers given.

The colours live in the questionnaire definition, not in the rule: extension
``https://proplatform.example/fhir/StructureDefinition/answer-severity`` (valueCode ``yellow`` or
``red``) on an answerOption colours that answer; on a boolean item it colours the answer "yes"
(questionnaires/definition.py parses it; questionnaires/library/SOURCES.md describes it). Each
response is judged against the version it answered, so a new version with other colours
changes the judgement of new responses only.

"Do you want us to contact you?" answered yes (linkId ``contact`` in every library instrument;
``contact_link_id`` for others) is always at least yellow, whatever colour its definition
gives: the patient asked for a call. ``at_least: red`` makes the rule fire on red responses only.

The reason lists the answers at the response's colour, in the questionnaire's wording in the
active language, and then the answers of the lower colour.

Red answers and "contact me" also reach a person without such a rule: every instrument brings its
safety net (``safety``, alerts/rules/safety.py), which stands back where this rule reports the
same response at least as red (alerts.services._safety_stands_back).
"""

from typing import TYPE_CHECKING, Any, Literal

import pydantic
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l

from alerts.rules.form_spec import (
    Choice,
    QuestionnairePick,
)
from questionnaires.definition import Item, response_items_walk
from questionnaires.review import answer_colour

if TYPE_CHECKING:
    from alerts.rules import Finding
    from alerts.rules.context import Context
    from questionnaires.models import QuestionnaireResponse

RANK = {"yellow": 1, "red": 2}


class Params(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    # Canonical URL of the questionnaire (any version); None = every questionnaire of the programme.
    questionnaire: str | None = pydantic.Field(default=None, min_length=1)
    contact_link_id: str = pydantic.Field(default="contact", min_length=1)
    at_least: Literal["yellow", "red"] = "yellow"


def _coloured(item: Item, answer: dict[str, Any], lang: str | None, contact_link_id: str) -> tuple[str, str] | None:
    """(colour, answer in words) for one answer, or None when it carries no colour. The colour
    is the review queue's too (questionnaires.review.answer_colour): one home for the rule."""
    colour = answer_colour(item, answer, contact_link_id)
    if not colour:
        return None
    if item.type == "boolean":
        return colour, _("Yes")
    option = item.option_for(answer)
    return (colour, option.display_for(lang)) if option is not None else None


def answer_colours(response: "QuestionnaireResponse", *, contact_link_id: str = "contact",
                   definition: Any = None) -> list[dict[str, str]]:
    """The coloured answers of a response, in the order given: link_id, question and answer in
    the active language, severity. Also what the clinician's patient page shows beside a response
    (which passes the parsed ``definition`` of a version it shows many responses of)."""
    by_id = (definition or response.questionnaire.definition).by_link_id()
    lang = get_language()
    found: list[dict[str, str]] = []
    for given in response_items_walk(response.items):
        item = by_id.get(given.get("linkId", ""))
        if item is None:
            continue
        for answer in given.get("answer") or []:
            hit = _coloured(item, answer, lang, contact_link_id)
            if hit is not None:
                found.append({"link_id": item.linkId, "question": item.text_for(lang) or item.linkId,
                              "answer": hit[1], "severity": hit[0]})
    return found


def evaluate_response(params: Params, response: "QuestionnaireResponse", ctx: "Context") -> "Finding | None":
    from alerts.rules import Finding

    if params.questionnaire is not None and response.questionnaire.url != params.questionnaire:
        return None
    found = answer_colours(response, contact_link_id=params.contact_link_id)
    if not found:
        return None
    colour = max((f["severity"] for f in found), key=RANK.__getitem__)
    if RANK[colour] < RANK[params.at_least]:
        return None

    def listed(severity: str) -> str:
        return "; ".join(f"“{f['question']}”: {f['answer']}" for f in found if f["severity"] == severity)

    reason = (_("Red answers: %(answers)s.") if colour == "red" else _("Yellow answers: %(answers)s.")) % {
        "answers": listed(colour)}
    if colour == "red" and any(f["severity"] == "yellow" for f in found):
        reason += " " + _("Also yellow: %(answers)s.") % {"answers": listed("yellow")}
    return Finding(
        reason=reason,
        evidence={
            "response_id": response.pk,
            "questionnaire": response.questionnaire.url,
            "version": response.questionnaire.version,
            "authored_at": response.authored_at.isoformat(),
            "answers": found,
        },
        severity=colour,
    )


# How the editor asks for the parameters (alerts.rules.form_spec, issue 24).
FORM = (
    QuestionnairePick("questionnaire", _l("Questionnaire"), _l("Leave empty for every questionnaire of the programme."),
                      required=False),
    Choice("at_least", _l("Contact request raises at least"), (("yellow", _l("Yellow")), ("red", _l("Red"))),
           _l("The colour of a \"contact me\" answer; the answers' own colours come from the questionnaire."),
           initial="yellow"),
)
CHECKS = ()
