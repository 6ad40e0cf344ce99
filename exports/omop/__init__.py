"""OMOP CDM 5.4 export (issue 25, ADR 0019): the official PostgreSQL DDL in ``ddl/``, the
platform's codes mapped to OMOP concept ids in ``concepts.csv``, the schema set-up in
``schema.py`` and the export itself, with its checks, in ``export.py``."""
