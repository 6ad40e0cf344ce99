"""Figures per group, computed where the rows are.

On PostgreSQL the indicator pages sum the precomputed cells (outcomes.models.IndicatorCell) in
one GROUP BY per view — GROUPING SETS for the drill-down levels, ``percentile_cont`` for the
medians, quartiles and 90th percentiles (linear interpolation, the same type-7 quantile as
outcomes.stats.quantile) — and get a few hundred aggregate rows back instead of every cell.
Elsewhere (SQLite, the small unit tests) the same figures come from outcomes.indicator_core.
aggregate over the cells in Python. tests/test_indicator_sql.py checks both give the same answers.

Suppression is applied afterwards, in Python, on these small aggregate rows (outcomes.dashboard).
"""

# ruff: noqa: S608 — every string spliced in is the code's own; filter values are parameters.

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any

from django.db import connections

from outcomes.indicator_core import Figure, Filters, Indicator, Kind, headline_figure, ratio_figure
from outcomes.models import IndicatorCell
from outcomes.stats import t975
from patients.models import CareTeam

ROOT = "all"
QUARTER = "substr(c.month, 1, 4) || '-Q' || ((substr(c.month, 6, 2)::int + 2) / 3)::text"


def figure_from(indicator: Indicator, *, n_patients: int, n_units: int, numerator: float, denominator: float,
                categories: dict[str, int], stats: tuple[Any, ...] | None) -> Figure:
    """A group's figure from its sums (and, for a distribution, ``stats`` = (n, mean, sd, q1,
    median, q3, p90) of its values) — the arithmetic of outcomes.indicator_core.aggregate."""
    fig = Figure(n_patients=int(n_patients), n_units=int(n_units), numerator=float(numerator),
                 denominator=float(denominator), categories=categories)
    if n_units == 0:
        return fig
    if indicator.kind in (Kind.PROPORTION, Kind.RATE):
        ratio_figure(indicator, fig)
    elif indicator.kind == Kind.DISTRIBUTION and stats and stats[0]:
        n, mean, sd, q1, median, q3, p90 = stats
        fig.q1, fig.median, fig.q3, fig.p90 = q1, median, q3, p90
        fig.mean = mean
        if n >= 2:
            half = t975(n - 1) * (sd or 0.0) / math.sqrt(n)
            fig.mean_low, fig.mean_high = mean - half, mean + half
        headline_figure(indicator, fig)
    return fig


def in_database(using: str = "default") -> bool:
    return connections[using].vendor == "postgresql"


def _where(code: str, filters: Filters, scope: Hashable) -> tuple[str, dict[str, Any]]:
    where = ["c.indicator = %(code)s"]
    p: dict[str, Any] = {"code": code}
    if filters.program_id:
        where.append("c.program_id = %(program_id)s")
        p["program_id"] = filters.program_id
    if filters.sex:
        where.append("c.sex = %(sex)s")
        p["sex"] = filters.sex
    if filters.age_band:
        where.append("c.age_band = %(age_band)s")
        p["age_band"] = filters.age_band
    if filters.start_from:
        where.append("c.month >= %(month_from)s")
        p["month_from"] = filters.start_from.strftime("%Y-%m")
    if filters.start_to:
        where.append("c.month <= %(month_to)s")
        p["month_to"] = filters.start_to.strftime("%Y-%m")
    if isinstance(scope, tuple):
        if scope[0] == "region":
            where.append("t.region = %(s_region)s")
            p["s_region"] = scope[1]
        elif scope[0] == "department":
            where.append("t.region = %(s_region)s AND t.department = %(s_department)s")
            p["s_region"], p["s_department"] = scope[1], scope[2]
        elif scope[0] == "team":
            where.append("c.care_team_id = %(s_team)s")
            p["s_team"] = scope[1]
    return " AND ".join(where), p


def _keyed(rows: list[tuple[Any, ...]], sets: dict[str, tuple[str, ...]],
           columns: list[str]) -> dict[tuple[str, Any], tuple[Any, ...]]:
    """Rows of a GROUPING SETS query (keys, grouping flags, aggregates…) keyed (set name, value)."""
    width = len(columns) or 1
    out = {}
    for row in rows:
        keys, flags = tuple(row[:width]), tuple(row[width])
        used = {col for col, flag in zip(columns, flags, strict=True) if flag == 0}
        name = next(n for n, cols in sets.items() if set(cols) == used)
        out[(name, tuple(keys[columns.index(col)] for col in sets[name]))] = tuple(row[width + 1:])
    return out


def _grouping(sets: dict[str, tuple[str, ...]]) -> tuple[list[str], str, str]:
    columns = sorted({col for cols in sets.values() for col in cols})
    select_keys = ", ".join(f"{col} AS k{i}" for i, col in enumerate(columns)) or "NULL"
    flags_sql = "ARRAY[" + ", ".join(f"GROUPING({col})" for col in columns) + "]::int[]"
    group_sets = ", ".join("(" + ", ".join(cols) + ")" for cols in sets.values())
    return columns, f"{select_keys}, {flags_sql}", f"GROUP BY GROUPING SETS ({group_sets})"


