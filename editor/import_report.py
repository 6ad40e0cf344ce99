"""The questionnaire import report in the reader's language (issue 24).

questionnaires.definition and questionnaires.services word each problem in English for the FHIR
API and the logs (an OperationOutcome's diagnostics), one per linkId. The editor shows the same
problems to a PRO secretariat in Danish: each English wording is matched here and said again
through gettext, keeping what it names (the item, the code, the extension). A wording this table
does not know is shown as given, prefixed so nobody mistakes it for a finished sentence —
tests/test_programme_editor_import_report.py feeds every kind of problem the review knows and
fails on any that falls through."""

import re
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop as N_

# (English wording as a regular expression, the sentence to say instead with its named groups)
PATTERNS: list[tuple[re.Pattern[str], str]] = [(re.compile(p + r"\Z"), m) for p, m in [
    (r"linkId is used twice", N_("This linkId is used twice.")),
    (r"extension (?P<url>\S+) is ignored", N_("The extension %(url)s is ignored.")),
    (r"item type '(?P<type>[^']*)' cannot be answered here, and the item is required",
     N_("Questions of type “%(type)s” cannot be answered here, and the question is required.")),
    (r"item type '(?P<type>[^']*)' cannot be answered here; it is shown as a note",
     N_("Questions of type “%(type)s” cannot be answered here; it is shown as a note.")),
    (r"items nested under a display item are not allowed \(FHIR que-1\); use a group",
     N_("Questions under a text item are not allowed (FHIR que-1); use a group.")),
    (r"a repeating group is shown once", N_("A repeating group is shown once.")),
    (r"only one answer is taken for this item \(repeats is honoured for choice items\)",
     N_("Only one answer is taken for this question (several answers are possible only for choice questions).")),
    (r"two answer options have the same code", N_("Two answer options have the same code.")),
    (r"answerValueSet (?P<url>\S+) cannot be expanded here; the question is answered in free text \(ADR 0004\)",
     N_("The answer list %(url)s cannot be fetched here; the question is answered in free text.")),
    (r"a choice item needs answerOption or answerValueSet",
     N_("A choice question needs answer options (answerOption or answerValueSet).")),
    (r"answer options on a non-choice item are ignored",
     N_("Answer options on a question that is not a choice question are ignored.")),
    (r"extension (?P<name>\S+) \((?P<url>\S+)\) is ignored", N_("The extension %(name)s (%(url)s) is ignored.")),
    (r"answer option extension (?P<url>\S+) is ignored", N_("The answer option's extension %(url)s is ignored.")),
    (r"answer-severity on the item must be 'yellow' or 'red', not (?P<value>.+)",
     N_("The question's colour must be “yellow” or “red”, not %(value)s.")),
    (r"answer-severity on answer option (?P<option>.+) must be 'yellow' or 'red', not (?P<value>.+)",
     N_("The colour of answer option %(option)s must be “yellow” or “red”, not %(value)s.")),
    (r"answer-severity on a non-boolean item is ignored; put it on its answer options",
     N_("A colour on a question that is not yes/no is ignored; put it on its answer options.")),
    (r"item control '(?P<control>[^']*)' is not supported; the default control is used",
     N_("The control “%(control)s” is not supported; the usual control is used.")),
    (r"a slider needs an integer or decimal item with minValue and maxValue; a number field is used",
     N_("A slider needs a number question with a lowest and highest value; a number field is used.")),
    (r"(?P<name>\w+Expression) is ignored", N_("%(name)s is ignored.")),
    (r"a read-only required item needs an initial value",
     N_("A read-only required question needs a given value.")),
    (r"enableWhen refers to unknown item '(?P<item>[^']*)'",
     N_("The condition (enableWhen) refers to the unknown question “%(item)s”.")),
    (r"enableWhen refers to '(?P<item>[^']*)', which has no answers",
     N_("The condition (enableWhen) refers to “%(item)s”, which has no answers.")),
    (r"enableWhen needs an answer\[x\]", N_("The condition (enableWhen) needs an answer to compare with.")),
    (r"enableWhen 'exists' needs answerBoolean", N_("The condition (enableWhen) “exists” needs a yes/no answer.")),
    (r"enableBehavior is required when there is more than one enableWhen",
     N_("With more than one condition (enableWhen), say whether all or any must hold (enableBehavior).")),
    (r"a Questionnaire must be a JSON object", N_("A questionnaire must be a JSON object.")),
    (r"url: a canonical url \(or at least an id\) is required",
     N_("The questionnaire needs a canonical url (or at least an id).")),
    (r"version (?P<version>.+) of (?P<url>\S+) exists with other content; give it a new version",
     N_("Version %(version)s of %(url)s already exists with other content; give the file a new version.")),
    (r"the existing versions are not plain numbers; give the new version",
     N_("The existing versions are not plain numbers; give the new version.")),
    (r"scoring: (?P<problem>.+)", N_("The scoring no longer fits: %(problem)s")),
    # pydantic's wording of a file whose shape is not a Questionnaire's
    (r"(?P<where>[\w.\[\]-]+): Field required", N_("%(where)s is missing.")),
    (r"(?P<where>[\w.\[\]-]+): Input should be (?P<expected>.+)",
     N_("%(where)s has a value that is not allowed (expected %(expected)s).")),
    (r"(?P<where>[\w.\[\]-]+): (?P<problem>.+)", N_("%(where)s is not valid FHIR: %(problem)s")),
]]


@dataclass(frozen=True)
class ReportLine:
    severity: str
    link_id: str | None
    message: str


def message_in_words(message: str) -> str:
    """``message`` (one issue's English wording) in the active language."""
    for pattern, sentence in PATTERNS:
        found = pattern.match(message)
        if found is not None:
            return _(sentence) % found.groupdict()
    return _("Not translated: %(message)s") % {"message": message}


def report_lines(issues: list[Any]) -> list[ReportLine]:
    """The import report's lines (questionnaires.definition.Issue), each in the active language."""
    return [ReportLine(issue.severity, issue.link_id, message_in_words(issue.message)) for issue in issues]
