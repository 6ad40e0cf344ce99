"""FHIR search parameters: what each resource type supports, and parsing a request's parameters
into typed values (FHIR R4 3.1.1 "Search").

One registry (``SEARCH_PARAMS``) serves three things: the CapabilityStatement lists it, the
parser accepts exactly it, and the per-resource queries (interop.search_resources) use it. A
parameter the registry does not name is never dropped silently: with ``Prefer: handling=strict``
the search is refused (400); otherwise it is left out of the ``self`` link and reported in an
OperationOutcome entry (``search.mode = outcome``), as the FHIR spec asks.

Pure: no database access. Errors are ``rest_framework.exceptions.ParseError`` whose message
starts with the parameter's name, so the OperationOutcome (interop.views.FhirView) names it.
"""

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from django.conf import settings
from rest_framework import exceptions

SP = "http://hl7.org/fhir/SearchParameter/"
OWN_SP = "https://proplatform.dk/fhir/SearchParameter/"  # ours, where R4 defines none

DEFAULT_COUNT = 100
MAX_COUNT = 1000

ParamType = Literal["reference", "token", "date", "string", "uri"]


@dataclass(frozen=True)
class Param:
    name: str
    type: ParamType
    definition: str
    documentation: str = ""


def _p(name: str, type_: ParamType, definition: str, documentation: str = "") -> Param:
    return Param(name, type_, definition if definition.startswith("http") else SP + definition, documentation)


_ID = _p("_id", "token", "Resource-id")
_LAST_UPDATED = _p("_lastUpdated", "date", "Resource-lastUpdated")
_PATIENT_REQUIRED = "Required (patient or subject): searches are made within one patient's record."

SEARCH_PARAMS: dict[str, dict[str, Param]] = {
    "Observation": {p.name: p for p in (
        _ID, _LAST_UPDATED,
        _p("patient", "reference", "clinical-patient", _PATIENT_REQUIRED),
        _p("subject", "reference", "Observation-subject", _PATIENT_REQUIRED),
        _p("code", "token", "clinical-code", "LOINC codes of home readings (and the sender's NPU/LOINC code) "
                                             "and of questionnaire scores"),
        _p("category", "token", "Observation-category", "vital-signs (home readings) or survey (scores)"),
        _p("date", "date", "clinical-date", "effective time (readings) or authored time (scores)"),
    )},
    "QuestionnaireResponse": {p.name: p for p in (
        _ID, _LAST_UPDATED,
        _p("patient", "reference", "QuestionnaireResponse-patient", _PATIENT_REQUIRED),
        _p("subject", "reference", "QuestionnaireResponse-subject", _PATIENT_REQUIRED),
        _p("questionnaire", "reference", "QuestionnaireResponse-questionnaire",
           "canonical url, or url|version"),
        _p("authored", "date", "QuestionnaireResponse-authored"),
        _p("status", "token", "QuestionnaireResponse-status",
           "Only completed responses are exposed; drafts (in-progress) stay with the patient."),
    )},
    "Questionnaire": {p.name: p for p in (
        _ID, _LAST_UPDATED,
        _p("url", "uri", "Questionnaire-url"),
        _p("name", "string", "Questionnaire-name"),
        _p("title", "string", "Questionnaire-title"),
        _p("status", "token", "Questionnaire-status"),
        _p("version", "token", "Questionnaire-version"),
    )},
    "Patient": {p.name: p for p in (
        _ID, _LAST_UPDATED,
        _p("identifier", "token", "Patient-identifier",
           "The CPR number: urn:oid:1.2.208.176.1.2|<10 digits>. Prefer POST Patient/_search, which keeps it "
           "out of URLs; links of the answer never carry it."),
        _p("name", "string", "Patient-name"),
        _p("family", "string", "individual-family"),
        _p("given", "string", "individual-given"),
        _p("birthdate", "date", "individual-birthdate"),
    )},
    "Flag": {p.name: p for p in (
        _ID, _LAST_UPDATED,
        _p("patient", "reference", "clinical-patient", "Required."),
        _p("status", "token", OWN_SP + "Flag-status", "active (unresolved alert) or inactive (resolved)"),
        _p("date", "date", "clinical-date", "when the alert was raised"),
    )},
    "DetectedIssue": {p.name: p for p in (
        _ID, _LAST_UPDATED,
        _p("patient", "reference", "DetectedIssue-patient", "Required."),
        _p("status", "token", OWN_SP + "DetectedIssue-status", "preliminary (unresolved) or final (resolved)"),
        _p("date", "date", OWN_SP + "DetectedIssue-date", "when the alert was raised (DetectedIssue.identified)"),
    )},
    "Group": {p.name: p for p in (
        _ID,
        _p("name", "string", OWN_SP + "Group-name", "the cohort's name (starts with; :contains, :exact)"),
    )},
}

