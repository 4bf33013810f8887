"""The floor plan of docs/architecture.md holds: no module imports one on a higher floor and no modules
import each other (directly or round a longer loop). The import graph is read from the source (ast), by
benchmarks/architecture.py, which this test loads; a synthetic package checks that the checks can fail."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_architecture():
    spec = importlib.util.spec_from_file_location("architecture", ROOT / "benchmarks" / "architecture.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


arch = _load_architecture()


@pytest.fixture(scope="module")
def graph():
    return arch.import_graph(ROOT)


def test_every_module_is_on_a_floor(graph):
    assert len(graph) > 50  # the whole package was read
    for module in graph:
        arch.floor_of(module)  # raises for a new top-level module or package missing from FLOORS


def test_no_module_imports_a_higher_floor(graph):
    new = [f"{a} -> {b}" for a, b in arch.upward_imports(graph) if (a, b) not in arch.KNOWN_UPWARD]
    assert not new, f"upward imports (floors: docs/architecture.md): {new}"


def test_no_import_cycles(graph):
    assert arch.cycles(graph) == []


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_the_checks_catch_upward_imports_and_cycles(tmp_path):
    """A made-up package: workload imports cost lazily (upward), cost imports workload back (a cycle),
    search imports cost through a relative import (downward, allowed) and hardware imports a sibling
    module through its package (``from cimjax import validation``: the module, not the package)."""
    _write(
        tmp_path,
        {
            "cimjax/__init__.py": "",
            "cimjax/validation.py": "",
            "cimjax/workload/__init__.py": "",
            "cimjax/workload/a.py": "def f():\n    from cimjax.cost.b import g\n",
            "cimjax/cost/__init__.py": "",
            "cimjax/cost/b.py": "import cimjax.workload.a\n",
            "cimjax/search/__init__.py": "",
            "cimjax/search/c.py": "from ..cost import b\nfrom .d import h\n",
            "cimjax/search/d.py": "",
            "cimjax/hardware/__init__.py": "",
            "cimjax/hardware/e.py": "from cimjax import validation\n",
        },
    )
    graph = arch.import_graph(tmp_path)
    assert graph["cimjax.search.c"] == {"cimjax.cost.b", "cimjax.search.d"}
    assert graph["cimjax.hardware.e"] == {"cimjax.validation"}
    assert arch.upward_imports(graph) == [("cimjax.workload.a", "cimjax.cost.b")]
    assert arch.cycles(graph) == [["cimjax.cost.b", "cimjax.workload.a"]]

    # the same package with the upward import removed passes both checks
    _write(tmp_path, {"cimjax/workload/a.py": "import math\n"})
    clean = arch.import_graph(tmp_path)
    assert arch.upward_imports(clean) == [] and arch.cycles(clean) == []


def test_a_module_outside_the_floor_plan_is_refused(tmp_path):
    _write(tmp_path, {"cimjax/__init__.py": "", "cimjax/gadgets/__init__.py": "", "cimjax/gadgets/x.py": ""})
    with pytest.raises(ValueError, match="'gadgets'"):
        arch.floor_of("cimjax.gadgets.x")


def test_no_file_over_450_lines_and_no_function_over_100():
    """The size floors of docs/architecture.md: a module over 450 lines or a function over 100 (decorators and
    docstring included) is split before it lands."""
    report = arch.layout(ROOT, top=5)
    assert report["files_over_450_lines"] == 0, report["largest_files"]
    assert report["functions_over_100_lines"] == 0, report["longest_functions"]
