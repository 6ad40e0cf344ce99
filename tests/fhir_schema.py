"""Validation of what the server hands out against HL7's official FHIR R4 (4.0.1) JSON schema
(tests/fixtures/fhir-schema/, CC0), the independent check ADR 0001 promised beside the R4B models.

The schema is closed (``additionalProperties: false``): an element FHIR does not define, such as a
pydantic field name (``display_element``), is an error. It does not forbid empty arrays and
objects, which FHIR JSON does (https://hl7.org/fhir/R4/json.html); ``fhir_problems`` adds that."""

import gzip
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA = Path(__file__).parent / "fixtures" / "fhir-schema" / "fhir.schema.json.gz"


@cache
def _schema() -> dict[str, Any]:
    with gzip.open(SCHEMA, "rb") as f:
        return json.load(f)


@cache
def _validator(resource_type: str) -> jsonschema.Draft6Validator:
    definitions = _schema()["definitions"]
    if resource_type not in definitions:
        raise AssertionError(f"{resource_type} is no FHIR R4 resource type")
    # One resource's definition with all of them beside it, so "$ref"s resolve; validating against
    # the root (a oneOf over 147 resources) would be slow and its errors unreadable.
    return jsonschema.Draft6Validator({"$ref": f"#/definitions/{resource_type}", "definitions": definitions})


def _empty(value: Any, path: str) -> list[str]:
    found = []
    if isinstance(value, dict):
        if not value:
            found.append(f"{path}: empty object")
        for key, child in value.items():
            found += _empty(child, f"{path}.{key}")
    elif isinstance(value, list):
        if not value:
            found.append(f"{path}: empty array")
        for i, child in enumerate(value):
            found += _empty(child, f"{path}[{i}]")
    elif value is None or value == "":
        found.append(f"{path}: null or empty string")
    return found


def fhir_problems(resource: dict[str, Any]) -> list[str]:
    """Every schema error and every empty value, with where it is; [] for a valid resource."""
    resource_type = resource.get("resourceType", "?")
    errors = [f"{resource_type}.{'.'.join(str(p) for p in e.absolute_path)}: {e.message[:300]}"
              for e in _validator(resource_type).iter_errors(resource)]
    return errors + _empty(resource, resource_type)


def assert_valid_fhir(*resources: dict[str, Any]) -> None:
    problems = [p for r in resources for p in fhir_problems(r)]
    assert not problems, "\n".join(problems[:40])
