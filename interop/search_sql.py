"""Several ``values_list`` querysets of one search answered in one round trip (PostgreSQL).

The ORM compiles each queryset as usual (so filters, lookups and field converters stay Django's);
on PostgreSQL the statements go to the server together, separated by semicolons, and each
result is read with ``nextset``. That needs client-side binding, Django's default with psycopg 3
(DATABASES OPTIONS ``server_side_binding`` off). On a loaded machine each round trip waits for a
core twice (the server's and ours); the Observation search's survey side and reading page were
two of them (docs/benchmarks.md, "FHIR search in keyset pages"). Elsewhere: one query each.
"""

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import QuerySet


def rows_together(querysets: Sequence[QuerySet[Any, Any]]) -> list[list[tuple[Any, ...]]]:
    """The rows (tuples, as ``values_list`` gives them) of each queryset, in order."""
    if not querysets:
        return []
    alias = querysets[0].db
    connection = connections[alias]
    if (len(querysets) == 1 or connection.vendor != "postgresql"
            or connection.settings_dict.get("OPTIONS", {}).get("server_side_binding")
            or any(qs.db != alias for qs in querysets)):
        return [[tuple(row) for row in qs] for qs in querysets]
    compilers: list[Any] = []
    statements, params = [], []
    for qs in querysets:
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
            cursor.execute(";\n".join(statements), params)
            raw = cursor.cursor
            for i, compiler in enumerate(c for c in compilers if c is not None):
                if i:
                    raw.nextset()
                rows = raw.fetchall()
                fields = [s[0] for s in compiler.select[0:compiler.col_count]]
                converters = compiler.get_converters(fields)
                fetched.append([tuple(r) for r in compiler.apply_converters(rows, converters)] if converters
                               else [tuple(r) for r in rows])
    answers = iter(fetched)
    return [[] if compiler is None else next(answers) for compiler in compilers]