def _grouped(indicator: Indicator, filters: Filters, scope: Hashable, sets: dict[str, tuple[str, ...]],
             using: str, stats_sets: dict[str, tuple[str, ...]] | None = None,
             stats_scope: Hashable = ROOT) -> dict[tuple[str, Any], Figure]:
    """Figures per grouping set: ``sets`` names each set by its columns (SQL expressions);
    the result is keyed (set name, value of its columns — a tuple, or () for the total).

    A distribution's mean, quartiles and p90 need its values sorted per set, the costly part:
    ``stats_sets`` (within ``stats_scope``) limits them to the sets a page shows; the others get
    their counts only (all suppression needs)."""
    table, team_table = IndicatorCell._meta.db_table, CareTeam._meta.db_table
    where, p = _where(indicator.code, filters, scope)
    columns, head, tail = _grouping(sets)
    cats = [c for c, _label in indicator.categories]
    cat_cols = "".join(f", COALESCE(sum((c.categories->>'{c}')::int), 0)" for c in cats)
    base = f"FROM {table} c JOIN {team_table} t ON t.id = c.care_team_id"
    stats: dict[tuple[str, Any], tuple[Any, ...]] = {}
    with connections[using].cursor() as cursor:
        # These are short reads over the small cells table: compiling them (JIT, which the
        # planner's cost estimate for the unnested values triggers) took seconds, running them ms.
        cursor.execute("SET jit = off")
        cursor.execute(f"SELECT {head}, sum(c.n_patients), sum(c.n_units), sum(c.numerator), sum(c.denominator)"
                       f"{cat_cols} {base} WHERE {where} {tail}", p)
        sums = _keyed(cursor.fetchall(), sets, columns)
        if indicator.kind == Kind.DISTRIBUTION:
            s_sets = stats_sets if stats_sets is not None else sets
            s_columns, s_head, s_tail = _grouping(s_sets)
            s_where, s_p = _where(indicator.code, filters, stats_scope)
            cursor.execute(
                f"SELECT {s_head}, count(x.v), avg(x.v), stddev_samp(x.v), "
                f"percentile_cont(ARRAY[0.25, 0.5, 0.75, 0.9]) WITHIN GROUP (ORDER BY x.v) {base} "
                f"CROSS JOIN LATERAL (SELECT v::float AS v FROM jsonb_array_elements_text(c.\"values\") AS e(v)) x "
                f"WHERE {s_where} {s_tail}", s_p)
            for key, (n, mean, sd, qs) in _keyed(cursor.fetchall(), s_sets, s_columns).items():
                if not n or qs is None:
                    continue  # a group whose cells hold no values: counts only, as a group with none
                stats[key] = (n, mean, sd, qs[0], qs[1], qs[2], qs[3])
        cursor.execute("RESET jit")
    out: dict[tuple[str, Any], Figure] = {}
    for key, row in sums.items():
        n_patients, n_units, num, den = row[:4]
        out[key] = figure_from(
            indicator, n_patients=n_patients or 0, n_units=n_units or 0, numerator=num or 0.0,
            denominator=den or 0.0, categories=dict(zip(cats, (int(v) for v in row[4:]), strict=True)),
            stats=stats.get(key))
    return out


def tree_figures(indicator: Indicator, filters: Filters, *, national_only: bool = False,
                 using: str = "default") -> dict[Hashable, Figure]:
    """The drill-down tree's figures from the precomputed cells: national, each region,
    department and team (nodes as outcomes.dashboard names them); groups without units are
    absent."""
    sets: dict[str, tuple[str, ...]] = {"all": ()}
    if not national_only:
        sets |= {"region": ("t.region",), "department": ("t.region", "t.department"),
                 "team": ("c.care_team_id",)}
    out: dict[Hashable, Figure] = {}
    for (name, value), fig in _grouped(indicator, filters, ROOT, sets, using).items():
        out[ROOT if name == "all" else (name, *value)] = fig
    return out


def grid_figures(indicator: Indicator, filters: Filters, keys: tuple[str, ...], position: Hashable = ROOT,
                 using: str = "default", national_only: bool = False) -> dict[str, dict[tuple[Hashable, str], Figure]]:
    """Figures of every group of the drill-down tree by quarter, sex and age band (those of
    ``keys``): ``out[key][(node, category)]``, one query (outcomes.suppression.suppress_grid
    suppresses them together). ``national_only``: the tree is the national group alone (the
    front page), so only its breakdown is summed."""
    columns = {"quarter": QUARTER, "sex": "c.sex", "age": "c.age_band"}
    levels: dict[str, tuple[str, ...]] = {"all": ()} if national_only else {
        "all": (), "region": ("t.region",), "department": ("t.region", "t.department"), "team": ("c.care_team_id",)}
    sets = {f"{k}|{level}": (*cols, columns[k]) for k in keys for level, cols in levels.items()}
    # The values' statistics only where a page shows them: the position's own breakdowns.
    level = position[0] if isinstance(position, tuple) else "all"
    shown = {name: cols for name, cols in sets.items() if name.endswith(f"|{level}")}
    out: dict[str, dict[tuple[Hashable, str], Figure]] = {k: {} for k in keys}
    for (name, value), fig in _grouped(indicator, filters, ROOT, sets, using, stats_sets=shown,
                                       stats_scope=position).items():
        key, level = name.split("|")
        node: Hashable = ROOT if level == "all" else (level, *value[:-1])
        out[key][(node, value[-1])] = fig
    return out
