"""The package's import graph: no cycle among signlip modules, and no library module reaching into the commands.

Every `import` / `from ... import` statement counts, at module level and inside functions alike: a function-level
import only hides a cycle until the day someone moves it to the top of the file (or calls it during import).
Imports under `if TYPE_CHECKING:` never run and are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

SRC = REPO / "src"
PACKAGE = "signlip"
# The Hydra edge: only these may import `signlip.commands` (cli.py dispatches to it).
EDGE = ("signlip.commands", "signlip.cli")

Edge = tuple[str, int]  # (imported module, line of the import statement)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the statements inside `if TYPE_CHECKING:` blocks."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else ""
            if name == "TYPE_CHECKING":
                skipped.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skipped


def imports_of(path: Path, modules: set[str], name: str | None = None) -> list[Edge]:
    """The signlip modules `path` (module `name`, by default from its place under src/) imports, resolved to modules
    that exist (`from pkg import sub` → pkg.sub when sub is a module, else pkg)."""
    me = name or module_name(path)
    # The package that relative imports start from: the module's own package, or the package itself for __init__.
    base = me.split(".") if is_package(path) else me.split(".")[:-1]
    tree = ast.parse(path.read_text(), filename=str(path))
    skipped = _type_checking_nodes(tree)
    found: list[Edge] = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    found.append((_existing(alias.name, modules), node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - (node.level - 1)]
                target = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if not (target == PACKAGE or target.startswith(PACKAGE + ".")):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.append((sub if sub in modules else _existing(target, modules), node.lineno))
    return [(m, line) for m, line in found if m != me]


def _existing(name: str, modules: set[str]) -> str:
    """The longest prefix of a dotted name that is a module of the package (`import a.b.c` names a.b.c)."""
    parts = name.split(".")
    while parts and ".".join(parts) not in modules:
        parts.pop()
    return ".".join(parts) or name


def import_graph() -> tuple[dict[str, list[Edge]], dict[str, Path]]:
    files = {module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}
    modules = set(files)
    return {m: imports_of(p, modules) for m, p in files.items()}, files


def find_cycles(graph: dict[str, list[Edge]]) -> list[list[str]]:
    """One cycle (as a path a → b → … → a) per strongly connected component with more than one module (Tarjan)."""
    succ = {m: sorted({t for t, _ in edges if t in graph}) for m, edges in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    counter = 0

    def visit(root: str) -> None:  # iterative, so that a deep package cannot hit the recursion limit
        nonlocal counter
        work = [(root, iter(succ[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(succ[child])))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(component)

    for module in sorted(succ):
        if module not in index:
            visit(module)
    return [_cycle_within(sorted(c)[0], c, succ) for c in components]


def _cycle_within(start: str, component: set[str], succ: dict[str, list[str]]) -> list[str]:
    """A shortest path start → … → start inside one strongly connected component (breadth first)."""
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in succ[node]:
                if child not in component:
                    continue
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [*reversed(path), start]
                if child not in parent:
                    parent[child] = node
                    nxt.append(child)
        frontier = nxt
    raise AssertionError(f"{start} is in a cycle but no path leads back to it")  # unreachable for a real component


def describe(cycle: list[str], graph: dict[str, list[Edge]], files: dict[str, Path]) -> str:
    steps = []
    for a, b in zip(cycle, cycle[1:]):
        line = min(line for t, line in graph[a] if t == b)
        steps.append(f"  {a} ({files[a].relative_to(REPO)}:{line}) imports {b}")
    return " → ".join(cycle) + "\n" + "\n".join(steps)


GRAPH, FILES = import_graph()


def test_the_walker_sees_the_package_and_function_level_imports():
    assert {"signlip.trainer", "signlip.build", "signlip.cli", "signlip.commands.train"} <= set(GRAPH)
    targets = {t for t, _ in GRAPH["signlip.build"]}
    # build.py imports the Trainer inside make_trainer (function level) and the config at module level.
    assert {"signlip.trainer", "signlip.config", "signlip.registry"} <= targets
    # `from signlip import distributed as dist` resolves to the module, not to the package.
    assert "signlip.distributed" in {t for t, _ in GRAPH["signlip.trainer"]}


def test_cycle_finder_reports_a_cycle():
    graph = {"a": [("b", 1)], "b": [("c", 2)], "c": [("a", 3), ("d", 4)], "d": [], "e": [("e", 1)]}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": [("b", 1)], "b": []}) == []


def test_no_import_cycle_in_the_package():
    cycles = find_cycles(GRAPH)
    report = "\n".join(describe(c, GRAPH, FILES) for c in cycles)
    print(report)
    assert not cycles, f"{len(cycles)} import cycle(s) among signlip modules — move the shared code into the module "\
                       f"both sides may import:\n{report}"


def is_edge(module: str) -> bool:
    return module in EDGE or module.startswith("signlip.commands.")


def test_no_library_module_imports_the_commands():
    bad = [f"{FILES[m].relative_to(REPO)}:{line} imports {t}" for m in sorted(GRAPH) if not is_edge(m)
           for t, line in GRAPH[m] if t == "signlip.commands" or t.startswith("signlip.commands.")]
    assert not bad, ("library modules reach into the commands (the Hydra edge) — move what they need into a library "
                     "module:\n  " + "\n  ".join(bad))


def test_edge_check_would_catch_a_library_importing_a_command(tmp_path):
    fake = {"signlip.commands.train": tmp_path / "train.py", "signlip.build": tmp_path / "build.py"}
    (tmp_path / "build.py").write_text("def f():\n    from signlip.commands.train import main\n")
    edges = imports_of(tmp_path / "build.py", set(fake), name="signlip.build")
    assert edges == [("signlip.commands.train", 2)] and not is_edge("signlip.build") and is_edge("signlip.cli")
