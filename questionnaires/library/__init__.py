"""Questionnaires the platform ships, as FHIR R4 Questionnaire JSON files beside this module."""

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


def load(name: str) -> dict[str, Any]:
    return json.loads((HERE / f"{name}.json").read_text(encoding="utf-8"))
