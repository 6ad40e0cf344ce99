"""An instrument's safety net: the answers that must reach a person whatever the programme's
own rules say (issue 19).

Fires on a response to ``questionnaire`` (canonical URL, any version) when

- an answer is coloured red by the version answered (answer-severity extension): red, on its
  own — PHQ-9 item 9 "Flere dage" with every other item "Slet ikke" is a red alert, even
  though the score is 1;
- the contact question (``contact_link_id``) is answered yes: at least yellow (the patient
  asked for a call).

Yellow answers are the programme's business (an ``answer-severity`` rule), not the net's.
The facts come from questionnaires.safety, which the patient's receipt reads too.

One such rule exists per programme and instrument (``Rule.safety_net_for``), created by
alerts.safety when a questionnaire joins a programme and again at evaluation if missing; a
switched-off one (with a reason) stays off. Where an active ``answer-severity`` rule of the same
programme reports the same response at least as red, alerts.services drops this finding so the
nurse sees one alert, not two.
"""

from typing import TYPE_CHECKING

import pydantic
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from questionnaires.safety import CONTACT_LINK_ID, safety_signals

if TYPE_CHECKING:
    from alerts.rules import Finding
    from alerts.rules.context import Context
    from questionnaires.models import QuestionnaireResponse


class Params(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    questionnaire: str = pydantic.Field(min_length=1)  # canonical URL (any version)
    contact_link_id: str = pydantic.Field(default=CONTACT_LINK_ID, min_length=1)


def evaluate_response(params: Params, response: "QuestionnaireResponse", ctx: "Context") -> "Finding | None":
    from alerts.rules import Finding

    if response.questionnaire.url != params.questionnaire:
        return None
    signals = safety_signals(response.questionnaire.definition, response.items, get_language(),
                             params.contact_link_id)
    if not signals.any:
        return None
    given = [*signals.red, *([signals.contact] if signals.contact else [])]
    colour = "red" if any(a.severity == "red" for a in given) else "yellow"
    parts = []
    if signals.red:
        parts.append(_("Red answers: %(answers)s.") % {
            "answers": "; ".join(f"“{a.question}”: {a.answer}" for a in signals.red)})
    if signals.contact:
        parts.append(_("The patient asks to be contacted."))
    return Finding(
        reason=" ".join(parts),
        evidence={
            "response_id": response.pk,
            "questionnaire": response.questionnaire.url,
            "version": response.questionnaire.version,
            "authored_at": response.authored_at.isoformat(),
            "answers": [{"link_id": a.link_id, "question": a.question, "answer": a.answer, "severity": a.severity}
                        for a in given],
            "safety_net": True,
        },
        severity=colour,
    )
