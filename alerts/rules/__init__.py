"""Rule kinds, one module each, found through this registry.

A kind module exposes ``Params`` (a pydantic model validating the rule's JSON parameters) and
one or more of

    evaluate_reading(params, reading, ctx)   -> Finding | None   on every new reading
    evaluate_response(params, response, ctx) -> Finding | None   on every completed response
    evaluate_missed(params, missed, ctx)     -> Finding | None   on every missed occurrence

``ctx`` (alerts.rules.context.Context) is the kind's only way to look at the patient's history
(earlier readings, earlier responses), so that back-testing can run the same code as-of a past
moment. A kind never writes: alerts.services turns findings into alerts.

Adding a kind = one module + its tests + a line in KINDS.

``safety`` is the one kind nobody adds by hand: alerts.safety creates its rules, one per
programme and instrument, and only switches them off with a reason.
"""

from dataclasses import dataclass, field
from decimal import Decimal
from types import ModuleType
from typing import Any

import pydantic
from django.core.exceptions import ValidationError

from alerts.rules import answer, bands, change, combination, missed, news2, safety, score, severity, threshold

KINDS: dict[str, ModuleType] = {
    "threshold": threshold,
    "answer": answer,
    "bands": bands,  # four-band thresholds, colour per reading (OpenTele)
    "answer-severity": severity,  # worst per-answer colour of a response (AmbuFlex)
    "score": score,  # score/item limits and worsening vs previous or baseline (Basch)
    "change": change,  # change over a window vs the patient's own readings (heart failure)
    "news2": news2,  # NEWS2 from home vitals, a labelled subset (RCP 2017)
    "combination": combination,  # an answer AND a reading within a window
    "missed": missed,  # a scheduled questionnaire not answered by its deadline + grace
    # An instrument's safety net: red answers and "contact me", in every programme that uses the
    # instrument (one rule per programme and instrument, Rule.safety_net_for; alerts/safety.py).
    "safety": safety,
}

EVENTS = ("reading", "response", "missed")


@dataclass(frozen=True)
class Finding:
    """What a rule saw. ``reason`` is in plain words in the active language ("Weight up 2.4 kg
    in 3 days; limit 2 kg."); ``evidence`` the values as they were. ``severity`` overrides the
    rule's colour (four-band thresholds, per-answer colours). ``snooze`` names the measure,
    component and value a clinician's snooze may cover; findings without it cannot be snoozed."""

    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)
    severity: str | None = None
    snooze: tuple[str, str, Decimal] | None = None


def snooze_target(kind: str, evidence: dict[str, Any] | None) -> tuple[str, str] | None:
    """The measure and component a snooze made from an alert of ``kind`` would cover, read from
    the alert's evidence; None when the kind's findings carry no ``Finding.snooze`` (an answer,
    a score, a change, NEWS2, a missed questionnaire): snoozing those would silence nothing that
    raised them. A kind declares ``SNOOZABLE = True`` when its findings name a snoozable value."""
    if not getattr(KINDS.get(kind), "SNOOZABLE", False):
        return None
    measure, component = (evidence or {}).get("measure"), (evidence or {}).get("component", "value")
    if not isinstance(measure, str) or component not in ("value", "value2"):
        return None
    return measure, component


def parse_params(kind: str, params: Any) -> pydantic.BaseModel:
    module = KINDS.get(kind)
    if module is None:
        raise ValidationError({"kind": f"Unknown rule kind {kind!r}; known: {sorted(KINDS)}"})
    try:
        parsed: pydantic.BaseModel = module.Params.model_validate(params)
        return parsed
    except pydantic.ValidationError as exc:
        raise ValidationError({"params": [_message(e) for e in exc.errors()]}) from exc


def parse_params_for_save(kind: str, params: Any) -> pydantic.BaseModel:
    """``parse_params`` plus the checks a kind makes only when a definition is saved (its
    ``save_problems``), so that rules stored before a check was added still run."""
    parsed = parse_params(kind, params)
    check = getattr(KINDS[kind], "save_problems", None)
    if check is not None and (problems := check(parsed)):
        raise ValidationError({"params": problems})
    return parsed


def _message(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"])
    msg = error["msg"].removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg


def merged_params(params: dict[str, Any], override: dict[str, Any] | None) -> dict[str, Any]:
    """A patient's override replaces the rule's parameters key by key."""
    return {**params, **(override or {})}


def kinds_for(event: str) -> list[str]:
    """Kinds that evaluate ``reading``, ``response`` or ``missed`` events."""
    assert event in EVENTS, event
    return [k for k, m in KINDS.items() if hasattr(m, f"evaluate_{event}")]