# Sort keys per type: the _sort name -> the key the resource's query understands. Every order ends
# with the id, so an order is total and a keyset cursor is exact.
SORT_KEYS: dict[str, tuple[str, ...]] = {
    "Observation": ("date",),
    "QuestionnaireResponse": ("authored", "_lastUpdated", "_id"),
    "Questionnaire": ("url", "version", "title", "status", "_lastUpdated", "_id"),
    "Patient": ("family", "given", "birthdate", "_lastUpdated", "_id"),
    "Flag": ("date", "_lastUpdated", "_id"),
    "DetectedIssue": ("date", "_lastUpdated", "_id"),
    "Group": ("name", "_id"),
}
DEFAULT_SORT: dict[str, tuple[tuple[str, bool], ...]] = {
    "Observation": (("date", True),),
    "QuestionnaireResponse": (("authored", True),),
    "Questionnaire": (("url", False), ("_lastUpdated", True)),
    "Patient": (("family", False), ("given", False)),
    "Flag": (("date", True),),
    "DetectedIssue": (("date", True),),
    "Group": (("name", False),),
}
INCLUDES: dict[str, tuple[str, ...]] = {
    "Observation": ("Observation:patient", "Observation:subject"),
    "QuestionnaireResponse": ("QuestionnaireResponse:patient", "QuestionnaireResponse:subject",
                              "QuestionnaireResponse:questionnaire"),
    "Flag": ("Flag:patient",),
    "DetectedIssue": ("DetectedIssue:patient",),
}
# Result parameters (and formatting ones that change nothing in what is found).
CONTROL = {"_sort", "_count", "_summary", "_include", "_total", "_cursor", "_format", "_pretty"}
STRING_MODIFIERS = {"", "exact", "contains"}


# --- Typed values --------------------------------------------------------------------------

@dataclass(frozen=True)
class Token:
    system: str | None  # None: any system; "": no system ("|code")
    code: str | None  # None: any code in the system ("system|")


@dataclass(frozen=True)
class DateRange:
    """A search date as the half-open range of instants its precision implies ([lo, hi)), with
    its prefix. ``2026-03`` is all of March 2026, local (Danish) time when no zone is given."""
    prefix: str
    lo: datetime
    hi: datetime

    def matches_point(self, t: datetime) -> bool:
        return {"eq": self.lo <= t < self.hi, "ne": not self.lo <= t < self.hi, "lt": t < self.lo,
                "eb": t < self.lo, "le": t < self.hi, "gt": t >= self.hi, "sa": t >= self.hi,
                "ge": t >= self.lo}[self.prefix]


@dataclass(frozen=True)
class StringValue:
    value: str
    modifier: str  # "", "exact", "contains"


@dataclass
class Search:
    """A parsed search. ``filters``: name -> AND list of OR lists of typed values."""
    resource_type: str
    filters: dict[str, list[list[Any]]] = field(default_factory=dict)
    sort: tuple[tuple[str, bool], ...] = ()
    count: int = DEFAULT_COUNT
    summary_count: bool = False
    total: bool = True
    include: list[str] = field(default_factory=list)
    cursor: str | None = None
    strict: bool = False
    # Issues to report in the Bundle's OperationOutcome entry (ignored parameters, a clamped _count).
    issues: list[dict[str, Any]] = field(default_factory=list)
    # The parameters that were honoured, as (name, raw value), for self/next/previous links.
    link_params: list[tuple[str, str]] = field(default_factory=list)

    def values(self, name: str) -> list[list[Any]]:
        return self.filters.get(name, [])


def bad(name: str, message: str) -> exceptions.ParseError:
    return exceptions.ParseError(f"{name}: {message}")


# --- Parsing -------------------------------------------------------------------------------

def strict_handling(prefer: str) -> bool:
    return any(part.strip().replace(" ", "") == "handling=strict" for part in prefer.split(";")
               for part in part.split(","))


def _or_list(raw: str) -> list[str]:
    """Comma-separated alternatives; ``\\,`` is a literal comma (FHIR escaping)."""
    parts, current, escaped = [], [], False
    for ch in raw:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def parse_token(name: str, raw: str) -> Token:
    if raw.count("|") > 1:
        # The value is not echoed: it may be a CPR number (Patient identifier).
        raise bad(name, "a token is code, system|code or |code (at most one '|').")
    if "|" in raw:
        system, code = raw.split("|")
        if not system and not code:
            raise bad(name, "a token needs a system or a code.")
        return Token(system, code or None)
    if not raw:
        raise bad(name, "empty value.")
    return Token(None, raw)


