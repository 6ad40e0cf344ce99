"""What the indicator pages, their downloads and FHIR MeasureReport show: figures per group,
already suppressed. Nothing here returns a patient, an episode or a unit — only groups of at
least ``min_patients()`` patients, with their counts.

Groups:
- the drill-down tree: national → region → department → team, suppressed as one tree
  (outcomes.suppression.suppress_tree), so every level is cut from the same decision;
- breakdowns of the page's current group by quarter of treatment start, sex and age band, each
  a small tree under that group, which starts hidden when the drill-down hid the group.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import router
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from outcomes import aggregates
from outcomes.indicators import (
    AGE_BANDS,
    Cell,
    Dataset,
    Figure,
    Filters,
    Indicator,
    Kind,
    aggregate,
    min_patients,
)
from outcomes.live import live_cells
from outcomes.suppression import suppress_grid, suppress_tree
from patients.models import CareTeam, Region, Sex

ROOT = "all"


def suppression_rule() -> str:
    n = min_patients()
    return _("Counts of 1–%(max)s are shown as <%(min)s; figures (shares, means, medians, percentiles, rates) "
             "are shown only for groups of at least %(min)s patients; “–” marks a group hidden so that a "
             "hidden group cannot be worked out from the others. Patients who withdrew from secondary use "
             "are never counted.") % {"max": n - 1, "min": n}


@dataclass(frozen=True)
class Row:
    key: Hashable
    label: str
    figure: Figure
    shown: bool
    small: bool  # hidden because a count of its own is small ("<5"); else "–" when hidden
    drill: dict[str, str] | None = None  # the query to drill into this group

    @property
    def marker(self) -> str:
        return f"<{min_patients()}" if self.small else "–"


@dataclass(frozen=True)
class Table:
    key: str  # "org", "quarter", "sex", "age"
    title: str
    group_label: str
    total: Row
    rows: list[Row]


def _label_region(code: str) -> str:
    return str(dict(Region.choices).get(code, code))


def _labels(parent: dict[Hashable, Hashable | None], teams: dict[int, CareTeam]) -> dict[Hashable, str]:
    """Each group's name in the request's language; a team deleted since the refresh by its id."""
    labels: dict[Hashable, str] = {ROOT: _("All of Denmark")}
    for team in teams.values():
        labels[("region", team.region)] = _label_region(team.region)
        labels[("department", team.region, team.department)] = team.department
        labels[("team", team.pk)] = team.name
    for node in parent:
        if node not in labels and isinstance(node, tuple):
            labels[node] = str(node[-1])
    return labels


# --- the suppressed figures of a view, kept per refresh ------------------------------------------

VIEW_CACHE_VERSION = 1


def view_cache_seconds() -> int:
    """How long a view summed from the precomputed cells is kept (``OUTCOMES_VIEW_CACHE_SECONDS``,
    twice the refresh interval by default; 0 turns the keeping off). A refresh makes a new key,
    so a kept view never outlives the figures it was made from; the time only bounds memory."""
    return int(settings.OUTCOMES_VIEW_CACHE_SECONDS)


def view_cache_key(indicator: Indicator, filters: Filters, refreshed_at: datetime, today: date,
                   teams: dict[int, CareTeam], position: tuple[str, str, int | None],
                   national_only: bool) -> str | None:
    """The key of a view's suppressed figures: everything they depend on — the indicator and
    its refresh (the cells), the filters, the drill-down position asked for, the organisation
    (which teams sit in which department and region: the tree suppression solves), the smallest
    group shown and the suppression's version. None when keeping is off."""
    if view_cache_seconds() <= 0:
        return None
    organisation = sorted((pk, t.region, t.department) for pk, t in teams.items())
    raw = repr((VIEW_CACHE_VERSION, indicator.code, refreshed_at.isoformat(), today.isoformat(), filters,
                organisation, position, national_only, min_patients()))
    return "outcomes:view:" + hashlib.sha256(raw.encode()).hexdigest()


