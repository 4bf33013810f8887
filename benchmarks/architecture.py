"""The measured layout of the ``cimjax`` package: folders, the largest files and functions, and its import
graph checked against the floor plan of docs/architecture.md (module cycles, upward imports).

Usage: python benchmarks/architecture.py [--root .] [--json results/architecture.json]

Every ``import`` statement counts, those inside functions (lazy imports) and under ``TYPE_CHECKING``
included: a lazy import is still a dependency, only a later one. ``from pkg import name`` depends on the
module ``pkg.name`` when it is one, else on ``pkg``; importing a submodule does not count as depending on
its parent packages (Python runs their ``__init__`` first, but ours hold no code the submodule uses).
``tests/test_architecture.py`` imports this file and fails on any cycle or upward import.
"""

from __future__ import annotations

import argparse
import ast
import json
from collections import defaultdict
from pathlib import Path

PACKAGE = "cimjax"

FLOORS: tuple[tuple[str, ...], ...] = (
    ("validation", "interrupts", "jsonfile", "files", "cache", "cache_admin", "ops", "registry"),
    ("workload",),
    ("hardware",),
    ("mapping",),
    ("cost",),
    ("results", "evaluation"),
    ("search", "lm"),
    ("quant",),
    ("joint",),
    ("report",),
    ("api", "schema", PACKAGE),
    ("cli",),
)
"""The floor plan, bottom-up: a module may import modules of its own floor or of floors below, never above.
Names are the top-level modules and sub-packages of ``cimjax`` (``cimjax`` itself: its ``__init__``)."""

KNOWN_UPWARD: frozenset[tuple[str, str]] = frozenset()
"""Upward imports that exist and are being removed; tests/test_architecture.py fails on any other."""


def modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of the package (a package is its ``__init__``)."""
    found = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path, known: set[str] | dict) -> set[str]:
    """The package modules ``name`` (at ``path``) imports, resolved as the module docstring says."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            submodules = {f"{base}.{alias.name}" for alias in node.names} & set(known)
            targets.update(submodules or {base})
    return {t for t in targets if t in known and t != name and not name.startswith(t + ".")}


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package modules it imports."""
    found = modules(root)
    return {name: imports(name, path, found) for name, path in found.items()}


def floor_of(module: str, floors=FLOORS) -> int:
    """Index of the floor holding ``module`` (by its top-level name under the package)."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else parts[0]
    for index, names in enumerate(floors):
        if top in names:
            return index
    raise ValueError(f"module {module} is on no floor; add {top!r} to FLOORS (benchmarks/architecture.py)")


def upward_imports(graph: dict[str, set[str]], floors=FLOORS) -> list[tuple[str, str]]:
    """Every (importer, imported) pair whose imported module lies on a higher floor."""
    return sorted((a, b) for a, bs in graph.items() for b in bs if floor_of(b, floors) > floor_of(a, floors))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted: every import
    cycle lies within one of them."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def functions(path: Path, root: Path) -> list[dict]:
    """Every function and method of a file with its length in lines (decorators and docstring included)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    rows = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            rows.append({"function": f"{path.relative_to(root)}:{node.name}", "lines": node.end_lineno - start + 1})
    return rows


def layout(root: Path, top: int = 10) -> dict:
    """Folders (files, lines), the ``top`` largest files and longest functions, cycles and upward imports."""
    found = modules(root)
    lines = {str(p.relative_to(root)): len(p.read_text().splitlines()) for p in found.values()}
    folders: dict[str, dict[str, int]] = defaultdict(lambda: {"files": 0, "lines": 0})
    for file, count in lines.items():
        folder = folders[str(Path(file).parent)]
        folder["files"] += 1
        folder["lines"] += count
    funcs = sorted((f for p in found.values() for f in functions(p, root)), key=lambda f: -f["lines"])
    graph = import_graph(root)
    upward = upward_imports(graph)
    return {
        "modules": len(found),
        "lines": sum(lines.values()),
        "folders": dict(sorted(folders.items())),
        "largest_files": [{"file": f, "lines": n} for f, n in sorted(lines.items(), key=lambda x: -x[1])[:top]],
        "longest_functions": funcs[:top],
        "files_over_450_lines": sum(n > 450 for n in lines.values()),
        "functions_over_100_lines": sum(f["lines"] > 100 for f in funcs),
        "floors": [list(names) for names in FLOORS],
        "module_cycles": cycles(graph),
        "upward_imports": [{"importer": a, "imported": b} for a, b in upward],
        "known_upward_imports": [{"importer": a, "imported": b} for a, b in upward if (a, b) in KNOWN_UPWARD],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1], help="repository root")
    parser.add_argument("--json", type=Path, default=Path("results/architecture.json"), help="where to write")
    args = parser.parse_args()
    report = layout(args.root)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1) + "\n")
    print(f"{report['modules']} modules, {report['lines']} lines under {args.root / PACKAGE}")
    print("\nfolder                       files  lines")
    for folder, row in report["folders"].items():
        print(f"  {folder:<26} {row['files']:>5} {row['lines']:>6}")
    print("\nlargest files")
    for row in report["largest_files"]:
        print(f"  {row['lines']:>5}  {row['file']}")
    print("\nlongest functions")
    for row in report["longest_functions"]:
        print(f"  {row['lines']:>5}  {row['function']}")
    print(f"\nfiles over 450 lines: {report['files_over_450_lines']}; "
          f"functions over 100 lines: {report['functions_over_100_lines']}")  # fmt: skip
    print(f"\nmodule cycles ({len(report['module_cycles'])}):")
    for component in report["module_cycles"]:
        print("  " + " <-> ".join(component))
    print(f"\nupward imports ({len(report['upward_imports'])}; floors bottom-up: "
          + " | ".join(",".join(f) for f in report["floors"]) + "):")  # fmt: skip
    for row in report["upward_imports"]:
        known = "  (known, being removed)" if (row["importer"], row["imported"]) in KNOWN_UPWARD else ""
        print(f"  {row['importer']} -> {row['imported']}{known}")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
