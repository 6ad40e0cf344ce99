"""Cells computed now from the live rows: in SQL on PostgreSQL (outcomes.indicator_sql), from
the Python definitions elsewhere (outcomes.indicator_units over a Dataset)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from django.db import connections

from outcomes import indicator_sql
from outcomes.indicator_core import Cell, Dataset, Filters, Indicator, cells_from_units, episodes_in_scope
from outcomes.models import IndicatorCell
from patients.models import CareTeam


def cells_from_rows(rows: list[tuple[Any, ...]], using: str = "default") -> list[Cell]:
    """Cells from the rows of indicator_sql.cells_query."""
    teams = {pk: (name, department, region) for pk, name, department, region in
             CareTeam.objects.using(using).values_list("pk", "name", "department", "region")}
    out = []
    # Django's PostgreSQL backend hands jsonb over undecoded (JSONField decodes it): decode here.
    decode = lambda v: json.loads(v) if isinstance(v, str) else v  # noqa: E731
    for program_id, team_id, sex, band, month, n_patients, n_units, num, den, values, categories in rows:
        name, department, region = teams.get(team_id, (str(team_id), "", ""))
        out.append(Cell(program_id=program_id, team_id=team_id, team_name=name, department=department,
                        region=region, sex=sex, age_band=band, month=month, n_patients=n_patients,
                        n_units=n_units, numerator=num, denominator=den, values=list(decode(values) or []),
                        categories=dict(decode(categories) or {})))
    return out


def live_cells(indicator: Indicator, filters: Filters, today: date, *, dataset: Dataset | None = None,
               using: str = "default", in_sql: bool | None = None) -> list[Cell]:
    """The indicator's cells over the scope, computed now. ``in_sql``: force the SQL (True) or the
    Python (False) path; by default SQL on PostgreSQL."""
    if in_sql is None:
        in_sql = connections[using].vendor == "postgresql"
    if in_sql:
        return cells_from_rows(indicator_sql.cells_rows(indicator, filters, today, using=using), using)
    dataset = dataset or Dataset(episodes_in_scope(filters, today), today)
    return cells_from_units(indicator.units(dataset))


def cells_insert_sql(indicator: Indicator, shared: bool = False) -> str:
    """INSERT … SELECT of an indicator's cells over everything (no filters): the refresh on
    PostgreSQL, without the rows leaving the database."""
    body = indicator_sql.cells_query(indicator.sql(shared=shared), Filters(),
                                     tuple(c for c, _label in indicator.categories), shared=shared,
                                     additive=indicator_sql.additive(indicator))
    return f"{_cells_insert()} SELECT %(code)s, * FROM ({body}) cells"  # noqa: S608


def _cells_insert() -> str:
    """The INSERT of IndicatorCell rows in the column order the cell queries select."""
    return (f"INSERT INTO {IndicatorCell._meta.db_table} (indicator, program_id, care_team_id, sex, "  # noqa: S608
            f"age_band, month, n_patients, n_units, numerator, denominator, \"values\", categories)")


def batch_insert_sql(name: str, indicators: list[Indicator]) -> str:
    """INSERT … SELECT of the cells of several indicators computed in one pass (Indicator.batch,
    outcomes.indicator_sql.BATCHES), over the refresh's shared rows."""
    body = indicator_sql.BATCHES[name]([(i.code, *i.batch_args) for i in indicators])
    return f"{_cells_insert()} {body}"
