"""One typed form per rule kind, built from the kind's declared ``FORM`` (alerts.rules.form_spec).

The form asks for the rule's name, colour, cooldown and the reason for the change, and for each
parameter the kind declares: numbers with their unit beside them and their allowed range,
choices, and pickers that offer only what the programme provides (its measures, its
questionnaires' questions and answers). ``params`` in ``cleaned_data`` is the JSON the kind's
``Params`` validates; every problem is a message next to its field (issue 24: no JSON typed by
a person anywhere in the normal path)."""

from datetime import timedelta
from decimal import Decimal
from types import ModuleType
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.formats import number_format
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l

from alerts.models import Rule, Severity
from alerts.rules import KINDS, parse_params_for_save
from alerts.rules import form_spec as spec
from monitoring.measures import MEASURES
from patients.models import Program
from proplatform.forms import DecimalTextField, DescribedForm

# The kinds a person adds in the editor, with the words the kind picker shows. ``safety`` is the
# platform's (alerts.safety); ``answer`` is the per-answer rule.
KIND_LABELS: dict[str, Any] = {
    "threshold": _l("Limit on a measurement"),
    "bands": _l("Yellow and red bands on a measurement"),
    "answer": _l("A particular answer"),
    "answer-severity": _l("The colours of the answers"),
    "score": _l("A score or its worsening"),
    "change": _l("A change in a measurement (e.g. weight gain)"),
    "news2": _l("NEWS2 from home vitals"),
    "combination": _l("An answer together with a reading"),
    "missed": _l("A missed questionnaire"),
}
SEP = "|"  # between a questionnaire URL and a linkId, or a linkId and an answer code, in choices


def _field_name(path: str) -> str:
    return "p_" + path.replace(".", "__")


