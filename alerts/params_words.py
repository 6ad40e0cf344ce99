"""A rule's parameters in words for the people who read them (the patient page, the override
form): "Lower limit: 92 %", not "low = 92"; "Questionnaire: Daglig tjek ved hjertesvigt", not its
canonical URL; "Bands: alert below 85, warning below 95", not a Python dict."""

from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.dateparse import parse_duration
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

from alerts.rules.change import window_words
from monitoring.measures import MEASURES, component_labels

LABELS: dict[str, Any] = {
    "measure": _("Measurement"),
    "low": _("Lower limit"),
    "high": _("Upper limit"),
    "component": _("Part"),
    "direction": _("Direction"),
    "more_than": _("Change of more than"),
    "at_least": _("Change of at least"),
    "window": _("Within"),
    "reference": _("Compared with"),
    "min_readings": _("Fewest earlier readings"),
    "bands": _("Bands"),
    "bands2": _("Bands (diastolic)"),
    "alert_low": _("alert below"),
    "warning_low": _("warning below"),
    "warning_high": _("warning above"),
    "alert_high": _("alert above"),
    "questionnaire": _("Questionnaire"),
    "link_id": _("Question"),
    "codes": _("Answers"),
    "answer": _("Answer"),
    "reading": _("Measurement"),
    "window_hours": _("Within (hours)"),
    "grace_hours": _("Hours of grace after the deadline"),
    "consecutive": _("Missed in a row"),
    "yellow_total": _("Yellow from a total of"),
    "red_total": _("Red from a total of"),
    "single_parameter_three": _("One parameter scoring 3"),
    "min_parameters": _("Fewest parameters measured"),
    "score": _("Score"),
    "items": _("Questions"),
    "higher_is_worse": _("Higher is worse"),
    "limit": _("Limit"),
    "worse_by": _("Worse by"),
    "against": _("Compared with"),
    "contact_link_id": _("Contact question"),
    "min_grade": _("Lowest grade"),
    "value": _("Value"),
}

WORDS: dict[str, Any] = {
    "up": _("rising"), "down": _("falling"), "median": _("the median"), "lowest": _("the lowest"),
    "highest": _("the highest"), "earliest": _("the earliest"), "previous": _("the previous answer"),
    "baseline": _("the first answer"), "yellow": _("yellow"), "red": _("red"), "off": _("off"),
    "true": _("yes"), "false": _("no"),
}


def label(name: str) -> str:
    return str(LABELS.get(name, name.replace("_", " ")))


def params_in_words(params: dict[str, Any], titles: dict[str, str] | None = None,
                    measure: str | None = None) -> list[tuple[str, str]]:
    """(label, value) pairs of a rule's (or an override's) parameters. ``titles`` maps a
    questionnaire's canonical URL to its title; ``measure``: the rule's, for an override's
    parameters, which do not name it."""
    of = MEASURES.get(params.get("measure") or measure or "")
    return [(label(name), _value(name, value, of, titles or {})) for name, value in params.items()
            if not (name == "component" and (of is None or of.second is None))]


def questionnaire_titles(urls: list[Any]) -> dict[str, str]:
    """The title of the newest stored version of each questionnaire (by canonical URL)."""
    from questionnaires.models import Questionnaire

    wanted = [u for u in urls if isinstance(u, str)]
    if not wanted:
        return {}
    return dict(Questionnaire.objects.filter(url__in=wanted).order_by("pk").values_list("url", "title"))


# Identifiers (question ids, answer codes, score codes): shown as they are, never read as numbers
# ("1.10" is not 1,1) or words ("up" as an answer code is not "rising").
_AS_GIVEN = {"link_id", "codes", "score", "items", "contact_link_id"}


def _value(name: str, value: Any, measure: Any, titles: dict[str, str]) -> str:
    if value is None:
        return "—"
    if name in _AS_GIVEN:
        return "; ".join(map(str, value)) if isinstance(value, list) else str(value)
    if name == "measure" and value in MEASURES:
        return str(MEASURES[value].label)
    if name == "component" and measure is not None and (parts := component_labels(measure)):
        return parts[1] if value == "value2" else parts[0]
    if name == "questionnaire":
        return titles[value] if value in titles else str(value)
    if name == "window" and isinstance(value, str):  # stored as ISO 8601 ("P3D")
        value = parse_duration(value) or value
    if isinstance(value, bool):
        return str(_("yes") if value else _("no"))
    if isinstance(value, dict):
        return ", ".join(f"{label(k)} {_value(k, v, measure, titles)}" for k, v in value.items() if v is not None)
    if isinstance(value, list):
        return "; ".join(_value(name, v, measure, titles) for v in value)
    if isinstance(value, str) and value in WORDS:
        return str(WORDS[value])
    if isinstance(value, timedelta):
        return window_words(value)
    number = _number(value) if not isinstance(value, str) or name in _NUMERIC else None
    if number is not None:
        unit = f" {measure.unit_label}" if measure is not None and name in _IN_UNIT else ""
        return f"{number_format(number.normalize())}{unit}"
    return str(value)


# Parameters that are numbers even when stored as text ("38.4").
_NUMERIC = {"low", "high", "more_than", "at_least", "alert_low", "warning_low", "warning_high", "alert_high",
            "limit", "worse_by", "window_hours", "grace_hours", "value", "min_grade"}
# Parameters given in the measure's unit.
_IN_UNIT = {"low", "high", "more_than", "at_least", "alert_low", "warning_low", "warning_high", "alert_high"}


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None
