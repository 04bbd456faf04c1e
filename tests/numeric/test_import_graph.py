"""numeric's module graph: no import cycle, and no module reaching into another's private names.

Module-level imports only (an import inside a function runs on first use and cannot form a
load-time cycle). ``from numeric import _cpu`` imports a module and is fine; ``from
numeric._cpu import _helper`` reaches into another module's private name and is not.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "numeric"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _top_level_imports(path: Path):
    """(imported module, imported names) of the module-level import statements."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, ()
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, tuple(a.name for a in node.names)


def _edges(name: str):
    """The numeric modules that ``name`` imports at load time."""
    for mod, names in _top_level_imports(MODULES[name]):
        if not mod.startswith("numeric"):
            continue
        subs = [f"{mod}.{n}" for n in names if f"{mod}.{n}" in MODULES]
        if subs:                       # from numeric import _cpu, codegen: the submodules
            yield from subs
            if len(subs) < len(names):  # and the package for the other names
                yield mod
        else:
            yield mod


def test_no_import_cycle():
    graph = {m: set(_edges(m)) - {m} for m in MODULES}
    # a package's __init__ importing its own submodules is how a package is built, not a
    # cycle, as long as no submodule imports names from the package itself
    state, cycles = {}, []

    def visit(m, stack):
        state[m] = "open"
        for n in graph.get(m, ()):
            if n.startswith(m + "."):
                continue
            if state.get(n) == "open":
                cycles.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n, [*stack, n])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, f"import cycles in numeric: {cycles}"


def test_no_private_names_across_modules():
    bad = []
    for name, path in MODULES.items():
        for mod, names in _top_level_imports(path):
            if not mod.startswith("numeric") or mod == name:
                continue
            for n in names:
                if n.startswith("_") and not n.startswith("__") and f"{mod}.{n}" not in MODULES:
                    bad.append(f"{name} imports {mod}.{n}")
    assert not bad, "private names used across modules:\n" + "\n".join(bad)
