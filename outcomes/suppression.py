"""Small-cell suppression for aggregate tables, with complementary suppression.

Primary suppression: every count of 1–4 — cell or total — is hidden ("<5"). Zero is shown: it
says nobody, which identifies nobody.

Complementary suppression: a hidden cell must not be recoverable by subtraction from what is
shown. Treating the table as a system of linear equations (each shown row/column total is the
sum of its row/column), a hidden item is *derivable* when its value is the same in every solution
of that system. While any hidden item is derivable, one more item is hidden: a total in one of
its equations if there is one (a total is a figure derived from the cells, so hiding it costs the
least), else the smallest non-zero shown cell that shares an equation with it, else the smallest
non-zero shown item anywhere. Zeros are never hidden as complements: a zero that could only move
upwards would pin its partner down again.

Bounds are part of what a reader knows: a "<5" is 1–4, and a value hidden to protect one ("–")
is at least 5 (a 1–4 would be "<5", a zero is shown). "Responded <5, did not respond –, total 6"
gives away 1 and 5 without any subtraction of shown numbers, so an item whose range the
equations and these bounds narrow to one value (bound propagation over each equation) counts as
exposed too. Propagation is exact for tables whose totals run one way (each hidden value is in
one equation) — the cohort page's shape — and a safe under-approximation otherwise.

``protect_totals``: totals that must stay visible unless small themselves, e.g. when every row's
total is the same figure (the cohort size), so hiding one would hide nothing.

Tables here are small (a few rows and columns), so exact rational elimination is cheap.
"""

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, TypeVar

SMALL_MIN, SMALL_MAX = 1, 4

Item = tuple[str, int, int]  # ("cell", row, col) | ("row", row, -1) | ("col", -1, col)
# Any item of an equation: a table's Item, or a tree's (group, column) in suppress_tree.
K = TypeVar("K", bound=Hashable)


def is_small(n: int) -> bool:
    return SMALL_MIN <= n <= SMALL_MAX


def display(n: int | None) -> str:
    """How a count is shown on a page: suppressed counts as "<5"."""
    if n is None or is_small(n):
        return "<5"
    return str(n)


@dataclass(frozen=True)
class SuppressedTable:
    """The table as it may be shown: ``None`` where a value is hidden. ``row_totals`` /
    ``col_totals`` are None when the table shows no such totals. ``primary`` holds the hidden
    items that are small counts themselves (shown as "<5"); the rest were hidden to protect them."""

    cells: tuple[tuple[int | None, ...], ...]
    row_totals: tuple[int | None, ...] | None
    col_totals: tuple[int | None, ...] | None
    primary: frozenset[Item]

    def marker(self, item: Item) -> str:
        return "<5" if item in self.primary else "–"


def _equations(n_rows: int, n_cols: int, row_totals: bool, col_totals: bool) -> list[dict[Item, int]]:
    eqs: list[dict[Item, int]] = []
    if row_totals:
        for i in range(n_rows):
            eq: dict[Item, int] = {("cell", i, j): 1 for j in range(n_cols)}
            eq[("row", i, -1)] = -1
            eqs.append(eq)
    if col_totals:
        for j in range(n_cols):
            eq = {("cell", i, j): 1 for i in range(n_rows)}
            eq[("col", -1, j)] = -1
            eqs.append(eq)
    return eqs


def derivable(hidden: Sequence[K], equations: Sequence[dict[K, int]]) -> set[K]:
    """The hidden items whose value is fixed by the equations (shown values being known).

    Gauss-Jordan elimination over the hidden items' coefficients: an item is fixed exactly when
    it is a pivot whose reduced row has no free item in it (no null-space vector touches it)."""
    rows = [[Fraction(eq.get(item, 0)) for item in hidden] for eq in equations]
    rows = [r for r in rows if any(r)]
    pivots: list[int] = []
    r = 0
    for c in range(len(hidden)):
        pivot = next((k for k in range(r, len(rows)) if rows[k][c] != 0), None)
        if pivot is None:
            continue
        rows[r], rows[pivot] = rows[pivot], rows[r]
        lead = rows[r][c]
        rows[r] = [v / lead for v in rows[r]]
        for k in range(len(rows)):
            if k != r and rows[k][c] != 0:
                factor = rows[k][c]
                rows[k] = [a - factor * b for a, b in zip(rows[k], rows[r], strict=True)]
        pivots.append(c)
        r += 1
    pivot_set = set(pivots)
    fixed: set[K] = set()
    for row_no, c in enumerate(pivots):
        if all(rows[row_no][k] == 0 for k in range(len(hidden)) if k not in pivot_set):
            fixed.add(hidden[c])
    return fixed


