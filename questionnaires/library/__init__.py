"""Questionnaires the platform ships, as FHIR R4 Questionnaire JSON files beside this module.

``<slug>.json`` is the Questionnaire; ``<slug>.scoring.json``, where present, is its scoring spec
(questionnaires.scoring). Sources and licences: SOURCES.md.
"""

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
SCORING_SUFFIX = ".scoring.json"


def names() -> list[str]:
    """The slug of every shipped instrument, sorted."""
    return sorted(p.name.removesuffix(".json") for p in HERE.glob("*.json") if not p.name.endswith(SCORING_SUFFIX))


def load(name: str) -> dict[str, Any]:
    resource: dict[str, Any] = json.loads((HERE / f"{name}.json").read_text(encoding="utf-8"))
    return resource


def load_scoring(name: str) -> dict[str, Any] | None:
    """The instrument's scoring spec as stored JSON, or None when it is not scored."""
    path = HERE / f"{name}{SCORING_SUFFIX}"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