def indicator_view(indicator: Indicator, filters: Filters, *, region: str = "", department: str = "",
                   team_id: int | None = None, dataset: Dataset | None = None,
                   national_only: bool = False, refreshes: dict[str, Any] | None = None) -> IndicatorView:
    """The view the pages, downloads and FHIR use: from the precomputed cells when they fit the
    filters (summed in the database on PostgreSQL), else live. ``view.precomputed`` and
    ``view.computed_at`` say which, and when. ``refreshes``: the refreshes that fit the filters,
    by indicator, read once for many views (outcomes.selectors.indicator_refreshes_fitting)."""
    from outcomes.selectors import indicator_cells_precomputed, indicator_refresh_fitting

    if aggregates.in_database(_read_alias()):
        refresh = (refreshes.get(indicator.code) if refreshes is not None
                   else indicator_refresh_fitting(code=indicator.code, filters=filters))
        if refresh is not None:
            return IndicatorView(indicator, filters, region=region, department=department, team_id=team_id,
                                 today=refresh.as_of, in_db=True, computed_at=refresh.refreshed_at,
                                 national_only=national_only)
    else:
        found = indicator_cells_precomputed(code=indicator.code, filters=filters)
        if found is not None:
            cells, refresh = found
            return IndicatorView(indicator, filters, region=region, department=department, team_id=team_id,
                                 today=refresh.as_of, cells=cells, computed_at=refresh.refreshed_at,
                                 national_only=national_only)
    return IndicatorView(indicator, filters, region=region, department=department, team_id=team_id,
                         dataset=dataset, national_only=national_only)


def _read_alias() -> str:
    from outcomes.models import IndicatorCell

    return router.db_for_read(IndicatorCell) or "default"