def pinned_by_bounds(
    hidden: Sequence[K], equations: Sequence[dict[K, int]], values: dict[K, int],
    bounds: dict[K, tuple[int, int | None]],
) -> set[K]:
    """Hidden items whose range, propagated through the equations from every hidden item's known
    bounds (low, high or None = unbounded), is a single value."""
    hidden_set = set(hidden)
    lo = {item: bounds[item][0] for item in hidden}
    hi: dict[K, int | None] = {item: bounds[item][1] for item in hidden}
    for _ in range(4 * len(hidden) + 4):
        changed = False
        for eq in equations:
            unknown = [item for item in eq if item in hidden_set]
            if not unknown:
                continue
            rest = -sum(coef * values[item] for item, coef in eq.items() if item not in hidden_set)
            for item in unknown:
                # coef_item * x_item = rest - sum(others); bound the right-hand side.
                low: int | None = rest
                high: int | None = rest
                for other in unknown:
                    if other == item:
                        continue
                    c, other_hi = eq[other], hi[other]
                    o_lo: int | None = c * lo[other]
                    o_hi: int | None = None if other_hi is None else c * other_hi
                    if c < 0:
                        o_lo, o_hi = (None if other_hi is None else c * other_hi), c * lo[other]
                    # subtract [o_lo, o_hi]
                    high = None if high is None or o_lo is None else high - o_lo
                    low = None if low is None or o_hi is None else low - o_hi
                if eq[item] < 0:
                    low, high = (None if high is None else -high), (None if low is None else -low)
                if low is not None and low > lo[item]:
                    lo[item], changed = low, True
                item_hi = hi[item]
                if high is not None and (item_hi is None or high < item_hi):
                    hi[item], changed = high, True
        if not changed:
            break
    return {item for item in hidden if (item_hi := hi[item]) is not None and lo[item] >= item_hi}


def suppress_table(
    rows: Sequence[Sequence[int]], *, row_totals: bool = False, col_totals: bool = False,
    protect_totals: bool = False,
) -> SuppressedTable:
    """Hide the small counts of a table of non-negative counts, and whatever else is needed so
    that none of them can be worked out from the rest (see the module docstring)."""
    n_rows = len(rows)
    n_cols = len(rows[0]) if rows else 0
    if any(len(r) != n_cols for r in rows):
        raise ValueError("Every row needs the same number of cells.")
    if any(v < 0 for r in rows for v in r):
        raise ValueError("Counts cannot be negative.")
    values: dict[Item, int] = {("cell", i, j): rows[i][j] for i in range(n_rows) for j in range(n_cols)}
    if row_totals:
        values.update({("row", i, -1): sum(rows[i]) for i in range(n_rows)})
    if col_totals:
        values.update({("col", -1, j): sum(rows[i][j] for i in range(n_rows)) for j in range(n_cols)})
    equations = _equations(n_rows, n_cols, row_totals, col_totals)
    order = list(values)  # cells row by row, then totals: a deterministic choice among equals

    primary = frozenset(item for item, v in values.items() if is_small(v))
    hidden = set(primary)
    while True:
        hidden_list = [item for item in order if item in hidden]
        bounds: dict[Item, tuple[int, int | None]] = {
            item: (SMALL_MIN, SMALL_MAX) if item in primary else (SMALL_MAX + 1, None) for item in hidden_list}
        exposed = derivable(hidden_list, equations) | pinned_by_bounds(hidden_list, equations, values, bounds)
        if not exposed:
            break
        target = next(item for item in order if item in exposed)
        shown_nonzero = [item for item in order if item not in hidden and values[item] > 0]
        if not shown_nonzero:
            break  # nothing left to hide; cannot happen for non-negative tables (see the tests)
        sharing = [item for item in shown_nonzero
                   if any(target in eq and item in eq for eq in equations)]
        if protect_totals:
            sharing = [item for item in sharing if item[0] == "cell"] or sharing
        totals = [item for item in sharing if item[0] != "cell"]
        pool = totals or sharing or shown_nonzero
        hidden.add(min(pool, key=lambda item: (values[item], order.index(item))))

    def shown(item: Item) -> int | None:
        return None if item in hidden else values[item]

    return SuppressedTable(
        cells=tuple(tuple(shown(("cell", i, j)) for j in range(n_cols)) for i in range(n_rows)),
        row_totals=tuple(shown(("row", i, -1)) for i in range(n_rows)) if row_totals else None,
        col_totals=tuple(shown(("col", -1, j)) for j in range(n_cols)) if col_totals else None,
        primary=primary,
    )