def parse_reference(name: str, raw: str, base_url: str, target: str = "Patient") -> str:
    """The id of a ``target`` reference in any of its forms: ``x``, ``Patient/x``,
    ``<this server's base>/Patient/x``. Another server's URL is refused: we hold none of its
    resources."""
    value = raw
    if "://" in value:
        for base in _bases(base_url):
            if value.startswith(base + "/"):
                value = value[len(base) + 1:]
                break
        else:
            raise bad(name, "an absolute reference must point at this server "
                            f"({base_url}/{target}/<id>).")
    if "/" in value:
        type_, _, value = value.partition("/")
        if type_ != target or not value or "/" in value:
            raise bad(name, f"expected {target}/<id>, <id> or {base_url}/{target}/<id>.")
    if not value:
        raise bad(name, "empty reference.")
    return value


def _bases(base_url: str) -> list[str]:
    """The server's base in http and https (behind the TLS proxy a client may use either)."""
    rest = base_url.split("://", 1)[-1]
    return [f"https://{rest}", f"http://{rest}"]


_DATE = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d{1,6}))?)?(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?")
PREFIXES = ("eq", "ne", "lt", "le", "gt", "ge", "sa", "eb")


def parse_date(name: str, raw: str) -> DateRange:
    prefix = "eq"
    if raw[:2].isalpha():
        prefix, raw = raw[:2], raw[2:]
        if prefix not in PREFIXES:
            raise bad(name, f"unknown prefix {prefix!r}; use one of {', '.join(PREFIXES)}.")
    match = _DATE.fullmatch(raw)
    if not match:
        # Values are not echoed (a CPR number typed into birthdate would be).
        raise bad(name, "not a FHIR date (2026, 2026-03, 2026-03-05, "
                        "2026-03-05T10:00:00+01:00).")
    g = match.groupdict()
    local = ZoneInfo(settings.TIME_ZONE)
    try:
        year = int(g["y"])
        if g["m"] is None:
            lo_d, hi_d = date(year, 1, 1), date(year + 1, 1, 1)
        elif g["d"] is None:
            month = int(g["m"])
            lo_d = date(year, month, 1)
            hi_d = date(year + month // 12, month % 12 + 1, 1)
        else:
            lo_d = date(year, int(g["m"]), int(g["d"]))
            hi_d = lo_d + timedelta(days=1)
        if g["H"] is None:
            return DateRange(prefix, datetime.combine(lo_d, time(), local), datetime.combine(hi_d, time(), local))
        zone = (g["tz"] or "").replace("Z", "+00:00")
        tz = datetime.fromisoformat(f"2000-01-01T00:00{zone}").tzinfo if zone else local
        micro = int((g["f"] or "0").ljust(6, "0"))
        lo = datetime(year, lo_d.month, lo_d.day, int(g["H"]), int(g["M"]), int(g["S"] or 0), micro, tzinfo=tz)
    except ValueError as exc:
        raise bad(name, f"not a valid date ({exc}).") from None
    # The precision given sets the range: to the minute, the second, or the fraction given.
    step = (timedelta(minutes=1) if g["S"] is None else timedelta(seconds=1) if g["f"] is None
            else timedelta(microseconds=10 ** (6 - len(g["f"]))))
    return DateRange(prefix, lo, lo + step)


def parse_search(resource_type: str, params: list[tuple[str, str]], *, prefer: str, base_url: str,
                 hidden: frozenset[str] = frozenset()) -> Search:
    """``params``: the request's parameters in order (query string or POSTed form). ``hidden``:
    parameters whose values must never appear in a link (the CPR identifier)."""
    declared = SEARCH_PARAMS[resource_type]
    search = Search(resource_type, strict=strict_handling(prefer), sort=DEFAULT_SORT[resource_type])
    for name, raw in params:
        if "\x00" in name or "\x00" in raw:
            raise bad(name.replace("\x00", "") or "parameter", "NUL bytes are not allowed.")
        base_name, _, modifier = name.partition(":")
        if base_name in CONTROL:
            if _control(search, base_name, raw, resource_type) and base_name not in {"_cursor", "_format", "_pretty"}:
                search.link_params.append((name, raw))
            continue
        param = declared.get(base_name)
        if param is None:
            _unsupported(search, name, f"{name} is not a supported search parameter of {resource_type} "
                                       "(see /fhir/metadata); it was ignored.")
            continue
        search.filters.setdefault(base_name, []).append(_values(param, modifier, name, raw, base_url))
        if name not in hidden:
            search.link_params.append((name, raw))
    return search


def _unsupported(search: Search, name: str, message: str) -> None:
    if search.strict:
        raise bad(name, message.replace("; it was ignored", "").removesuffix(".")
                  + " (Prefer: handling=strict).")
    search.issues.append({"severity": "warning", "code": "not-supported", "diagnostics": message})


def _values(param: Param, modifier: str, name: str, raw: str, base_url: str) -> list[Any]:
    if param.type == "string":
        if modifier not in STRING_MODIFIERS:
            raise bad(name, f"modifier :{modifier} is not supported (use :exact or :contains).")
        return [StringValue(v, modifier) for v in _or_list(raw) if _nonempty(name, v)]
    if param.name in ("patient", "subject") and modifier in ("", "Patient"):
        return [parse_reference(name, v, base_url) for v in _or_list(raw)]
    if modifier:
        # A modifier changes what matches (":not" inverts it): ignoring one would answer another
        # question, so the FHIR spec says reject it.
        raise bad(name, f"modifier :{modifier} is not supported.")
    if param.type == "token":
        return [parse_token(name, v) for v in _or_list(raw)]
    if param.type == "date":
        return [parse_date(name, v) for v in _or_list(raw)]
    return [v for v in _or_list(raw) if _nonempty(name, v)]  # uri


def _nonempty(name: str, value: str) -> bool:
    if not value:
        raise bad(name, "empty value.")
    return True


def _control(search: Search, name: str, raw: str, resource_type: str) -> bool:
    """Applies a result parameter; False when it was ignored (and reported)."""
    if name == "_count":
        if not raw.isascii() or not raw.isdigit():
            raise bad("_count", f"must be a whole number from 0 to {MAX_COUNT}, not {raw[:20]!r}.")
        count = int(raw)
        if count > MAX_COUNT:
            if search.strict:
                raise bad("_count", f"at most {MAX_COUNT} per page (Prefer: handling=strict).")
            search.issues.append({"severity": "information", "code": "informational",
                                  "diagnostics": f"_count={count} exceeds the maximum page size; pages hold "
                                                 f"{MAX_COUNT}. Follow the next link for the rest."})
            count = MAX_COUNT
        search.count = count
        search.summary_count = search.summary_count or count == 0
    elif name == "_summary":
        if raw == "count":
            search.summary_count = True
        elif raw != "false":
            _unsupported(search, "_summary", f"_summary={raw[:20]} is not supported (count and false are); "
                                             "full resources were returned.")
            return False
    elif name == "_total":
        if raw not in ("none", "estimate", "accurate"):
            raise bad("_total", "none, estimate or accurate.")
        search.total = raw != "none"
    elif name == "_sort":
        keys: list[tuple[str, bool]] = []
        for key in raw.split(","):
            desc = key.startswith("-")
            key = key.removeprefix("-")
            if key not in SORT_KEYS[resource_type]:
                raise bad("_sort", f"{key[:40]!r} is not a sort key of {resource_type}; use "
                                   f"{', '.join(SORT_KEYS[resource_type])} (- for descending).")
            if key in {k for k, _ in keys}:
                raise bad("_sort", f"{key} is given twice.")
            keys.append((key, desc))
        search.sort = tuple(keys)
    elif name == "_include":
        if raw in INCLUDES.get(resource_type, ()):
            if raw not in search.include:
                search.include.append(raw)
        else:
            _unsupported(search, "_include", f"_include={raw[:60]} is not supported for {resource_type} "
                                             f"(supported: {', '.join(INCLUDES.get(resource_type, ())) or 'none'}); "
                                             "it was ignored.")
            return False
    elif name == "_cursor":
        search.cursor = raw
    elif name == "_format" and raw not in ("json", "application/json", "application/fhir+json"):
        raise bad("_format", "only JSON is served.")
    return True


def capability_search_params(resource_type: str) -> dict[str, Any]:
    """The CapabilityStatement's search part of one resource type."""
    part: dict[str, Any] = {"searchParam": [
        {"name": p.name, "type": p.type, "definition": p.definition,
         **({"documentation": p.documentation} if p.documentation else {})}
        for p in SEARCH_PARAMS[resource_type].values()]}
    if resource_type in INCLUDES:
        part["searchInclude"] = list(INCLUDES[resource_type])
    return part


SEARCH_DOCUMENTATION = (
    f"Search: _count defaults to {DEFAULT_COUNT} and is at most {MAX_COUNT} (more is clamped and said so "
    "in an OperationOutcome entry; refused with Prefer: handling=strict). Pages are keyset pages: follow "
    "Bundle.link next/previous (an opaque, signed _cursor). Bundle.total is counted unless _total=none. "
    "Unsupported parameters are reported in an OperationOutcome entry (search.mode=outcome), or refused "
    "with Prefer: handling=strict. Dates without a zone are Danish local time. _sort keys per type: "
    + "; ".join(f"{t}: {', '.join(k)}" for t, k in SORT_KEYS.items()) + "."
)
