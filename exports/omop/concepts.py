"""The repository's concept table: each code the platform uses, with its OMOP concept id and
where that id came from. A code without a verified standard concept has id 0 (the OMOP
convention for "no matching concept"); the export then carries the code as the source value."""

import csv
import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CONCEPTS_CSV = Path(__file__).with_name("concepts.csv")


@dataclass(frozen=True)
class Concept:
    code_system: str
    code: str
    concept_id: int
    domain: str
    vocabulary: str
    concept_class: str
    name: str
    source: str


@cache
def concepts() -> tuple[Concept, ...]:
    with CONCEPTS_CSV.open(encoding="utf-8", newline="") as f:
        return tuple(
            Concept(r["code_system"], r["code"], int(r["concept_id"]), r["domain"], r["vocabulary"],
                    r["concept_class"], r["concept_name"], r["source"])
            for r in csv.DictReader(f))


@cache
def by_code() -> dict[tuple[str, str], int]:
    return {(c.code_system, c.code): c.concept_id for c in concepts()}


def concept_id(system: str, code: str | None) -> int:
    """The standard concept id of ``code`` in ``system``, or 0 when there is none we can cite."""
    if not code:
        return 0
    return by_code().get((system, code), 0)


@cache
def version() -> str:
    """Names the concept table's content, for cdm_source.vocabulary_version (varchar(20))."""
    return "pp-" + hashlib.sha256(CONCEPTS_CSV.read_bytes()).hexdigest()[:12]
