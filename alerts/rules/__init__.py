"""Rule kinds, one module each, found through this registry.

A kind module exposes ``Params`` (a pydantic model validating the rule's JSON parameters) and
one or both of ``evaluate_reading(params, reading)`` / ``evaluate_response(params, response)``,
returning a Finding or None. Adding a kind = one module + its tests + a line below.
"""

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pydantic
from django.core.exceptions import ValidationError

from alerts.rules import answer, threshold

KINDS: dict[str, ModuleType] = {"threshold": threshold, "answer": answer}


@dataclass(frozen=True)
class Finding:
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)


def parse_params(kind: str, params: Any) -> pydantic.BaseModel:
    module = KINDS.get(kind)
    if module is None:
        raise ValidationError({"kind": f"Unknown rule kind {kind!r}; known: {sorted(KINDS)}"})
    try:
        return module.Params.model_validate(params)
    except pydantic.ValidationError as exc:
        raise ValidationError({"params": [e["msg"] + f" ({e['loc']})" for e in exc.errors()]}) from exc


def kinds_for(event: str) -> list[str]:
    """Kinds that evaluate ``reading`` or ``response`` events."""
    return [k for k, m in KINDS.items() if hasattr(m, f"evaluate_{event}")]
