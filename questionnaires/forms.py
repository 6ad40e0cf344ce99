"""The patient's web form, one page at a time, built from a questionnaire definition.

A Django form parses what the browser sent (text in, Python values out); whether the answers are
acceptable — required, ranges, options, enableWhen — is decided by ``validation.response_validate``,
the same check the FHIR endpoint uses, so the web and the API cannot disagree.
"""

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

from proplatform.forms import DecimalTextField, DescribedForm, ErrorSummary, IntegerTextField, error_summary
from questionnaires.definition import Definition, Item
from questionnaires.review import NOTE_MAX

# No first, as in every yes/no choice of the library's questionnaires: on a page that mixes both,
# the same position means the same answer (a red-flag question must not have "Yes" where the
# others have "No").
YES_NO = [("false", _("No")), ("true", _("Yes"))]
OTHER_SUFFIX = "-other"


def field_name(item: Item) -> str:
    return f"q-{item.linkId}"


@dataclass
class Page:
    index: int  # 0-based; URLs count from 1
    title: str | None
    items: list[Item]  # the top-level items on this page

    def walk(self) -> list[Item]:
        return [i for top in self.items for i in top.walk()]

    def link_ids(self) -> set[str]:
        return {i.linkId for i in self.walk()}


def pages(definition: Definition, lang: str | None) -> list[Page]:
    """One top-level group per page; consecutive top-level questions share a page."""
    out: list[Page] = []
    loose: list[Item] = []
    for item in definition.item:
        if item.type == "group":
            if loose:
                out.append(Page(len(out), None, loose))
                loose = []
            out.append(Page(len(out), item.text_for(lang) or None, [item]))
        else:
            loose.append(item)
    if loose:
        out.append(Page(len(out), None, loose))
    return out


def _bound_attrs(item: Item) -> dict[str, Any]:
    attrs = {}
    if item.min_value is not None:
        attrs["min"] = item.min_value
    if item.max_value is not None:
        attrs["max"] = item.max_value
    return attrs


def _range_words(item: Item) -> str:
    """The allowed range, said beside a typed number (a text field has no min/max)."""
    low, high = item.min_value, item.max_value
    if low is not None and high is not None:
        return _("Between %(low)s and %(high)s.") % {"low": number_format(low), "high": number_format(high)}
    if low is not None:
        return _("At least %(low)s.") % {"low": number_format(low)}
    if high is not None:
        return _("At most %(high)s.") % {"high": number_format(high)}
    return ""


