"""Breakdowns of every group of the drill-down tree (by sex, age band or quarter) suppressed as
one grid: no small count of any group in any category can be worked out from what any level
shows — not a department's women minus its shown teams' women, not a region's minus its shown
departments', not a team's total minus its shown categories. Checked on random trees and counts
(hypothesis) by exact elimination over every sum the pages show, as the cohort tables are."""

from collections.abc import Hashable

from hypothesis import given, settings
from hypothesis import strategies as st

from outcomes.suppression import derivable, suppress_grid, suppress_tree

CATS = ("f", "m", "x")


def _grid(leaves: list[list[list[tuple[int, int, int]]]]) -> tuple[dict, dict, dict]:
    parent: dict = {"all": None}
    counts: dict = {}
    for r, departments in enumerate(leaves):
        parent[("r", r)] = "all"
        for d, teams in enumerate(departments):
            parent[("d", r, d)] = ("r", r)
            for t, cells in enumerate(teams):
                parent[("t", r, d, t)] = ("d", r, d)
                for c, n in zip(CATS, cells, strict=True):
                    counts[(("t", r, d, t), c)] = n
    children: dict = {}
    for node, up in parent.items():
        if up is not None:
            children.setdefault(up, []).append(node)

    def fill(node):  # sums bottom-up
        for kid in children.get(node, []):
            fill(kid)
        if node in children:
            for c in CATS:
                counts[(node, c)] = sum(counts[(kid, c)] for kid in children[node])

    fill("all")
    totals = {n: sum(counts[(n, c)] for c in CATS) for n in parent}
    return parent, counts, totals


_cell = st.one_of(st.integers(0, 5), st.integers(0, 30))
_teams = st.lists(st.tuples(_cell, _cell, _cell), min_size=1, max_size=3)
_leaves = st.lists(st.lists(_teams, min_size=1, max_size=2), min_size=1, max_size=3)


@settings(max_examples=120, deadline=None)
@given(leaves=_leaves)
def test_no_small_count_of_any_group_in_any_category_can_be_worked_out_across_levels(leaves) -> None:
    parent, counts, totals = _grid(leaves)
    hidden_nodes, primary_nodes = suppress_tree(parent=parent, counts={n: (totals[n],) for n in parent})
    hidden, primary, hidden_nodes = suppress_grid(
        parent=parent, categories=CATS, counts={k: (v,) for k, v in counts.items()},
        totals={n: (v,) for n, v in totals.items()}, hidden_nodes=hidden_nodes)
    for (node, c), n in counts.items():
        if 1 <= n <= 4:
            assert (node, c) in hidden and (node, c) in primary
    # Every sum the pages show, over every column: the tree per category and for the totals,
    # and each group's categories adding up to its total.
    columns = (*CATS, "*")
    equations: list[dict[tuple[Hashable, Hashable], int]] = []  # (node, column) -> coefficient
    kids: dict = {}
    for node, up in parent.items():
        if up is not None:
            kids.setdefault(up, []).append(node)
    for up, group in kids.items():
        for col in columns:
            eq: dict[tuple[Hashable, Hashable], int] = {(k, col): 1 for k in group}
            eq[(up, col)] = -1
            equations.append(eq)
    for node in parent:
        eq = {(node, c): 1 for c in CATS}
        eq[(node, "*")] = -1
        equations.append(eq)
    unknown: list[tuple[Hashable, Hashable]] = sorted(hidden | {(n, "*") for n in hidden_nodes}, key=repr)
    fixed = derivable(unknown, equations)
    must_stay = {cell for cell in primary if counts[cell] > 0} | {(n, "*") for n in primary_nodes}
    assert fixed & must_stay == set()
