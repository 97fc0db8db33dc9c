"""The package layers of chipforge, bottom first, and the import rules that hold them.

A package may import only packages on lower floors (and the ground floor, ``errors`` and
``numerics``); no module imports another package's private modules (a ``_``-prefixed
module or subpackage); no import runs in a circle, function-level imports included.
``tests/test_architecture.py`` checks the code against these rules and
``scripts/gen_architecture.py`` writes ``docs/architecture.md`` from them.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# floors, bottom first; packages on one floor do not import each other
FLOORS: tuple[tuple[str, ...], ...] = (
    ("errors", "numerics"),
    ("examples",),  # torch nn.Modules of the platform's models; import no chipforge
    ("arch",),
    ("machine",),
    ("ops",),
    ("workloads",),
    ("perf",),
    ("isa",),
    ("sim",),
    ("compiler", "rtl"),
    ("cost",),
    ("legal",),  # the rules test quantities chipforge.cost measures
    # systems, plans and fleets of chips; below dse, whose cluster objectives (issue 15:
    # $ and days to pre-train, $ per M tokens at an SLO) price each design point as a fleet
    ("cluster",),
    ("dse",),
    ("report",),
    ("cli",),
)
ROOT = "chipforge"


def floor_of(package: str) -> int:
    for i, names in enumerate(FLOORS):
        if package in names:
            return i
    raise KeyError(f"package {package!r} is on no floor of chipforge._layers.FLOORS")


@dataclass(frozen=True)
class Import:
    source: str  # importing module, dotted
    target: str  # imported module, dotted (the longest module name that exists)
    line: int
    type_checking: bool  # under ``if TYPE_CHECKING:``: not a runtime import


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(src: Path) -> dict[str, Path]:
    """Every module of the chipforge package under ``src`` (the folder holding it)."""
    return {module_name(p, src): p for p in sorted((src / ROOT).rglob("*.py"))}


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def imports(src: Path) -> Iterator[Import]:
    """Every import of a chipforge module by a chipforge module (absolute and relative,
    at any depth of the code)."""
    known = modules(src)
    for name, path in known.items():
        tree = ast.parse(path.read_text(), str(path))
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        guarded = _type_checking_lines(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                # "from pkg import mod" imports the submodule when one exists
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                           for a in node.names]
            else:
                continue
            resolved = {_resolve(t, known) for t in targets if t.startswith(ROOT)}
            for target in sorted(resolved - {None, name}):
                yield Import(name, target, node.lineno, node.lineno in guarded)


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def package_of(module: str) -> str | None:
    """The top-level package (``perf`` for ``chipforge.perf._engine``); None for the root."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def is_private(module: str) -> bool:
    return any(p.startswith("_") and p != "__main__" for p in module.split(".")[1:])


def violations(src: Path) -> list[str]:
    """Every breach of the three rules, one line each (empty: the code holds them)."""
    found = []
    graph: dict[str, set[str]] = {}
    for imp in imports(src):
        where = f"{imp.source} (line {imp.line}) imports {imp.target}"
        if not imp.type_checking:
            graph.setdefault(imp.source, set()).add(imp.target)
        src_pkg, dst_pkg = package_of(imp.source), package_of(imp.target)
        if src_pkg is None or dst_pkg is None or src_pkg == dst_pkg:
            continue  # the root is the package's face; inside a package anything goes
        if is_private(imp.target):
            found.append(f"{where}: a private module of another package")
        if floor_of(dst_pkg) >= floor_of(src_pkg):
            found.append(f"{where}: {dst_pkg} is not on a floor below {src_pkg}")
    found += [f"import circle: {' -> '.join(c)}" for c in cycles(graph)]
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out
