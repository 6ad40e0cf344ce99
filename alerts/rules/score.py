"""Score thresholds and worsening (Basch: a symptom worse by 2 grades or more is a warning sign).

Watches either one score of the response (``score``: its code, e.g. PHQ-9 total "44261-6", as
stored on QuestionnaireResponse.scores by questionnaires.scoring) or the grades of symptom items
(``items``: linkIds; a grade is the ordinalValue/itemWeight of the chosen answer option in the
questionnaire *version that was answered*, or the number of an integer/decimal item).

- ``limit``: fires when the value is at or beyond it — ``>= limit`` when higher is worse (the
  default), ``<= limit`` with ``higher_is_worse: false``. PHQ-9 ``limit: 10`` fires at 10.
- ``worse_by``: fires when the value moved towards worse by at least this much — a 1 → 3
  change with ``worse_by: 2`` fires, 1 → 2 does not — compared with ``against``:
  ``previous``: the patient's latest earlier completed response to the same questionnaire,
    *any version* with the same canonical url (questionnaires get new versions; the item's
    linkId or the score's code must still be there, else there is nothing to compare);
  ``baseline``: the pre-treatment answer — the last response on or before the day treatment
    started, else the first one after (alerts.rules.context.Context.baseline_response).
  With no earlier response (the first one) nothing is compared.
With ``items``, each item is judged on its own; the reason names every item that fired.
The severity is the rule's. "Earlier" is by authored time, as of the response being judged.
"""

from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import pydantic
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l

from alerts.rules.form_spec import (
    Choice,
    ItemsPick,
    Number,
    OneOf,
    QuestionnairePick,
)
from questionnaires import definition as qdef

if TYPE_CHECKING:
    from alerts.rules import Finding
    from alerts.rules.context import Context, PastResponse
    from questionnaires.models import QuestionnaireResponse