# --- trees of groups: the indicator pages' drill-down (issue 23) -------------------------------

Node = Hashable


def tree_derivable(parent: dict[Node, Node | None], hidden: set[Node]) -> set[Node]:
    """The hidden groups of a tree of sums whose value the shown ones fix — the same answer as
    ``derivable`` on the tree's equations, found as bridges of a graph instead of by rational
    elimination (linear time, where elimination was the pages' hot spot).

    Each parent's equation is a vertex, and a free vertex S stands for "no equation"; each hidden
    group is an edge from its parent's equation (S for the root) to its own (S for a leaf). A
    hidden value is fixed exactly when its edge is a bridge: removing it disconnects its ends, so
    no other hidden value can move with it. The same for every count column, since which values
    are hidden does not depend on the column."""
    has_children = {up for up in parent.values() if up is not None}
    edges: list[tuple[Node, Any, Any]] = []
    for node in hidden:
        a = ("eq", parent[node]) if parent[node] is not None else "S"
        b = ("eq", node) if node in has_children else "S"
        edges.append((node, a, b))
    adjacency: dict[Any, list[tuple[Any, int]]] = {}
    for k, (_node, a, b) in enumerate(edges):
        if a == b:
            continue  # a loop at S: nothing constrains it
        adjacency.setdefault(a, []).append((b, k))
        adjacency.setdefault(b, []).append((a, k))
    order: dict[Any, int] = {}
    low: dict[Any, int] = {}
    bridges: set[int] = set()
    for root in adjacency:
        if root in order:
            continue
        order[root] = low[root] = len(order)
        stack: list[tuple[Any, int, int]] = [(root, -1, 0)]  # vertex, edge it was entered by, next neighbour
        while stack:
            v, via, i = stack[-1]
            if i < len(adjacency[v]):
                stack[-1] = (v, via, i + 1)
                w, k = adjacency[v][i]
                if k == via:
                    continue
                if w in order:
                    low[v] = min(low[v], order[w])
                else:
                    order[w] = low[w] = len(order)
                    stack.append((w, k, 0))
            else:
                stack.pop()
                if stack:
                    u = stack[-1][0]
                    low[u] = min(low[u], low[v])
                    if low[v] > order[u]:
                        bridges.add(via)
    return {edges[k][0] for k in bridges}