def _field(item: Item, lang: str | None) -> forms.Field | None:
    # Requiredness is checked by response_validate: a required question is only required while
    # it is enabled.
    common: dict[str, Any] = {"label": item.text_for(lang) or item.linkId, "required": False,
                              "disabled": item.readOnly}
    control = item.control
    if item.type == "boolean":
        return forms.ChoiceField(choices=YES_NO, widget=forms.RadioSelect, **common)
    if item.type in ("choice", "open-choice") and item.answerOption:
        choices = [(o.key, o.display_for(lang)) for o in item.answerOption]
        if item.repeats:
            # A multiple drop-down is hard to use on a phone: repeating choices are check boxes.
            return forms.MultipleChoiceField(choices=choices, widget=forms.CheckboxSelectMultiple, **common)
        if control == "drop-down":
            return forms.ChoiceField(choices=[("", _("Choose …")), *choices], **common)
        return forms.ChoiceField(choices=choices, widget=forms.RadioSelect, **common)
    if item.type in ("choice", "open-choice"):  # options in a value set we cannot expand (ADR 0004)
        return forms.CharField(max_length=item.maxLength or 500, **common)
    if item.type in ("integer", "decimal"):
        if item.is_slider:  # a number field that questionnaire.js pairs with a range input
            attrs = {"inputmode": "numeric" if item.type == "integer" else "decimal", **_bound_attrs(item),
                     "data-slider": "true", "step": item.slider_step or (1 if item.type == "integer" else "any")}
            # Read by the one number parser as typed fields are (proplatform.input).
            if item.type == "integer":
                return IntegerTextField(widget=forms.NumberInput(attrs=attrs), **common)
            return DecimalTextField(widget=forms.NumberInput(attrs=attrs), localize=False, **common)
        # Typed: a text field with the numeric keyboard, so that "72,5" is 72.5 (proplatform.forms).
        # The range is checked by response_validate (a text field has no min/max).
        text_class = IntegerTextField if item.type == "integer" else DecimalTextField
        return text_class(help_text=_range_words(item), **common)
    if item.type == "string":
        return forms.CharField(max_length=item.maxLength or 500, **common)
    if item.type == "text":
        return forms.CharField(max_length=item.maxLength or 5000, widget=forms.Textarea(attrs={"rows": 4}),
                               **common)
    if item.type == "date":
        return forms.DateField(widget=forms.DateInput(attrs={"type": "date", **_bound_attrs(item)},
                                                      format="%Y-%m-%d"), **common)
    if item.type == "dateTime":
        return forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"},
                                                              format="%Y-%m-%dT%H:%M"), **common)
    if item.type == "time":
        return forms.TimeField(widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"), **common)
    return None  # groups, display items and types this platform cannot take


def _to_answers(item: Item, value: Any) -> list[dict[str, Any]]:
    if value in (None, "", []):
        return []
    if item.type == "boolean":
        return [{"valueBoolean": value == "true"}]
    if item.type in ("choice", "open-choice"):
        if not item.answerOption:
            return [{"valueString": str(value)}]
        options = {o.key: o for o in item.answerOption}
        return [options[key].fhir_value() for key in (value if isinstance(value, list) else [value])]
    if item.type == "integer":
        return [{"valueInteger": int(value)}]
    if item.type == "decimal":
        # FHIR decimals are JSON numbers.
        number = Decimal(value)
        return [{"valueDecimal": int(number) if number == number.to_integral_value() else float(number)}]
    if item.type == "date":
        return [{"valueDate": value.isoformat()}]
    if item.type == "dateTime":
        aware = value if timezone.is_aware(value) else timezone.make_aware(value)
        return [{"valueDateTime": aware.isoformat(timespec="seconds")}]
    if item.type == "time":
        return [{"valueTime": value.strftime("%H:%M:%S")}]
    return [{"valueString": str(value)}]


def _from_answers(item: Item, answers: list[dict[str, Any]]) -> tuple[Any, str | None]:
    """A form field's initial value (and the open-choice "other" text) from stored answers."""
    if not answers:
        return None, None
    values = [next((v for k, v in a.items() if k.startswith("value")), None) for a in answers]
    if item.type == "boolean":
        return ("true" if values[0] else "false"), None
    if item.type in ("choice", "open-choice") and item.answerOption:
        keys = [o.key for a in answers if (o := item.option_for(a)) is not None]
        other = next((a["valueString"] for a in answers if "valueString" in a and item.option_for(a) is None), None)
        return (keys if item.repeats else (keys[0] if keys else None)), other
    if item.type == "dateTime" and isinstance(values[0], str):
        try:
            return timezone.localtime(dt.datetime.fromisoformat(values[0])).replace(tzinfo=None), None
        except ValueError:
            return None, None
    return values[0], None


@dataclass
class Entry:
    """One thing shown on a page: a group (with children), a display text, a question, or a note."""
    item: Item
    kind: str  # group | display | question | unsupported
    text: str
    field: Any = None
    other: Any = None
    children: list["Entry"] = dataclasses.field(default_factory=list)
    level: int = 2
    # The group's question stem, repeated above each of its same-scale questions ("Over the last
    # 2 weeks, how often…" in PHQ-9): on a phone the heading scrolls away after two questions.
    stem: str = ""

    @property
    def conditions(self) -> str:
        """enableWhen for static/js/questionnaire.js (the server decides in the end)."""
        if not self.item.enableWhen:
            return ""
        return json.dumps({
            "behavior": self.item.enableBehavior or "any",
            "conditions": [{"question": c.question, "operator": c.operator,
                            "kind": c.expected()[0], "value": c.expected()[1]} for c in self.item.enableWhen],
        })


class PageForm(forms.Form):
    def __init__(self, *args: Any, definition: Definition, page: Page, lang: str | None,
                 answers: dict[str, list[dict[str, Any]]], shown: set[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.definition, self.page, self.lang, self.shown = definition, page, lang, shown
        self.items: dict[str, Item] = {}
        for item in page.walk():
            if item.linkId not in shown:
                continue
            made = _field(item, lang)
            if made is None:
                continue
            initial, other = _from_answers(item, answers.get(item.linkId) or item.initial_answers())
            made.initial = initial
            self.fields[field_name(item)] = made
            self.items[item.linkId] = item
            if item.type == "open-choice" and item.answerOption:
                self.fields[field_name(item) + OTHER_SUFFIX] = forms.CharField(
                    label=_("Other answer (write it here)"), required=False, initial=other,
                    max_length=item.maxLength or 500, disabled=item.readOnly)

    def answers(self) -> dict[str, list[dict[str, Any]]]:
        """linkId -> answers for every field on the page that parsed; call after is_valid()."""
        cleaned = getattr(self, "cleaned_data", {})
        out = {}
        for link_id, item in self.items.items():
            name = field_name(item)
            if name not in cleaned or item.readOnly:
                continue
            answers = _to_answers(item, cleaned[name])
            other = cleaned.get(name + OTHER_SUFFIX)
            if other:
                answers = [a for a in answers if item.repeats] + [{"valueString": other}]
            out[link_id] = answers
        return out

    def entries(self) -> list[Entry]:
        def same_scale(group: Item) -> set[str]:
            """The group's choice questions that share their answer options with a sibling."""
            scales = [(c.linkId, tuple(o.key for o in c.answerOption)) for c in group.item if c.answerOption]
            counts: dict[tuple[str, ...], int] = {}
            for _link_id, scale in scales:
                counts[scale] = counts.get(scale, 0) + 1
            return {link_id for link_id, scale in scales if counts[scale] > 1}

        def entry(item: Item, level: int, stem: str = "") -> Entry | None:
            if item.linkId not in self.shown:
                return None
            text = item.text_for(self.lang)
            if item.type == "group":
                stemmed = same_scale(item) if text else set()
                children = [e for e in (entry(c, level + 1, text if c.linkId in stemmed else "") for c in item.item)
                            if e is not None]
                # The page heading already names a top-level group.
                return Entry(item, "group", text if level > 2 else "", children=children, level=level)
            if item.type == "display":
                return Entry(item, "display", text)
            if item.calculated_score:
                return None  # the platform computes it from the answers (questionnaires.scoring)
            name = field_name(item)
            if name not in self.fields:
                return Entry(item, "unsupported", text)
            described = []
            if item.free_text_choice or self.fields[name].help_text:
                described.append(f"{self[name].auto_id}-help")
            if self.errors.get(name):
                described.append(f"{self[name].auto_id}-errors")
                self.fields[name].widget.attrs["aria-invalid"] = "true"
            if described:
                self.fields[name].widget.attrs["aria-describedby"] = " ".join(described)
            other = self[name + OTHER_SUFFIX] if name + OTHER_SUFFIX in self.fields else None
            # Items nested under a question (SDC allows it) follow the question they belong to.
            children = [e for e in (entry(c, level + 1) for c in item.item) if e is not None]
            return Entry(item, "question", text, field=self[name], other=other, stem=stem, children=children,
                         level=level)

        return [e for e in (entry(top, 2) for top in self.page.items) if e is not None]

    @property
    def error_summary(self) -> ErrorSummary:
        """For templates/error_summary.html: the page's questions in the order shown."""
        return error_summary(self, [self[name] for name in self.fields])

    def option_map(self) -> dict[str, Any]:
        """Per question on the page: its type and, for choices, what each posted key means."""
        return {
            item.linkId: {"type": item.type, "options": {o.key: o.fhir_value() for o in item.answerOption}}
            for item in self.items.values()
        }


class ReviewForm(DescribedForm):
    """"Markér som gennemset" beside a response on the clinician's patient page
    (questionnaires.review)."""

    note = forms.CharField(required=False, max_length=NOTE_MAX, widget=forms.Textarea(attrs={"rows": 2}),
                           label=_("Note (optional)"))