class Params(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    questionnaire: str = pydantic.Field(min_length=1)  # canonical URL (any version)
    score: str | None = pydantic.Field(default=None, min_length=1)  # a score code on the response
    items: list[str] = []  # linkIds of graded items
    higher_is_worse: bool = True
    limit: Decimal | None = None
    worse_by: Decimal | None = None
    against: Literal["previous", "baseline"] = "previous"

    @pydantic.model_validator(mode="after")
    def _check(self) -> "Params":
        if (self.score is None) == (not self.items):
            raise ValueError("give either score (a score code) or items (linkIds), not both")
        if len(set(self.items)) != len(self.items):
            raise ValueError("an item is listed twice")
        if self.limit is None and self.worse_by is None:
            raise ValueError("give limit, worse_by or both")
        if self.worse_by is not None and self.worse_by <= 0:
            raise ValueError("worse_by must be more than 0")
        return self


def _score_values(scores: list[dict[str, Any]], code: str) -> tuple[Decimal, str] | None:
    for score in scores or []:
        if (score.get("code") or {}).get("code") == code and score.get("value") is not None:
            return Decimal(str(score["value"])), (score.get("code") or {}).get("display") or code
    return None


def _grades(resource: dict[str, Any], items: list[dict[str, Any]], wanted: list[str],
            lang: str | None) -> dict[str, tuple[Decimal, str]]:
    """linkId -> (grade, question text) for the wanted items answered with a gradable answer."""
    definition = qdef.parse(resource)
    by_id = definition.by_link_id()
    found: dict[str, tuple[Decimal, str]] = {}
    for given in qdef.response_items_walk(items):
        link_id = given.get("linkId")
        item = by_id.get(link_id or "")
        answers = given.get("answer") or []
        if item is None or link_id not in wanted or len(answers) != 1:
            continue
        answer = answers[0]
        grade: Decimal | None = None
        if item.type in ("integer", "decimal"):
            raw = answer.get("valueInteger", answer.get("valueDecimal"))
            if raw is not None and not isinstance(raw, bool):
                grade = Decimal(str(raw))
        else:
            option = item.option_for(answer)
            grade = option.weight if option is not None else None
        if grade is not None:
            found[link_id] = (grade, item.text_for(lang) or link_id)
    return found


def _values(params: Params, resource: dict[str, Any], items: list[dict[str, Any]],
            scores: list[dict[str, Any]], lang: str | None) -> dict[str, tuple[Decimal, str]]:
    """What the rule watches in one response: key -> (value, name in words)."""
    if params.score is not None:
        found = _score_values(scores, params.score)
        return {params.score: found} if found else {}
    return _grades(resource, items, params.items, lang)


def evaluate_response(params: Params, response: "QuestionnaireResponse", ctx: "Context") -> "Finding | None":
    from alerts.rules import Finding

    if response.questionnaire.url != params.questionnaire:
        return None
    lang = get_language()
    now = _values(params, response.questionnaire.resource, response.items, response.scores, lang)
    if not now:
        return None
    sign = 1 if params.higher_is_worse else -1
    reasons: list[str] = []
    fired: list[dict[str, Any]] = []
    reference: PastResponse | None = None
    if params.worse_by is not None:
        find = ctx.previous_response if params.against == "previous" else ctx.baseline_response
        reference = find(response.patient_id, params.questionnaire, authored_at=response.authored_at,
                         response_id=response.pk)
    before = (_values(params, reference.resource, reference.items, reference.scores, lang)
              if reference is not None else {})
    for key, (value, name) in now.items():
        shown = {"name": name, "value": number_format(value.normalize())}
        if params.limit is not None and sign * (value - params.limit) >= 0:
            template = (_("%(name)s: %(value)s is at or above the limit of %(limit)s.") if sign > 0 else
                        _("%(name)s: %(value)s is at or below the limit of %(limit)s."))
            reasons.append(template % {**shown, "limit": number_format(params.limit.normalize())})
            fired.append({"key": key, "value": str(value), "limit": str(params.limit)})
        if params.worse_by is not None and key in before and reference is not None:
            earlier = before[key][0]
            change = sign * (value - earlier)
            if change >= params.worse_by:
                words = {**shown, "before": number_format(earlier.normalize()),
                         "change": number_format(change.normalize()),
                         "limit": number_format(params.worse_by.normalize()),
                         "date": date_format(timezone.localtime(reference.authored_at), "SHORT_DATE_FORMAT")}
                template = (
                    _("%(name)s worse by %(change)s since the previous answer of %(date)s "
                      "(%(before)s → %(value)s); limit %(limit)s.")
                    if params.against == "previous" else
                    _("%(name)s worse by %(change)s since the baseline answer of %(date)s "
                      "(%(before)s → %(value)s); limit %(limit)s."))
                reasons.append(template % words)
                fired.append({"key": key, "value": str(value), "before": str(earlier), "change": str(change),
                              "worse_by": str(params.worse_by)})
    if not reasons:
        return None
    return Finding(
        reason=" ".join(reasons),
        evidence={
            "response_id": response.pk,
            "questionnaire": response.questionnaire.url,
            "version": response.questionnaire.version,
            "authored_at": response.authored_at.isoformat(),
            "compared_with": None if reference is None else {
                "response_id": reference.id, "version": reference.version,
                "authored_at": reference.authored_at.isoformat(), "against": params.against},
            "fired": fired,
        },
    )


# How the editor asks for the parameters (alerts.rules.form_spec, issue 24).
FORM = (
    QuestionnairePick("questionnaire", _l("Questionnaire")),
    ItemsPick("items", _l("Questions added up"), _l("E.g. the nine PHQ-9 questions.")),
    Choice("higher_is_worse", _l("Direction"), (("true", _l("A higher score is worse")),
                                                ("false", _l("A lower score is worse"))), initial="true"),
    Number("limit", _l("Alarm at a score of"), _l("E.g. 10 for PHQ-9 (moderate depression)."), unit=_l("points")),
    Number("worse_by", _l("Alarm when worse by"), _l("E.g. 5 points against the previous answer."),
           unit=_l("points"), minimum=Decimal("0.01")),
    Choice("against", _l("Worse compared with"), (("previous", _l("The previous answer")),
                                                  ("baseline", _l("The first answer (baseline)"))),
           initial="previous"),
)
CHECKS = (OneOf(("limit", "worse_by"), _l("Give a limit, a worsening or both.")),)
