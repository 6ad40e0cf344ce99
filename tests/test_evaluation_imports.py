"""The apps around evaluation depend one way: no import cycle between files of different apps among
alerts, monitoring, questionnaires and schedules (imports inside functions count: grimp reads them
all), and no app imports another app's private (underscore) names. Before the evaluation inbox
(ADR 0020) six files of three apps imported each other in a cycle held apart by function-level
imports, and alerts imported questionnaires' private ``_enqueue_evaluation``."""

import ast
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = {"alerts", "monitoring", "questionnaires", "schedules"}
APPS = sorted(DOMAIN | {"accounts", "audit", "patients", "interop", "outcomes", "exports"})


def _cycles(edges: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_joins_files_of_two_apps_among_alerts_monitoring_questionnaires_and_schedules():
    graph = grimp.build_graph(*APPS, include_external_packages=False)
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    across = [sorted(c) for c in _cycles(edges)
              if len({m.split(".")[0] for m in c}) > 1 and {m.split(".")[0] for m in c} & DOMAIN]
    assert across == []


def test_no_app_imports_another_apps_private_names():
    offences = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in APPS \
                        and node.module.split(".")[0] != app:
                    offences += [f"{path.relative_to(ROOT)}:{node.lineno} {node.module}.{a.name}"
                                 for a in node.names if a.name.startswith("_")]
    assert offences == []


def test_the_check_finds_a_cycle_when_there_is_one():
    assert _cycles({"a.x": {"b.y"}, "b.y": {"a.x"}, "c.z": {"a.x"}}) == [{"a.x", "b.y"}]
