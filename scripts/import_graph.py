"""Print the package's import graph: for each module of comirec, the comirec modules it imports.

Imports inside functions (lazy imports) are listed too, marked ``(lazy)``; imports under
``if TYPE_CHECKING:`` are not (they never run). ``--cycles`` lists the strongly connected
components of more than one module (import circles, lazy imports included).

    python scripts/import_graph.py [--root python/comirec] [--cycles]
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path


def module_name(root: Path, path: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def resolve(mod: str, is_pkg: bool, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    base = mod.split(".")
    if not is_pkg:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def graph(root: Path) -> dict[str, dict[str, bool]]:
    """module -> {imported module: lazy}"""
    mods = {module_name(root, p): p for p in root.rglob("*.py")}
    native = {module_name(root, p) for p in root.rglob("*.pyi")} - set(mods)  # compiled modules (the Rust core)
    out: dict[str, dict[str, bool]] = {}
    for mod, path in sorted(mods.items()):
        tree = ast.parse(path.read_text())
        is_pkg = path.name == "__init__.py"
        deps: dict[str, bool] = {}
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = resolve(mod, is_pkg, node.level, node.module)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods or f"{base}.{a.name}" in native else base for a in node.names]
            if targets and _in_type_checking(tree, node):
                continue  # never runs: for type checkers only
            lazy = id(node) not in top
            for t in targets:
                while t and t not in mods and t not in native:
                    t = t.rpartition(".")[0]
                if t and t != mod and t.startswith(root.name):
                    deps[t] = deps.get(t, True) and lazy
        out[mod] = deps
    for mod in native:
        out[mod] = {}
    return dict(sorted(out.items()))


def _in_type_checking(tree: ast.Module, node: ast.AST) -> bool:
    for top in tree.body:
        if isinstance(top, ast.If) and "TYPE_CHECKING" in ast.unparse(top.test):
            if any(n is node for n in ast.walk(top)):
                return True
    return False


def cycles(g: dict[str, dict[str, bool]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    comps: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in g:
        if v not in index:
            visit(v)
    return comps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=str(Path(__file__).resolve().parent.parent / "python" / "comirec"))
    ap.add_argument("--cycles", action="store_true", help="list import circles only")
    args = ap.parse_args()
    g = graph(Path(args.root))
    if args.cycles:
        cs = cycles(g)
        for c in cs:
            print("circle: " + " <-> ".join(c))
        print(f"{len(cs)} circle(s)")
        return
    for mod, deps in g.items():
        items = [d.removeprefix("comirec.") + (" (lazy)" if lazy else "") for d, lazy in sorted(deps.items())]
        print(f"{mod.removeprefix('comirec.') or 'comirec'}: {', '.join(items) or '-'}")


if __name__ == "__main__":
    main()
