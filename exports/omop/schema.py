"""A PostgreSQL schema made from the official OMOP CDM 5.4 DDL (``ddl/``), with the few
vocabulary rows the export references.

Load order (the DDL's README): ddl, primary_keys, constraints, indices. The concept, domain,
vocabulary and concept_class rows refer to each other in a circle (a domain names its concept,
the concept names its domain), so they are inserted after the primary keys and before the
foreign keys are switched on; every later run adds any missing concept row with the keys on."""

import re
from datetime import date
from pathlib import Path
from typing import Any

from django.db.backends.utils import CursorWrapper

from exports.omop.concepts import concepts

DDL_DIR = Path(__file__).with_name("ddl")
DDL_FILES = ("OMOPCDM_postgresql_5.4_ddl.sql", "OMOPCDM_postgresql_5.4_primary_keys.sql",
             "OMOPCDM_postgresql_5.4_constraints.sql", "OMOPCDM_postgresql_5.4_indices.sql")
# A plain lower-case identifier: no quoting games, no reserved or system schema.
SCHEMA_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
RESERVED_SCHEMAS = frozenset({"public", "information_schema"})
VALID_START, VALID_END = date(1970, 1, 1), date(2099, 12, 31)


class OmopError(Exception):
    """Bad input or a state the export refuses, said in words for the user."""


def schema_validate(name: str) -> str:
    if not SCHEMA_NAME.match(name or "") or name in RESERVED_SCHEMAS or name.startswith("pg_"):
        raise OmopError(f"{name!r} is not a usable schema name: use lower-case letters, digits and _ "
                        "(starting with a letter, at most 63), and not public, information_schema or pg_*.")
    return name


def _ddl(file: str, schema: str) -> str:
    return (DDL_DIR / file).read_text(encoding="utf-8").replace("@cdmDatabaseSchema", f'"{schema}"')


def schema_ensure(cursor: CursorWrapper, schema: str) -> bool:
    """Creates the CDM schema if it does not exist; True when it did now. An existing schema
    must already be an OMOP CDM schema (its person table), otherwise it is refused untouched."""
    cursor.execute("SELECT to_regnamespace(%s) IS NOT NULL, to_regclass(%s) IS NOT NULL",
                   [f'"{schema}"', f'"{schema}".person'])
    exists, has_person = cursor.fetchone()
    if exists:
        if not has_person:
            raise OmopError(f"Schema {schema!r} exists but holds no OMOP CDM tables; choose another name.")
        vocabulary_insert(cursor, schema)
        return False
    cursor.execute(f'CREATE SCHEMA "{schema}"')
    ddl, primary_keys, constraints, indices = DDL_FILES
    cursor.execute(_ddl(ddl, schema))
    cursor.execute(_ddl(primary_keys, schema))
    vocabulary_insert(cursor, schema)
    cursor.execute(_ddl(constraints, schema))
    cursor.execute(_ddl(indices, schema))
    return True


def vocabulary_insert(cursor: CursorWrapper, schema: str) -> None:
    """The concept rows of concepts.csv (distinct ids) and the domain, vocabulary and
    concept_class rows they name. Meta rows point at concept 0: their own concept ids are not
    verified (ADR 0019)."""
    rows: dict[int, Any] = {}
    for c in concepts():
        rows.setdefault(c.concept_id, c)
    s = f'"{schema}"'
    for table, key, name_col, concept_col, values in (
            ("domain", "domain_id", "domain_name", "domain_concept_id", sorted({c.domain for c in rows.values()})),
            ("vocabulary", "vocabulary_id", "vocabulary_name", "vocabulary_concept_id",
             sorted({c.vocabulary for c in rows.values()})),
            ("concept_class", "concept_class_id", "concept_class_name", "concept_class_concept_id",
             sorted({c.concept_class for c in rows.values()}))):
        for v in values:
            cursor.execute(f"INSERT INTO {s}.{table} ({key}, {name_col}, {concept_col}) VALUES (%s, %s, 0) "
                           f"ON CONFLICT ({key}) DO NOTHING", [v, v])
    for cid in sorted(rows):
        c = rows[cid]
        code = "No matching concept" if cid == 0 else c.code
        cursor.execute(
            f"INSERT INTO {s}.concept (concept_id, concept_name, domain_id, vocabulary_id, concept_class_id, "
            "standard_concept, concept_code, valid_start_date, valid_end_date, invalid_reason) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, NULL) ON CONFLICT (concept_id) DO NOTHING",
            [cid, c.name[:255], c.domain, c.vocabulary, c.concept_class, None if cid == 0 else "S", code[:50],
             VALID_START, VALID_END])
