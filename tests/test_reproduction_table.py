"""The paper reproduction table is unchanged: `cimjax reproduce` against the copy stored in
benchmarks/golden/reproduce (written by benchmarks/golden_outputs.py before the architecture refactor).

A change that moves any number by more than 1e-6 relative, or any key, design or row, fails here; if a
modelling change is meant to move them, the stored copy is rewritten with ``golden_outputs.py --write``
and the commit says why.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from typer.testing import CliRunner

from cimjax.cli.main import app

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
_spec = importlib.util.spec_from_file_location("golden_outputs", BENCHMARKS / "golden_outputs.py")
golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(golden)

STORED = BENCHMARKS / "golden" / "reproduce"
TABLES = ("fig9.json", "fig9.csv", "fig9.md", "trends.json", "devices.json", "alpha05_llama3.2-3b_int8.json")


def test_the_case_is_the_stored_one():
    """The stored copy was made by the same command line this test runs."""
    assert golden.CASES["reproduce"] == ["reproduce", "--models", "qwen2.5-0.5b,llama3.2-3b", "--ga-seeds", "2",
                                         "--out", "{out}"]  # fmt: skip


def test_reproduction_table_matches_the_stored_copy(tmp_path):
    argv = [a.replace("{out}", str(tmp_path)) for a in golden.CASES["reproduce"]]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    diffs = []
    for name in TABLES:
        old, new = (STORED / name).read_text(), (tmp_path / name).read_text()
        if name.endswith(".json"):
            diffs += golden.compare_values(json.loads(old), json.loads(new), 1e-6, name)
        else:
            diffs += golden.compare_text(old, new, 1e-6, name)
    assert not diffs, "\n".join(diffs[:50])


def test_the_comparison_catches_a_change():
    """The oracle itself: a number moved by 1e-5 relative, a renamed key and an edited text cell are caught."""
    rows = json.loads((STORED / "fig9.json").read_text())
    moved = json.loads((STORED / "fig9.json").read_text())
    moved[0]["tokens_per_s"] *= 1 + 1e-5
    assert golden.compare_values(rows, moved, 1e-6) == [f"[0].tokens_per_s: {rows[0]['tokens_per_s']!r} -> "
                                                        f"{moved[0]['tokens_per_s']!r}"]  # fmt: skip
    renamed = [dict(rows[0]) | {"tokens/s": rows[0]["tokens_per_s"]}, *rows[1:]]
    assert golden.compare_values(rows, renamed, 1e-6)
    assert golden.compare_values(rows, rows[:-1], 1e-6) == [": length 4 -> 3"]
    text = (STORED / "fig9.md").read_text()
    assert golden.compare_text(text, text, 1e-6, "md") == []
    assert golden.compare_text("a | 1.25 | b", "a | 1.26 | b", 1e-6, "md")
    assert golden.compare_text("a | 1.25 | b", "a | 1.25 | c", 1e-6, "md")