def suppress_tree(
    *, parent: dict[Node, Node | None], counts: dict[Node, Sequence[int]], small_max: int = SMALL_MAX,
    hidden_from_start: frozenset[Node] = frozenset(),
) -> tuple[frozenset[Node], frozenset[Node]]:
    """Which groups of a tree (national → region → department → team, or a scope → its quarters)
    must be hidden, as ``(hidden, primary)``.

    Every group has the same count columns (e.g. patients, numerator, denominator − numerator),
    and each column of a parent is the sum of its children's: one equation per parent and column.
    A group is hidden *whole* — its figure, interval and every count — when any of its counts is
    small (1..``small_max``: *primary*), or when one of its counts could be worked out from the
    shown ones (complementary), which is checked with the same elimination and bound propagation
    as ``suppress_table``, until no small group (and none of ``hidden_from_start``) can be
    worked out. A complement is a sibling where there is one (the smallest shown), so
    a level above does not lose its figure for a level below; the root (the national figure, or
    the page's scope) is never hidden as a complement. ``hidden_from_start``: groups already
    hidden elsewhere — e.g. the scope of a quarter table when the drill-down hid it — so that the
    figures shown with it cannot give it back.

    Because the whole tree is solved at once, a team hidden on the department's page stays
    hidden on the region's and the national page's, and no combination of the levels' shown
    figures gives it back."""
    nodes = list(parent)
    n_cols = len(next(iter(counts.values()))) if counts else 0
    items: list[tuple[Node, int]] = [(node, c) for node in nodes for c in range(n_cols)]
    values = {(node, c): counts[node][c] for node in nodes for c in range(n_cols)}
    children: dict[Node, list[Node]] = {}
    for node, up in parent.items():
        if up is not None:
            children.setdefault(up, []).append(node)
    equations: list[dict[tuple[Node, int], int]] = []
    for up, kids in children.items():
        for c in range(n_cols):
            eq: dict[tuple[Node, int], int] = {(kid, c): 1 for kid in kids}
            eq[(up, c)] = -1
            equations.append(eq)
    primary_nodes = {node for node in nodes if any(SMALL_MIN <= v <= small_max for v in counts[node])}
    hidden_nodes = set(primary_nodes) | set(hidden_from_start)
    # A zero identifies nobody: a hidden group of zeros may be worked out.
    must_stay_hidden = {node for node in hidden_nodes if any(counts[node])}
    roots = {node for node, up in parent.items() if up is None}
    order = {node: i for i, node in enumerate(nodes)}

    while True:
        hidden_items = [item for item in items if item[0] in hidden_nodes]
        bounds: dict[tuple[Node, int], tuple[int, int | None]] = {}
        for item in hidden_items:
            v = values[item]
            if item[0] in primary_nodes and SMALL_MIN <= v <= small_max:
                bounds[item] = (SMALL_MIN, small_max)
            else:
                # A group hidden whole may hold a zero or a small count in another column; the
                # reader knows only that a count is not negative.
                bounds[item] = (0, None)
        exposed_nodes = tree_derivable(parent, hidden_nodes) & must_stay_hidden
        if not exposed_nodes:  # bounds only matter once the algebra alone fixes nothing
            # A column pinned to zero gives away nobody (zeros are shown anyway): only a non-zero
            # value pinned down exposes its group.
            exposed_nodes = {item[0] for item in pinned_by_bounds(
                hidden_items, equations, values, bounds) if values[item]} & must_stay_hidden
        # Only the groups that must stay unknown count: the small ones and those hidden elsewhere.
        # A complement worked out is harmless (its figure is not small; e.g. the only region of
        # a programme equals the national figure), as long as what it protects stays hidden.
        exposed = sorted(exposed_nodes, key=order.__getitem__)
        if not exposed:
            break
        target = exposed[0]
        up = parent[target]
        def shown_nonzero(group: list[Node]) -> list[Node]:
            return [n for n in group if n not in hidden_nodes and any(counts[n])]

        siblings = shown_nonzero(children.get(up, [])) if up is not None else []
        kids = shown_nonzero(children.get(target, []))
        above = [up] if up is not None and up not in hidden_nodes and up not in roots else []
        pool = siblings or kids or above
        if not pool:
            pool = [n for n in nodes if n not in hidden_nodes and n not in roots and any(counts[n])]
        if not pool:
            break  # only the root is left; it is shown (a page's own scope is protected)
        hidden_nodes.add(min(pool, key=lambda n: (counts[n][0], order[n])))
    return frozenset(hidden_nodes), frozenset(primary_nodes)


