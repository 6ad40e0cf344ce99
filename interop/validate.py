"""Incoming FHIR resources checked against the R4B models before anything is stored (ADR 0001).

Pure: no database. ``structure_issues`` answers every element FHIR does not define (a typo, a
pydantic field name such as ``display_element``), every wrongly typed value and every empty array,
object or string (FHIR JSON has none, https://hl7.org/fhir/R4/json.html), each as an
OperationOutcome issue whose ``expression`` is the element's FHIRPath. Business checks (units,
linkIds, the subject) stay with the parsers that know them.

R4B stands in for R4 (ADR 0001): for the resources accepted here they are element for element the
same. About 1 ms per resource; a Bundle of 1000 Observations costs about a second, which the
sender of a batch can afford and which keeps an invalid reading out of the record."""

import importlib
import re
from functools import cache
from typing import Any

import pydantic

# The resource types this server accepts as input.
ACCEPTED = ("Observation", "QuestionnaireResponse", "Questionnaire")


@cache
def _model(resource_type: str) -> type[pydantic.BaseModel]:
    module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
    return getattr(module, resource_type)


# FHIRPath names a choice element by its base name: a bad effectiveDateTime is at
# Observation.effective, as the ingest's own time checks name it (docs/architecture.md).
_CHOICE = re.compile(r"^(effective)(DateTime|Period|Timing|Instant)$")


def _path(resource_type: str, loc: tuple[Any, ...]) -> str:
    path = resource_type
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(part, str) and not part.startswith(("function-", "union[")):
            path += "." + _CHOICE.sub(r"\1", part)
    return path


def _empty(value: Any, path: str, out: list[dict[str, Any]]) -> None:
    if isinstance(value, dict):
        if not value:
            out.append(_issue(path, "an empty object is not FHIR JSON: leave the element out"))
        for key, child in value.items():
            _empty(child, f"{path}.{key}", out)
    elif isinstance(value, list):
        if not value:
            out.append(_issue(path, "an empty array is not FHIR JSON: leave the element out"))
        for i, child in enumerate(value):
            _empty(child, f"{path}[{i}]", out)
    elif value is None or value == "":
        out.append(_issue(path, "null and empty strings are not FHIR JSON: leave the element out"))


def _issue(expression: str, message: str, code: str = "structure") -> dict[str, Any]:
    return {"severity": "error", "code": code, "diagnostics": f"{expression}: {message}",
            "expression": [expression]}


def structure_issues(resource: Any, *, expected: str | None = None) -> list[dict[str, Any]]:
    """What makes ``resource`` invalid FHIR, as OperationOutcome issues ([] when it is valid)."""
    if not isinstance(resource, dict):
        return [_issue(expected or "Resource", "the body must be a FHIR resource (a JSON object)", "invalid")]
    resource_type = resource.get("resourceType")
    if expected and resource_type != expected:
        return [_issue(expected, f"the resource must be a {expected}", "invalid")]
    if resource_type not in ACCEPTED:
        return [_issue("Resource", f"resourceType {str(resource_type)[:40]!r} is not accepted here", "not-supported")]
    issues: list[dict[str, Any]] = []
    _empty(resource, resource_type, issues)
    try:
        _model(resource_type).model_validate(resource)
    except pydantic.ValidationError as exc:
        seen = set()
        for error in exc.errors():
            where = _path(resource_type, error["loc"])
            if (where, error["type"]) in seen:
                continue
            seen.add((where, error["type"]))
            if error["type"] == "extra_forbidden":
                issues.append(_issue(where, "unknown element: FHIR R4 defines no such element here"))
            else:
                issues.append(_issue(where, str(error["msg"])[:300], "value"))
    return issues


# Stands in for each entry's resource while the Bundle around them is checked: the resources are
# checked one by one (by the Observation parser), so a refused entry does not refuse a batch.
_PLACEHOLDER = {"resourceType": "Basic", "code": {"text": "entry"}}


def bundle_issues(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """What makes the Bundle itself (not its entries' resources) invalid FHIR."""
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        entries = []

    def shell(stand_in: Any) -> dict[str, Any]:
        return {**bundle, "entry": [{**e, "resource": stand_in} if isinstance(e, dict) and "resource" in e else e
                                    for e in entries]} if "entry" in bundle else dict(bundle)

    issues: list[dict[str, Any]] = []
    _empty(shell(True), "Bundle", issues)
    try:
        _model("Bundle").model_validate(shell(_PLACEHOLDER))
    except pydantic.ValidationError as exc:
        for error in exc.errors():
            where = _path("Bundle", error["loc"])
            if ".resource" in where:
                continue  # the stand-in's business, not the sender's
            issues.append(_issue(where, "unknown element: FHIR R4 defines no such element here")
                          if error["type"] == "extra_forbidden" else _issue(where, str(error["msg"])[:300], "value"))
    return issues


def structure_outcome(issues: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": issues}