class IndicatorView:
    """One indicator over one scope (filters), at one drill-down position."""

    def __init__(self, indicator: Indicator, filters: Filters, *, region: str = "", department: str = "",
                 team_id: int | None = None, today: date | None = None, dataset: Dataset | None = None,
                 cells: list[Cell] | None = None, computed_at: datetime | None = None,
                 national_only: bool = False, in_db: bool = False) -> None:
        """Figures from ``cells`` when given (the precomputed table, already cut to the filters),
        summed in the database when ``in_db`` (the precomputed table, PostgreSQL), else computed
        now from the live rows (in SQL on PostgreSQL; on SQLite from ``dataset``, or one loaded
        for the filters). ``national_only``: no drill-down tree (the front page): the national
        figure is the tree's root, which is hidden only when it is small itself, so it needs no
        tree."""
        self.national_only = national_only
        self.indicator = indicator
        self.filters = filters
        self.today = today or timezone.localdate()
        self.computed_at: datetime = computed_at or timezone.now()
        self.precomputed = cells is not None or in_db
        self.in_db = in_db
        self.using = _read_alias()
        if cells is None and not in_db:
            cells = live_cells(indicator, filters, self.today, dataset=dataset, using=self.using)
        self.cells: list[Cell] = cells or []
        self.small_max = min_patients() - 1
        self._breakdowns: dict[str, dict[tuple[Hashable, str], Figure]] | None = None
        self._grids: dict[str, tuple[dict[tuple[Hashable, str], Figure], frozenset[Any], frozenset[Any]]] = {}
        teams = {} if national_only else {t.pk: t for t in CareTeam.objects.all()}
        # Summed from the precomputed cells of one refresh: the same figures until the next
        # refresh, so the suppressed view is kept per refresh, filters and position.
        key = view_cache_key(indicator, filters, computed_at, self.today, teams, (region, department, team_id),
                             national_only) if in_db and computed_at is not None else None
        state = cache.get(key) if key else None
        if state is not None:
            self._restore(state, teams)
            self.position = self._position(region, department, team_id)
            self.from_cache = True
            return
        self.from_cache = False
        self._build_tree(teams)
        self.position = self._position(region, department, team_id)
        self._settle()
        if key:
            cache.set(key, self._state(), view_cache_seconds())

    # --- the view kept per refresh (see view_cache_key) ------------------------------------------
    def _state(self) -> tuple[Any, ...]:
        """What the figures and the suppression decided, without anything translated (labels
        follow each request's language and are made again from the teams)."""
        # A breakdown's other groups were needed to suppress it, not to show it: only the
        # position's own rows are kept (the front page unpickles 23 of these per request).
        here = self.position
        grids = {k: ({cell: fig for cell, fig in f.items() if cell[0] == here},
                     frozenset(c for c in h if c[0] == here), frozenset(c for c in p if c[0] == here))
                 for k, (f, h, p) in self._grids.items()}
        return (VIEW_CACHE_VERSION, dict(self.parent), dict(self.figures), frozenset(self.hidden),
                frozenset(self.primary), grids)

    def _restore(self, state: tuple[Any, ...], teams: dict[int, CareTeam]) -> None:
        _version, parent, figures, hidden, primary, grids = state
        self.parent: dict[Hashable, Hashable | None] = parent
        self.figures: dict[Hashable, Figure] = figures
        self.hidden: frozenset[Hashable] = hidden
        self.primary: frozenset[Hashable] = primary
        self._grids = grids
        self.labels = _labels(parent, teams)
        self.members: dict[Hashable, list[Cell]] = {}

    # --- the drill-down tree ---------------------------------------------------------------------
    def _build_tree(self, teams: dict[int, CareTeam]) -> None:
        parent: dict[Hashable, Hashable | None] = {ROOT: None}
        members: dict[Hashable, list[Cell]] = defaultdict(list)
        for team in teams.values():  # every group is listed, with or without patients
            r, d = ("region", team.region), ("department", team.region, team.department)
            parent.setdefault(r, ROOT)
            parent.setdefault(d, r)
            parent[("team", team.pk)] = d
        for c in self.cells:
            nodes: tuple[Hashable, ...] = (ROOT,) if self.national_only else (
                ROOT, ("region", c.region), ("department", c.region, c.department), ("team", c.team_id))
            for node in nodes:
                members[node].append(c)
        self.parent = parent
        if self.in_db:
            found = aggregates.tree_figures(self.indicator, self.filters, national_only=self.national_only,
                                            using=self.using)
            for node in found:  # a team deleted since the refresh: still counted, under its old place
                if node not in parent and isinstance(node, tuple) and node[0] == "team":
                    parent[node] = ROOT
            self.figures = {node: found.get(node) or aggregate(self.indicator, ()) for node in parent}
        else:
            self.figures = {node: aggregate(self.indicator, members.get(node, ())) for node in parent}
        self.members = members
        self.labels = _labels(parent, teams)
        self.hidden, self.primary = suppress_tree(
            parent=parent, counts={n: f.counts(self.indicator) for n, f in self.figures.items()},
            small_max=self.small_max)

    def _position(self, region: str, department: str, team_id: int | None) -> Hashable:
        for node in ((("team", team_id) if team_id else None),
                     (("department", region, department) if region and department else None),
                     (("region", region) if region else None)):
            if node is not None and node in self.parent:
                return node
        return ROOT

    def _row(self, node: Hashable) -> Row:
        drill: dict[str, str] | None = None
        if isinstance(node, tuple):
            if node[0] == "region":
                drill = {"region": node[1]}
            elif node[0] == "department":
                drill = {"region": node[1], "department": node[2]}
            elif node[0] == "team":
                d = self.parent[node]
                drill = {"region": d[1], "department": d[2], "team": str(node[1])}  # type: ignore[index]
        return Row(key=node, label=self.labels[node], figure=self.figures[node], shown=node not in self.hidden,
                   small=node in self.primary, drill=drill)

    def national(self) -> Row:
        return self._row(ROOT)

    def current(self) -> Row:
        return self._row(self.position)

    def breadcrumbs(self) -> list[Row]:
        chain, node = [], self.position
        while node is not None:
            chain.append(self._row(node))
            node = self.parent[node]
        return list(reversed(chain))

    def org_table(self) -> Table:
        children = [n for n, up in self.parent.items() if up == self.position]
        rows = sorted((self._row(n) for n in children), key=lambda r: r.label)
        level = {ROOT: _("Region"), "region": _("Department"), "department": _("Team")}
        kind = self.position if self.position == ROOT else self.position[0]  # type: ignore[index]
        return Table(key="org", title=_("By %(level)s") % {"level": level.get(kind, _("Team")).lower()},
                     group_label=level.get(kind, _("Team")), total=self.current(), rows=rows)

    # --- breakdowns of the current group ---------------------------------------------------------
    def _breakdown(self, key: str, title: str, group_label: str, keyed: Iterable[tuple[str, str]],
                   of: Any) -> Table:
        keys = list(keyed)
        figures, hidden, primary = self.grid(key, of)
        empty = aggregate(self.indicator, ())
        rows = []
        for k, label in keys:
            cell = (self.position, k)
            rows.append(Row(key=k, label=label, figure=figures.get(cell) or empty, shown=cell not in hidden,
                            small=cell in primary))
        return Table(key=key, title=title, group_label=group_label, total=self.current(), rows=rows)

    def grid(self, key: str, of: Any) -> tuple[dict[tuple[Hashable, str], Figure], frozenset[Any], frozenset[Any]]:
        """The breakdown ``key`` of every group of the tree, suppressed as one grid
        (outcomes.suppression.suppress_grid), so no level's table gives back another's hidden cell."""
        if key in self._grids:
            return self._grids[key]
        if self.in_db:
            figures = self._db_grids()[key]
        else:
            figures = {}
            for node in self.parent:
                groups: dict[str, list[Cell]] = defaultdict(list)
                for c in self.members.get(node, []):
                    groups[of(c)].append(c)
                for k, cells in groups.items():
                    figures[(node, k)] = aggregate(self.indicator, cells)
        categories = sorted({k for _node, k in figures} | set(self._fixed_categories(key)))
        empty = aggregate(self.indicator, ()).counts(self.indicator)
        counts: dict[tuple[Hashable, Hashable], Sequence[int]] = {
            (n, k): (figures[(n, k)].counts(self.indicator) if (n, k) in figures else empty)
            for n in self.parent for k in categories}
        hidden, primary, nodes = suppress_grid(
            parent=self.parent, categories=categories, counts=counts,
            totals={n: f.counts(self.indicator) for n, f in self.figures.items()},
            hidden_nodes=self.hidden, small_max=self.small_max)
        self._grids[key] = (figures, hidden, primary)
        if nodes != self.hidden:  # the grid hid whole groups: every other breakdown must start from them
            self.hidden = frozenset(nodes)
            self._grids = {key: self._grids[key]}
        return self._grids[key]

    def _settle(self) -> None:
        """Suppress every breakdown before anything is shown: a breakdown may hide whole groups
        (outcomes.suppression.suppress_grid), which the drill-down and the other breakdowns
        then hide too; repeated until no breakdown hides more."""
        of = {"quarter": lambda c: c.quarter, "sex": lambda c: c.sex, "age": lambda c: c.age_band}
        keys = ("quarter",) if self.national_only else ("quarter", "sex", "age")
        while True:
            before = self.hidden
            for key in keys:
                self.grid(key, of[key])
            if self.hidden == before and all(k in self._grids for k in keys):
                return

    def _fixed_categories(self, key: str) -> list[str]:
        if key == "sex":
            return ["female", "male"]
        if key == "age":
            return [code for code, _lo, _hi in AGE_BANDS]
        return []

    def _db_grids(self) -> dict[str, dict[tuple[Hashable, str], Figure]]:
        if self._breakdowns is None:
            self._breakdowns = aggregates.grid_figures(
                self.indicator, self.filters, ("quarter",) if self.national_only else ("quarter", "sex", "age"),
                position=self.position, using=self.using, national_only=self.national_only)
        return self._breakdowns

    def _present(self, key: str, of: Any) -> set[str]:
        figures = self.grid(key, of)[0]
        return {k for (node, k), f in figures.items() if node == self.position and f.n_units}

    def quarter_table(self) -> Table:
        quarters = sorted(self._present("quarter", lambda c: c.quarter))
        return self._breakdown("quarter", _("By quarter of treatment start"), _("Quarter"),
                               [(q, q) for q in quarters], lambda c: c.quarter)

    def sex_table(self) -> Table:
        return self._breakdown("sex", _("By sex"), _("Sex"),
                               [(c, str(label)) for c, label in Sex.choices if c in ("female", "male")]
                               + [(c, str(label)) for c, label in Sex.choices if c not in ("female", "male")
                                  and c in self._present("sex", lambda m: m.sex)],
                               lambda m: m.sex)

    def age_table(self) -> Table:
        return self._breakdown("age", _("By age at treatment start"), _("Age band"),
                               [(code, code) for code, _lo, _hi in AGE_BANDS], lambda c: c.age_band)

    def tables(self) -> list[Table]:
        return [self.org_table(), self.quarter_table(), self.sex_table(), self.age_table()]

    def department_table(self) -> Table:
        """Every department, nationally (the funnel plot's groups), hidden as the drill-down hides them."""
        rows = sorted((self._row(n) for n in self.parent if isinstance(n, tuple) and n[0] == "department"),
                      key=lambda r: r.label)
        return Table(key="funnel", title=_("Departments compared with Denmark (funnel plot)"),
                     group_label=_("Department"), total=self.national(), rows=rows)

    def table(self, key: str) -> Table | None:
        if key == "funnel":
            return self.department_table()
        return {t.key: t for t in self.tables()}.get(key)


