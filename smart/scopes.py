"""SMART ``system/`` scopes: parsed once at the boundary into typed ``Scope`` values.

Both grammars of SMART App Launch are read: v1 ``system/Patient.read`` (``read`` = read and
search, ``write`` = create, update, delete, ``*`` = all) and v2 ``system/Patient.rs`` (letters
from ``cruds``, in that order). A scope is a resource type (or ``*``) and a set of letters, so
``system/*.read`` and ``system/*.rs`` are the same scope. v2 granular scopes
(``system/Observation.rs?category=…``) and any other context (``patient/``, ``user/``,
``launch``, ``openid``) are refused: a backend service acts for itself only."""

import re
from dataclasses import dataclass

# The resource types a system client may be given: what $export writes (exports.bulk.TYPES —
# a test keeps the two in step) and the two definitions it may read (Questionnaire, Group).
RESOURCE_TYPES = ("Patient", "EpisodeOfCare", "Device", "QuestionnaireResponse", "Observation",
                  "Questionnaire", "Group")
# What $export writes (exports.bulk.TYPES; a test keeps the two in step).
EXPORT_TYPES = RESOURCE_TYPES[:5]
# Types whose FHIR read/search answers carry identified patient data: only a client an admin
# allowed identified data may read them outside a (pseudonymised) $export.
PATIENT_DATA_TYPES = frozenset({"Patient", "EpisodeOfCare", "Device", "QuestionnaireResponse", "Observation"})
READ_ONLY = frozenset("rs")
_V1 = {"read": frozenset("rs"), "write": frozenset("cud"), "*": frozenset("cruds")}
_SCOPE = re.compile(r"system/(?P<type>\*|[A-Z][A-Za-z]{1,63})\.(?P<perms>read|write|\*|c?r?u?d?s?)")


class ScopeError(ValueError):
    """A scope string this server does not understand or grant; the message says which."""


@dataclass(frozen=True)
class Scope:
    resource_type: str  # a type of RESOURCE_TYPES or "*"
    perms: frozenset[str]  # letters of "cruds"

    def __str__(self) -> str:
        letters = "".join(c for c in "cruds" if c in self.perms)
        return f"system/{self.resource_type}.{letters}"

    def covers(self, resource_type: str) -> bool:
        return self.resource_type in ("*", resource_type)


def scope_parse(text: str) -> Scope:
    match = _SCOPE.fullmatch(text)
    if match is None or not match["perms"]:
        if "?" in text and text.startswith("system/"):
            raise ScopeError(f"{text[:80]!r}: granular scopes (with ?) are not supported.")
        raise ScopeError(f"{text[:80]!r} is not a system scope (system/<type or *>.read or .rs); a backend "
                         "service is granted system scopes only.")
    resource_type = match["type"]
    if resource_type != "*" and resource_type not in RESOURCE_TYPES:
        raise ScopeError(f"{text[:80]!r}: this server has no {resource_type} for system clients; types: "
                         f"{', '.join(RESOURCE_TYPES)}.")
    perms = _V1.get(match["perms"]) or frozenset(match["perms"])
    return Scope(resource_type, perms)


def scopes_parse(text: str) -> list[Scope]:
    """A space-separated scope list (RFC 6749 §3.3); duplicates dropped, order kept."""
    found: list[Scope] = []
    for part in text.split():
        scope = scope_parse(part)
        if scope not in found:
            found.append(scope)
    return found


def scopes_text(scopes: list[Scope]) -> str:
    return " ".join(str(s) for s in scopes)


def scopes_grant(*, requested: list[Scope], allowed: list[Scope]) -> list[Scope]:
    """What of ``requested`` the ``allowed`` scopes cover, narrowed where they cover only part:
    ``system/*.read`` requested by a client allowed ``system/Patient.read`` is granted
    ``system/Patient.rs``; ``system/Observation.cruds`` allowed ``.rs`` gets ``.rs``. An empty
    answer means nothing requested is allowed (invalid_scope)."""
    granted: list[Scope] = []

    def add(scope: Scope) -> None:
        if scope.perms and scope not in granted:
            granted.append(scope)

    for want in requested:
        for have in allowed:
            perms = want.perms & have.perms
            if have.resource_type in ("*", want.resource_type):
                add(Scope(want.resource_type, perms))
            elif want.resource_type == "*":
                add(Scope(have.resource_type, perms))
    # A scope wholly inside another granted one adds nothing (system/Patient.rs beside system/*.rs).
    return [s for s in granted if not any(o != s and o.covers(s.resource_type) and s.perms <= o.perms
                                          for o in granted)]


def scopes_allow(scopes: list[Scope], resource_type: str, letters: str) -> bool:
    """Whether ``scopes`` together give every letter of ``letters`` on ``resource_type``."""
    perms: set[str] = set()
    for scope in scopes:
        if scope.covers(resource_type):
            perms |= scope.perms
    return set(letters) <= perms
