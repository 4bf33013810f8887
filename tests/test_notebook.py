"""experiments/tour.ipynb runs top to bottom (SMALL settings) and its joint optimisation meets its budget.

The notebook is committed with the outputs of a full (non-SMALL) run, so its plots show on GitHub; this test
re-executes a copy in memory and never writes it back.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
from ipykernel.kernelspec import write_kernel_spec
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "experiments" / "tour.ipynb"
CELL_TIMEOUT_S = 300

CHECK = """
import json
print(json.dumps({
    "small": SMALL,
    "space_size": SPACE.size,
    "proxy": result.report["proxy"],
    "budget": problem.budget,
    "feasible": result.report["feasible"],
    "table_shape": list(result.table.shape),
    "n_layers": spec.n_layers,
    "tokens_per_s": result.report["tokens_per_s"],
    "uniform_tokens_per_s": base.report["tokens_per_s"],
    "uniform_proxy": base.report["proxy"],
}))
"""


def test_tour_notebook_runs_and_meets_its_budget(tmp_path, monkeypatch):
    # The kernel inherits this environment: SMALL settings, and the test session's CIMJAX_CACHE (set in
    # conftest.py), so its XLA compile cache is the one the other tests share. Jupyter's inline backend
    # renders with Agg (no display needed) and, unlike plain Agg, draws every figure at plt.show(), so
    # drawing errors fail the test and the PNGs can be counted.
    monkeypatch.setenv("CIMJAX_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    # A kernel spec of this very interpreter (the .venv one), whatever other "python3" kernels are installed.
    kernels = tmp_path / "kernels"
    write_kernel_spec(kernels / "python3")
    km = KernelManager(kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))
    assert km.kernel_spec.argv[0] == sys.executable

    nb = nbformat.read(NOTEBOOK, as_version=4)
    committed = [o for cell in nb.cells for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(committed) == 3, "commit the notebook with its outputs (plots visible on GitHub)"
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    client = NotebookClient(nb, km=km, timeout=CELL_TIMEOUT_S, resources={"metadata": {"path": str(ROOT)}})
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)  # raises CellExecutionError if the cell raises
        check = nbformat.v4.new_code_cell(CHECK)
        nb.cells.append(check)
        client.execute_cell(check, len(nb.cells) - 1)

    summary = json.loads("".join(o["text"] for o in check.outputs if o.get("name") == "stdout"))
    assert summary["small"] and summary["space_size"] < 10_000
    assert summary["feasible"]
    assert summary["proxy"] <= summary["budget"] * (1 + 1e-6)
    assert summary["uniform_proxy"] <= summary["budget"] * (1 + 1e-6)
    assert summary["table_shape"] == [summary["n_layers"], 17]
    assert summary["tokens_per_s"] > 0 and summary["uniform_tokens_per_s"] > 0
    figures = [o for cell in nb.cells for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(figures) == 3  # latency/energy breakdown, Pareto front, bit heat-map (library helpers)