# --- formatting -----------------------------------------------------------------------------------

def headline_value(indicator: Indicator, value: float | None) -> str:
    if value is None:
        return ""
    if indicator.kind == Kind.PROPORTION:
        return f"{number_format(100 * value, 1)} %"
    return number_format(value, 1 if indicator.kind == Kind.DISTRIBUTION else 2)


def plain_value(indicator: Indicator, value: float | None) -> float | None:
    """The value in the unit the pages show (a share as a percentage)."""
    if value is None:
        return None
    return 100 * value if indicator.kind == Kind.PROPORTION else value


def count_text(n: float, small_max: int | None = None) -> str:
    small_max = min_patients() - 1 if small_max is None else small_max
    if 1 <= n <= small_max:
        return f"<{small_max + 1}"
    return number_format(round(n), 0)


def statistics_columns(indicator: Indicator) -> list[tuple[str, str]]:
    """(key, heading) of the figure columns a table shows for this indicator."""
    cols = [("patients", _("Patients"))]
    if indicator.kind == Kind.PROPORTION:
        cols += [("numerator", _("Numerator")), ("denominator", _("Denominator")), ("value", _("Share")),
                 ("ci", _("95 % CI"))]
    elif indicator.kind == Kind.RATE:
        cols += [("numerator", _("Events")), ("denominator", _("Patient-days")), ("value", _("Rate")),
                 ("ci", _("95 % CI"))]
    else:
        cols += [("n", _("Measurements")), ("mean", _("Mean")), ("ci", _("95 % CI of the mean")),
                 ("median", _("Median")), ("iqr", _("Interquartile range")), ("p90", _("90th percentile"))]
        cols += [(f"cat:{c}", str(label)) for c, label in indicator.categories]
    return cols


