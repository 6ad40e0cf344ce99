"""An answer in a questionnaire response: fires when item ``link_id`` was answered with one of
``codes`` (e.g. "Do you want us to contact you?" = yes)."""

from typing import TYPE_CHECKING

import pydantic
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l

from alerts.rules.form_spec import (
    AnswerPick,
    ItemPick,
)

if TYPE_CHECKING:
    from alerts.rules import Finding
    from alerts.rules.context import Context
    from questionnaires.models import QuestionnaireResponse


class Params(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    questionnaire: str  # canonical URL of the questionnaire (any version)
    link_id: str
    codes: list[str] = pydantic.Field(min_length=1)


def evaluate_response(params: Params, response: "QuestionnaireResponse", ctx: "Context") -> "Finding | None":
    from alerts.rules import Finding

    if response.questionnaire.url != params.questionnaire:
        return None
    for answer in response.answers_for(params.link_id):
        if answer.code in params.codes:
            return Finding(
                reason=_("Answered “%(answer)s” to “%(question)s”.")
                % {"answer": answer.display, "question": answer.question},
                evidence={
                    "response_id": response.pk,
                    "link_id": params.link_id,
                    "question": answer.question,
                    "answer": answer.display,
                    "code": answer.code,
                    "authored_at": response.authored_at.isoformat(),
                },
            )
    return None


# How the editor asks for the parameters (alerts.rules.form_spec, issue 24).
FORM = (
    ItemPick("questionnaire", "link_id", _l("Question"), _l("E.g. \"Do you want us to contact you?\"")),
    AnswerPick("codes", _l("Answers that raise the alert"), _l("E.g. \"Yes\".")),
)
CHECKS = ()
