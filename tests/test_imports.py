"""The library's shape: no import circles among the project's modules, and the library never
imports the stages (stages -> methods -> chains -> samplers -> ... -> utilities)."""

from __future__ import annotations

from pathlib import Path

from stages.dvc_deps import imports

ROOT = Path(__file__).resolve().parents[1]


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (anywhere in the file, function bodies too)."""
    files = {}
    for pkg in ("pipeline", "stages"):
        for f in sorted((ROOT / pkg).rglob("*.py")):
            name = ".".join(f.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            files[name] = f
    graph = {}
    for name, f in files.items():
        deps = set()
        for m in imports(f, ROOT):
            while m and m not in files:  # `from pipeline.x import name`: the module is pipeline.x
                m = m.rpartition(".")[0]
            if m and m != name and m not in ("pipeline", "stages"):
                deps.add(m)
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while (w := stack.pop()) != v:
                comp.append(w)
            if comp:
                out.append(sorted([v, *comp]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_library_never_imports_the_stages():
    bad = [(m, d) for m, deps in import_graph().items() if m.startswith("pipeline")
           for d in deps if d.startswith("stages")]  # fmt: skip
    assert not bad