def _get(params: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        if not isinstance(params, dict):
            return None
        params = params.get(part)  # type: ignore[assignment]
    return params


def _put(params: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        params = params.setdefault(part, {})
    params[last] = value


class ProgrammeVocabulary:
    """What a programme offers the pickers: its measures and its questionnaires' questions."""

    def __init__(self, program: Program) -> None:
        lang = get_language()
        self.measures = [(code, MEASURES[code].label) for code in (program.measures or []) if code in MEASURES]
        self.questionnaires: list[tuple[str, str]] = []
        self.items: list[tuple[str, str]] = []  # (url|linkId, "Title: question")
        self.answers: list[tuple[str, str]] = []  # (linkId|code, "question: answer")
        self.items_of: dict[str, set[str]] = {}  # url -> linkIds
        seen: set[str] = set()
        for q in program.questionnaires.order_by("url", "-created_at"):
            if q.url in seen:
                continue  # the newest version speaks for the questionnaire
            seen.add(q.url)
            self.questionnaires.append((q.url, q.title))
            self.items_of[q.url] = set()
            for item in q.definition.items():
                if not item.answerable:
                    continue
                text = item.text_for(lang) or item.linkId
                self.items.append((f"{q.url}{SEP}{item.linkId}", f"{q.title}: {text}"))
                self.items_of[q.url].add(item.linkId)
                options = [(o.key, o.display_for(lang)) for o in item.answerOption]
                if item.type == "boolean":
                    options = [("true", _("Yes")), ("false", _("No"))]
                self.answers.extend((f"{item.linkId}{SEP}{key}", f"{text}: {shown}") for key, shown in options)


class RuleForm(DescribedForm):
    name = forms.CharField(label=_l("Name"), max_length=200,
                           help_text=_l("What the nurse reads on the alert, e.g. \"SpO2 under 92 %\"."),
                           error_messages={"required": _l("Give the rule a name.")})
    severity = forms.ChoiceField(label=_l("Colour of the alert"), choices=Severity.choices, initial=Severity.YELLOW)
    cooldown_hours = DecimalTextField(
        label=_l("Quiet after resolution (hours)"), required=False, min_value=Decimal(0), max_value=Decimal(720),
        help_text=_l("Findings within this time after an alert is resolved are added to it, e.g. 24."))
    reason = forms.CharField(
        label=_l("Why this change?"), max_length=500, widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_l("Kept with the rule's history, e.g. \"Agreed at the COPD team meeting 3 December\"."),
        error_messages={"required": _l("Say why the rule is added or changed.")})

    def __init__(self, *args: Any, kind: str, program: Any, rule: Rule | None = None, **kwargs: Any) -> None:
        self.kind, self.program, self.rule = kind, program, rule
        self.module: ModuleType = KINDS[kind]
        self.vocabulary = ProgrammeVocabulary(program)
        if rule is not None and "initial" not in kwargs:
            kwargs["initial"] = self.initial_from(rule)
        super().__init__(*args, **kwargs)
        self.param_fields: list[str] = []
        two_part = any(MEASURES[code].second is not None for code, _label in self.vocabulary.measures)
        self.declared = [f for f in self.module.FORM
                         # "Which value" means something for blood pressure only: not asked otherwise.
                         if two_part or not (isinstance(f, spec.Choice) and f.path.endswith("component"))]
        for declared in self.declared:
            name = _field_name(declared.path)
            self.fields[name] = self._make(declared)
            self.param_fields.append(name)
        # The reason, last: it is about the whole change.
        self.fields["reason"] = self.fields.pop("reason")

    @staticmethod
    def initial_from(rule: Rule) -> dict[str, Any]:
        initial: dict[str, Any] = {"name": rule.name, "severity": rule.severity,
                                   "cooldown_hours": Decimal(rule.cooldown.total_seconds()) / 3600 or None}
        for declared in KINDS[rule.kind].FORM:
            value = _get(rule.params, declared.path)
            if isinstance(declared, spec.ItemPick):
                url = _get(rule.params, declared.questionnaire_path)
                value = f"{url}{SEP}{value}" if url and value else None
            elif isinstance(declared, spec.AnswerPick):
                link = _get(rule.params, next(f.link_path for f in KINDS[rule.kind].FORM
                                              if isinstance(f, spec.ItemPick)))
                value = [f"{link}{SEP}{code}" for code in value or []]
            elif isinstance(declared, spec.Number) and declared.as_hours and value is not None:
                value = Decimal(_duration_seconds(value)) / 3600
            elif isinstance(value, bool):
                value = "true" if value else "false"
            initial[_field_name(declared.path)] = value
        return initial

    def _make(self, declared: spec.Field) -> forms.Field:
        label, help_text = declared.label, declared.help
        if isinstance(declared, spec.Number):
            messages = {"invalid": _l("Give a number, e.g. 92 or 38,5."),
                        "required": _l("Give a number."),
                        "min_value": _l("Give at least %(limit_value)s."),
                        "max_value": _l("Give at most %(limit_value)s.")}
            return DecimalTextField(label=label, help_text=help_text, required=declared.required,
                                    min_value=declared.minimum, max_value=declared.maximum,
                                    initial=declared.initial, error_messages=messages)
        if isinstance(declared, spec.Choice):
            return forms.ChoiceField(label=label, help_text=help_text, choices=declared.choices,
                                     initial=declared.initial, required=declared.required)
        if isinstance(declared, spec.MeasurePick):
            return forms.ChoiceField(
                label=label, help_text=help_text, choices=[("", _l("Choose a measurement")), *self.vocabulary.measures],
                error_messages={"required": _l("Choose one of the programme's measurements."),
                                "invalid_choice": _l("Choose one of the programme's measurements.")})
        if isinstance(declared, spec.QuestionnairePick):
            empty = _l("Every questionnaire") if not declared.required else _l("Choose a questionnaire")
            return forms.ChoiceField(
                label=label, help_text=help_text, required=declared.required,
                choices=[("", empty), *self.vocabulary.questionnaires],
                error_messages={"required": _l("Choose one of the programme's questionnaires."),
                                "invalid_choice": _l("Choose one of the programme's questionnaires.")})
        if isinstance(declared, spec.ItemPick):
            return forms.ChoiceField(
                label=label, help_text=help_text, choices=[("", _l("Choose a question")), *self.vocabulary.items],
                error_messages={"required": _l("Choose a question from the programme's questionnaires."),
                                "invalid_choice": _l("Choose a question from the programme's questionnaires.")})
        if isinstance(declared, spec.AnswerPick):
            return forms.MultipleChoiceField(
                label=label, help_text=help_text, choices=self.vocabulary.answers, required=declared.required,
                widget=forms.CheckboxSelectMultiple,
                error_messages={"required": _l("Tick at least one answer."),
                                "invalid_choice": _l("Tick answers of the programme's questions.")})
        if isinstance(declared, spec.ItemsPick):
            return forms.MultipleChoiceField(
                label=label, help_text=help_text, choices=self.vocabulary.items, widget=forms.CheckboxSelectMultiple,
                error_messages={"required": _l("Tick at least one question."),
                                "invalid_choice": _l("Tick questions of the programme's questionnaires.")})
        raise TypeError(declared)

    def unit_for(self, name: str) -> str:
        """The unit shown beside a number field: fixed, or the measure's picked in this form."""
        declared = next(f for f in self.module.FORM if _field_name(f.path) == name)
        if not isinstance(declared, spec.Number):
            return ""
        if declared.unit is not None:
            return str(declared.unit)
        measure_field = next((f for f in self.module.FORM if isinstance(f, spec.MeasurePick)), None)
        if measure_field is None:
            return ""
        code = self.data.get(_field_name(measure_field.path)) if self.is_bound else self.initial.get(
            _field_name(measure_field.path))
        if code in MEASURES:
            return str(MEASURES[code].unit_label)
        if len(self.vocabulary.measures) == 1:
            return str(MEASURES[self.vocabulary.measures[0][0]].unit_label)
        return ""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if any(name in self.errors for name in self.param_fields):
            return cleaned
        params: dict[str, Any] = {}
        values: dict[str, Any] = {}
        item_link: str | None = None
        for declared in self.declared:
            name = _field_name(declared.path)
            value = cleaned.get(name)
            if isinstance(declared, spec.ItemPick):
                url, _sep, link = (value or "").partition(SEP)
                _put(params, declared.questionnaire_path, url)
                _put(params, declared.link_path, link)
                item_link = link
                values[declared.path] = link
                continue
            if isinstance(declared, spec.AnswerPick):
                codes = []
                for choice in value or []:
                    link, _sep, code = choice.partition(SEP)
                    if link != item_link:
                        self.add_error(name, _("Tick only answers to the question chosen above."))
                        return cleaned
                    codes.append(code)
                if codes:
                    _put(params, declared.path, codes)
                continue
            if isinstance(declared, spec.ItemsPick):
                questionnaire = next((cleaned.get(_field_name(f.path)) for f in self.module.FORM
                                      if isinstance(f, spec.QuestionnairePick)), None)
                links = []
                for choice in value or []:
                    url, _sep, link = choice.partition(SEP)
                    if url != questionnaire:
                        self.add_error(name, _("Tick only questions of the questionnaire chosen above."))
                        return cleaned
                    links.append(link)
                _put(params, declared.path, links)
                continue
            if value in (None, "", []):
                continue
            values[declared.path] = value
            if isinstance(declared, spec.Number):
                if declared.as_hours:
                    value = timedelta(hours=float(value)).total_seconds()
                    value = f"PT{int(value)}S"
                elif declared.whole:
                    if value != value.to_integral_value():
                        self.add_error(name, _("Give a whole number."))
                        return cleaned
                    value = int(value)
                else:
                    value = str(value)
            elif isinstance(declared, spec.Choice) and declared.path == "higher_is_worse":
                value = value == "true"  # the kind's only yes/no parameter
            _put(params, declared.path, value)
        if not self._checks(values) or not self._measure_ranges(values):
            return cleaned
        try:
            parse_params_for_save(self.kind, params)
        except ValidationError as exc:
            # What the declared checks did not catch: the kind's own words, at the top.
            for message in exc.messages:
                self.add_error(None, message)
            return cleaned
        cleaned["params"] = params
        return cleaned

    def _checks(self, values: dict[str, Any]) -> bool:
        ok = True
        for check in getattr(self.module, "CHECKS", ()):
            given = [(p, v) for p in check.paths if (v := values.get(p)) is not None and v != ""]
            if isinstance(check, spec.OneOf) and (not given or (check.exactly and len(given) > 1)):
                self.add_error(_field_name(check.paths[0]), str(check.message))
                ok = False
            if isinstance(check, spec.Ascending):
                for (_lower, a), (upper, b) in zip(given, given[1:], strict=False):
                    if not a < b:
                        self.add_error(_field_name(upper), str(check.message))
                        ok = False
                        break
        return ok

    def _measure_ranges(self, values: dict[str, Any]) -> bool:
        """A limit outside what its measure can be would never (or always) fire: said next to it."""
        measure_path = next((f.path for f in self.module.FORM if isinstance(f, spec.MeasurePick)), None)
        measure = MEASURES.get(values.get(measure_path or "", ""))
        if measure is None:
            return True
        part = measure.second if values.get("component") == "value2" and measure.second else measure
        ok = True
        for declared in self.module.FORM:
            if isinstance(declared, spec.Number) and declared.unit is None and declared.path in values:
                value = values[declared.path]
                if declared.path in ("more_than", "at_least"):
                    continue  # a change, not a level
                if not part.minimum <= value <= part.maximum:
                    self.add_error(_field_name(declared.path), _(
                        "%(measure)s can only be from %(lo)s to %(hi)s %(unit)s.") % {
                        "measure": part.label, "lo": number_format(part.minimum), "hi": number_format(part.maximum),
                        "unit": measure.unit_label})
                    ok = False
        return ok

    @property
    def cooldown(self) -> timedelta:
        hours = self.cleaned_data.get("cooldown_hours") or Decimal(0)
        return timedelta(hours=float(hours))


def _duration_seconds(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    from pydantic import TypeAdapter

    return TypeAdapter(timedelta).validate_python(value).total_seconds()
