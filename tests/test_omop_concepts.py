"""The OMOP concept table (exports/omop/concepts.csv, ADR 0019): every code the platform can emit
is in it, and every id other than 0 names the public source it was copied from — never a guess."""

import json
import re
from typing import Any

from exports.omop import concepts
from monitoring.measures import MEASURES
from questionnaires.library import HERE as LIBRARY

LOINC = "http://loinc.org"
SOURCE_WITH_COMMIT = re.compile(r"[\w.-]+/[\w.-]+ @[0-9a-f]{40} \S+")


def platform_codes() -> set[tuple[str, str]]:
    """(system, code) of every measure, unit and LOINC coding in the questionnaire library."""
    codes: set[tuple[str, str]] = set()
    for m in MEASURES.values():
        codes |= {("LOINC", m.loinc), ("LOINC", m.value_loinc or m.loinc), ("UCUM", m.unit)}
        if m.second:
            codes.add(("LOINC", m.second.loinc))

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("system") == LOINC and node.get("code"):
                codes.add(("LOINC", node["code"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in sorted(LIBRARY.glob("*.json")):
        walk(json.loads(path.read_text(encoding="utf-8")))
    return codes


def test_every_code_the_platform_can_emit_is_in_the_concept_table_even_when_its_id_is_0():
    missing = platform_codes() - set(concepts.by_code())
    assert not missing, sorted(missing)


def test_every_concept_id_other_than_0_names_the_repository_commit_and_file_it_came_from():
    for c in concepts.concepts():
        assert c.source.strip(), c
        if c.concept_id != 0:
            assert SOURCE_WITH_COMMIT.search(c.source), (c.code, c.source)
        elif c.code_system != "None":
            assert "not found" in c.source or c.source.startswith("no "), (c.code, c.source)


def test_one_row_per_code_and_no_standard_id_shared_by_two_codes():
    keys = [(c.code_system, c.code) for c in concepts.concepts()]
    assert len(keys) == len(set(keys))
    ids = [c.concept_id for c in concepts.concepts() if c.concept_id != 0]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_the_ids_found_in_ohdsi_sources_are_the_ones_the_export_writes():
    # Spot checks against the sources named in the CSV (OHDSI dbt-synthea's Athena extract,
    # CommonDataModel, Vocabulary-v5.0, ETL-Synthea, PEDSnet conventions).
    assert concepts.concept_id("LOINC", "44249-1") == 3044486  # PHQ-9 panel
    assert concepts.concept_id("LOINC", "44261-6") == 3042932  # PHQ-9 total score
    assert concepts.concept_id("LOINC", "70274-6") == 42868746  # GAD-7 total score
    assert concepts.concept_id("UCUM", "Cel") == 586323
    assert concepts.concept_id("UCUM", "L/min") == 8698
    assert concepts.concept_id("Episode", "episode-of-care") == 32533
    assert concepts.concept_id("CDM", "5.4") == 756265
    # Not found in a citable source: 0, never a guess.
    assert concepts.concept_id("LOINC", "15074-8") == 0 and concepts.concept_id("LOINC", "19935-6") == 0
    assert concepts.concept_id("LOINC", "LA6568-5") == 0 and concepts.concept_id("LOINC", "44250-9") == 0
    assert concepts.concept_id("LOINC", "unknown-code") == 0
