"""Several ``values_list`` querysets of one search answered in one round trip (PostgreSQL).

The ORM compiles each queryset as usual (so filters, lookups and field converters stay Django's);
on PostgreSQL the statements go to the server together, separated by semicolons, and each
result is read with ``nextset``. That needs client-side binding, Django's default with psycopg 3
(DATABASES OPTIONS ``server_side_binding`` off). On a loaded machine each round trip waits for a
core twice (the server's and ours); the Observation search's survey side and reading page were
two of them (docs/benchmarks.md, "FHIR search in keyset pages"). Elsewhere: one query each.
"""

from collections.abc import Sequence
from typing import Any, NamedTuple

import psycopg
from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import QuerySet

_C_TIMESTAMPTZ = psycopg.adapters.get_loader(psycopg.postgres.types["timestamptz"].oid, psycopg.pq.Format.TEXT)


class Statement(NamedTuple):
    """Hand-written SQL to run with the querysets (its rows come back as the server sends them)."""
    sql: str
    params: list[Any]


def _each(connection: Any, statement: "QuerySet[Any, Any] | Statement") -> list[tuple[Any, ...]]:
    if isinstance(statement, Statement):
        with connection.cursor() as cursor:
            cursor.execute(statement.sql, statement.params)
            return [tuple(row) for row in cursor.fetchall()]
    return [tuple(row) for row in statement]


def rows_together(querysets: Sequence["QuerySet[Any, Any] | Statement"]) -> list[list[tuple[Any, ...]]]:
    """The rows (tuples, as ``values_list`` gives them) of each queryset or statement, in order.
    The statements run in this order, in one transaction (PostgreSQL runs a multi-statement
    query as one unless a transaction is open already)."""
    if not querysets:
        return []
    connection = connections["default"]
    alias = connection.alias
    if (len(querysets) == 1 or connection.vendor != "postgresql"
            or connection.settings_dict.get("OPTIONS", {}).get("server_side_binding")
            or any(not isinstance(qs, Statement) and qs.db != alias for qs in querysets)):
        return [_each(connection, qs) for qs in querysets]
    compilers: list[Any] = []
    statements, params = [], []
    for qs in querysets:
        if isinstance(qs, Statement):
            compilers.append(qs)
            statements.append(qs.sql)
            params.extend(qs.params)
            continue
        compiler = qs.query.get_compiler(using=alias)
        try:
            sql, qs_params = compiler.as_sql()
        except EmptyResultSet:  # a filter that matches nothing (pk__in=[]): no statement at all
            compilers.append(None)
            continue
        compilers.append(compiler)
        statements.append(sql)
        params.extend(qs_params)
    fetched: list[list[tuple[Any, ...]]] = []
    if statements:
        with connection.cursor() as cursor:
            raw = cursor.cursor
            # Django loads timestamptz with a Python subclass of psycopg's pure-Python loader (to
            # pin the result's tzinfo to UTC); a page's ~200 timestamps took 1.5 ms of CPU that
            # way. psycopg's C loader gives the same instants in the session's zone, which
            # Django sets to UTC (USE_TZ): the same isoformat, the same comparisons.
            if connection.timezone_name == "UTC":
                raw.adapters.register_loader("timestamptz", _C_TIMESTAMPTZ)
            cursor.execute(";\n".join(statements), params)
            for i, compiler in enumerate(c for c in compilers if c is not None):
                if i:
                    raw.nextset()
                rows = raw.fetchall()
                if isinstance(compiler, Statement):
                    fetched.append([tuple(r) for r in rows])
                    continue
                fields = [s[0] for s in compiler.select[0:compiler.col_count]]
                converters = compiler.get_converters(fields)
                fetched.append([tuple(r) for r in compiler.apply_converters(rows, converters)] if converters
                               else [tuple(r) for r in rows])
    answers = iter(fetched)
    return [[] if compiler is None else next(answers) for compiler in compilers]