def suppress_grid(
    *, parent: dict[Node, Node | None], categories: Sequence[Hashable],
    counts: dict[tuple[Node, Hashable], Sequence[int]], totals: dict[Node, Sequence[int]],
    hidden_nodes: frozenset[Node], small_max: int = SMALL_MAX,
) -> tuple[frozenset[tuple[Node, Hashable]], frozenset[tuple[Node, Hashable]], frozenset[Node]]:
    """A breakdown (by quarter, sex or age band) of *every* group of the drill-down tree,
    suppressed as one grid, as ``(hidden, primary)`` cells (group, category).

    Two families of sums hold: per category, the tree (a department's women are the sum of its
    teams' women), and per group, the categories (a team's women and men are the team). Each
    family is suppressed with ``suppress_tree``, each starting from everything the other has
    hidden, until neither hides more. So a team's small count of women stays hidden on the
    department's page (department minus its shown teams), on the region's (region minus its
    shown departments), and behind the team's own total; and a group the drill-down hid
    (``hidden_nodes``) is hidden in every category, so its categories cannot add up to it.
    Where neither family can protect a count (its only partners are zeros, or a root), the
    group is hidden whole, and the drill-down with it: the third value returned is the groups
    the drill-down must hide (``hidden_nodes`` and those added)."""
    hidden_nodes = frozenset(hidden_nodes)
    totals_primary = frozenset(n for n in parent if any(SMALL_MIN <= v <= small_max for v in totals[n]))
    while True:
        hidden, primary = _grid_pass(parent, categories, counts, totals, hidden_nodes, small_max)
        # A hidden count its own column still gives back (e.g. the only department with any
        # "x" equals the nation's "x", which is never hidden) would give back, through its
        # group's total, the small count it protects: hide that group whole and start over.
        escalate = set()
        star: dict[Hashable, Hashable | None] = {"*": None, **{c: "*" for c in categories}}
        for n in parent:
            if n in hidden_nodes:
                continue
            in_star = {c for c in categories if (n, c) in hidden}
            if any(counts[(n, c)] and c in tree_derivable(star, in_star) for c in in_star):
                escalate.add(n)  # e.g. the only non-zero category: the group's total gives it
        for c in categories:
            in_column = {n for n in parent if (n, c) in hidden}
            exposed = tree_derivable(parent, in_column)
            escalate |= {n for n in exposed - hidden_nodes if any(counts[(n, c)])}
        if not escalate:
            return hidden, primary, hidden_nodes
        grown, _p = suppress_tree(parent=parent, counts=totals, small_max=small_max,
                                  hidden_from_start=hidden_nodes | frozenset(escalate))
        hidden_nodes = frozenset(grown) | totals_primary


def _grid_pass(parent: dict[Node, Node | None], categories: Sequence[Hashable],
               counts: dict[tuple[Node, Hashable], Sequence[int]], totals: dict[Node, Sequence[int]],
               hidden_nodes: frozenset[Node], small_max: int,
               ) -> tuple[frozenset[tuple[Node, Hashable]], frozenset[tuple[Node, Hashable]]]:
    hidden: set[tuple[Node, Hashable]] = {(n, c) for n in hidden_nodes for c in categories}
    primary: set[tuple[Node, Hashable]] = set()
    star: dict[Hashable, Hashable | None] = {"*": None, **{c: "*" for c in categories}}
    while True:
        before = len(hidden)
        for c in categories:
            h, p = suppress_tree(parent=parent, counts={n: counts[(n, c)] for n in parent}, small_max=small_max,
                                 hidden_from_start=frozenset(n for n in parent if (n, c) in hidden))
            hidden |= {(n, c) for n in h}
            primary |= {(n, c) for n in p}
        for n in parent:
            start = frozenset({c for c in categories if (n, c) in hidden} | ({"*"} if n in hidden_nodes else set()))
            h, _p = suppress_tree(parent=star, counts={"*": totals[n], **{c: counts[(n, c)] for c in categories}},
                                  small_max=small_max, hidden_from_start=start)
            hidden |= {(n, c) for c in h if c != "*"}
        if len(hidden) == before:
            return frozenset(hidden), frozenset(primary)
