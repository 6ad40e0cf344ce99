"""Suppression over the drill-down tree (national → region → department → team): no hidden
group can be worked out from the shown figures of any level, checked by an independent graph
argument on random trees (hypothesis), like the cohort tables."""

from hypothesis import given, settings
from hypothesis import strategies as st

from outcomes.suppression import derivable, suppress_tree, tree_derivable


def _tree(leaf_counts: list[list[list[int]]]) -> tuple[dict, dict]:
    """regions → departments → teams; every team holds one count, every parent the sum."""
    parent: dict = {"all": None}
    counts: dict = {}
    for r, departments in enumerate(leaf_counts):
        parent[("r", r)] = "all"
        for d, teams in enumerate(departments):
            parent[("d", r, d)] = ("r", r)
            for t, n in enumerate(teams):
                parent[("t", r, d, t)] = ("d", r, d)
                counts[("t", r, d, t)] = (n,)
            counts[("d", r, d)] = (sum(teams),)
        counts[("r", r)] = (sum(sum(ts) for ts in departments),)
    counts["all"] = (sum(counts[("r", r)][0] for r in range(len(leaf_counts))),)
    return parent, counts


def _derivable_by_graph(parent: dict, hidden: frozenset) -> set:
    """Each parent's equation is a vertex, a free vertex S stands for "no equation"; every hidden
    group is an edge from its parent's equation (S for the root) to its own (S for a leaf). A
    hidden value is fixed by the shown ones exactly when its edge is a bridge."""
    has_children = {p for p in parent.values() if p is not None}
    edges = [(node, parent[node] if parent[node] is not None else "S", node if node in has_children else "S")
             for node in hidden]
    fixed = set()
    for k, (node, a, b) in enumerate(edges):
        if a == b:
            continue
        rest = [e for n, e in enumerate(edges) if n != k]
        seen, todo = {a}, [a]
        while todo:
            v = todo.pop()
            for _, x, y in rest:
                for u, w in ((x, y), (y, x)):
                    if u == v and w not in seen:
                        seen.add(w)
                        todo.append(w)
        if b not in seen:
            fixed.add(node)
    return fixed


_count = st.one_of(st.integers(0, 6), st.integers(0, 40))
_trees = st.lists(st.lists(st.lists(_count, min_size=1, max_size=3), min_size=1, max_size=3), min_size=1, max_size=3)


@settings(max_examples=200, deadline=None)
@given(leaves=_trees)
def test_no_hidden_group_of_any_level_can_be_worked_out_from_the_shown_groups(leaves) -> None:
    parent, counts = _tree(leaves)
    hidden, primary = suppress_tree(parent=parent, counts=counts)
    # A complement may be worked out (the only region equals the nation); a small group never.
    assert _derivable_by_graph(parent, hidden) & primary == set()
    for node, (n,) in counts.items():
        if 1 <= n <= 4:
            assert node in hidden and node in primary
    if not 1 <= counts["all"][0] <= 4:
        assert "all" not in hidden  # the national figure is never a complement


@settings(max_examples=100, deadline=None)
@given(leaves=_trees)
def test_a_scope_hidden_elsewhere_stays_unrecoverable_from_its_parts(leaves) -> None:
    parent, counts = _tree(leaves)
    hidden, _primary = suppress_tree(parent=parent, counts=counts, hidden_from_start=frozenset({"all"}))
    assert "all" in hidden
    if counts["all"][0]:  # a zero may be worked out: it identifies nobody
        assert "all" not in _derivable_by_graph(parent, hidden)


def test_one_small_team_takes_its_smallest_sibling_with_it_and_the_department_stays_shown() -> None:
    parent, counts = _tree([[[3, 20, 9]], [[30]]])
    hidden, primary = suppress_tree(parent=parent, counts=counts)
    assert primary == {("t", 0, 0, 0)}
    assert hidden == {("t", 0, 0, 0), ("t", 0, 0, 2)}


def test_a_higher_minimum_hides_groups_below_it() -> None:
    parent, counts = _tree([[[7, 20, 9]], [[30]]])
    hidden, _ = suppress_tree(parent=parent, counts=counts, small_max=9)
    assert ("t", 0, 0, 0) in hidden and ("t", 0, 0, 2) in hidden


@settings(max_examples=200, deadline=None)
@given(leaves=_trees, data=st.data())
def test_the_bridge_check_agrees_with_rational_elimination_on_any_hidden_set(leaves, data) -> None:
    parent, _counts = _tree(leaves)
    hidden = data.draw(st.sets(st.sampled_from(sorted(parent, key=str))))
    children: dict = {}
    for node, up in parent.items():
        if up is not None:
            children.setdefault(up, []).append(node)
    equations = [{**{kid: 1 for kid in kids}, up: -1} for up, kids in children.items()]
    hidden_list = sorted(hidden, key=str)
    assert tree_derivable(parent, set(hidden)) == derivable(hidden_list, equations)