def row_cells(indicator: Indicator, row: Row) -> list[str]:
    """The shown text of each statistics column: hidden groups show their marker everywhere."""
    cols = statistics_columns(indicator)
    if not row.shown:
        return [row.marker for _c in cols]
    f = row.figure
    num = lambda v: "" if v is None else number_format(v, 1)  # noqa: E731
    out = []
    for key, _heading in cols:
        if key == "patients":
            out.append(count_text(f.n_patients))
        elif key == "numerator":
            out.append(count_text(f.numerator))
        elif key == "denominator":
            out.append(count_text(f.denominator))
        elif key == "n":
            out.append(count_text(f.n_units))
        elif key == "value":
            out.append(headline_value(indicator, f.value))
        elif key == "ci":
            if indicator.kind == Kind.DISTRIBUTION:
                out.append("" if f.mean_low is None else f"{num(f.mean_low)} – {num(f.mean_high)}")
            elif f.low is None or f.high is None:
                out.append("")
            else:
                out.append(f"{headline_value(indicator, f.low)} – {headline_value(indicator, f.high)}")
        elif key == "mean":
            out.append(num(f.mean))
        elif key == "median":
            out.append(num(f.median))
        elif key == "iqr":
            out.append("" if f.q1 is None else f"{num(f.q1)} – {num(f.q3)}")
        elif key == "p90":
            out.append(num(f.p90))
        elif key.startswith("cat:"):
            out.append(count_text(f.categories.get(key[4:], 0)))
    return out
