"""The benchmark scripts users run to reproduce the tables refuse a bad option value with one line and exit
status 2, before any work, as the ``cimjax`` command does (``benchmarks/script_fuzz.py`` fuzzes every option)."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


@pytest.mark.parametrize(
    ("script", "argv", "message"),
    [
        ("alpha_sweep_figure", ["--alphas", "nan"], "alpha = nan is outside the allowed range [0, 1]"),
        ("compile_time", ["--programs", ""], "--programs = '' is not allowed; allowed: comma-separated names of"),
        ("decompose", ["--points", "x"], "--points: 'x' is not model:precision"),
        ("distinct_rows", ["--tables", "-1"], "--tables = -1 is not allowed"),
        ("gptq_weight_kl", ["--windows", "0"], "--windows = 0 is not allowed"),
        ("gradient_cost", ["--batch", "0"], "--batch = 0 and --repeats = 7 must both be >= 1"),
        ("int4_limits", ["no-such.json"], "cannot read end_to_end.json file no-such.json"),
        ("int4_limits", ["rows.json", "--row", "0"], "row 0 of rows.json is not one experiments/end_to_end.py writes"),
        ("mechanisms", ["--models", ""], "--models = '' is not allowed"),
        ("optimize_phases", ["--budget", "x"], "budget = 'x' is not allowed"),
        ("optimize_recommendation", ["--tolerance", "nan"], "--tolerance = nan must be a fraction in [0, 1)"),
        ("optimizer_quality", ["--methods", "x"], "--methods = 'x' is not allowed; allowed: comma"),
        ("pair_cost", ["--seed", "-1"], "--seed = -1 is not allowed"),
        ("proxy_forms", ["--out", "{out}", "--seed", "0", "--pairs", "3:x"], "--pairs = '3:x' is not allowed"),
        ("proxy_validation", ["--configs", "0"], "--configs = 0 is not allowed"),
        ("reproduce_edgecim", ["--models", ""], "unknown model id(s) ['']"),
        ("robust_selection", ["--tolerance", "nan"], "--tolerance = nan must be a fraction in [0, 1)"),
        ("robust_selection", ["--models", "x"], "--models = 'x' is not allowed"),
        ("sensitivity_text", ["--held-out-windows", "0"], "--held-out-windows = 0 is not allowed"),
        ("sweep_speed", ["--chunk", "-1"], "--chunk = -1 is not allowed"),
        ("tornado", ["--top", "0"], "--top = 0 is not allowed"),
    ],
)  # fmt: skip
def test_benchmark_scripts_refuse_option_values_in_one_line_before_any_work(
    script, argv, message, tmp_path, monkeypatch, capsys
):
    """Before: tracebacks (KeyError 'x' for an unknown method or model, "not enough values to unpack" for a
    point without a colon), refusals after work (optimize_recommendation.py --tolerance nan after 27 s of
    optimisation, robust_selection.py's after a sweep; int4_limits.py's row only after training the LM),
    nonsense taken (--tables -1, a seed of -1, --top 0, --configs 0) and a failed optimisation reported with
    exit status 0 (optimize_phases.py)."""
    monkeypatch.setenv("CIMJAX_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rows.json").write_text('{"rows": [{}]}')  # not an end_to_end.json: no budget, gain or bits
    monkeypatch.setattr(sys, "argv", [f"{script}.py", *(arg.format(out=tmp_path / "out") for arg in argv)])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(BENCHMARKS / f"{script}.py"), run_name="__main__")
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # argparse's usage may come before it
    assert "error: " in last and message in last
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out").exists()  # nothing trained or written


CTRL_C_IN_A_GC_CALLBACK = """
import gc, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
from cimjax import validation
def ctrl_c_in_a_gc_callback(phase, info):  # as when Ctrl-C lands in JAX's _xla_gc_callback
    gc.callbacks.remove(ctrl_c_in_a_gc_callback)
    signal.raise_signal(signal.SIGINT)
def main():
    gc.callbacks.append(ctrl_c_in_a_gc_callback)
    gc.collect()
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:  # the work Ctrl-C should have stopped
        pass
    print("finished")
validation.run_script(main)
"""


def test_ctrl_c_in_a_gc_callback_stops_a_script():
    """Before: Python dropped the interrupt ("Exception ignored"), the script finished its work and exited 0. Now
    it stops with one line and status 130, as the ``cimjax`` command does."""
    env = os.environ | {"PYTHONPATH": str(BENCHMARKS.parent)}
    proc = subprocess.run([sys.executable, "-c", CTRL_C_IN_A_GC_CALLBACK], env=env, capture_output=True, text=True)
    assert (proc.returncode, proc.stdout) == (130, ""), proc.stderr
    assert proc.stderr.strip().splitlines() == ["-c: interrupted (Ctrl-C)"]


def test_a_full_disk_ends_a_script_with_one_line(monkeypatch, capsys):
    """Before: the OSError's traceback. A write the file system refuses is the machine's state, not a bug."""
    import errno

    from cimjax import validation

    def main():
        raise OSError(errno.ENOSPC, "No space left on device", "results/x.json")

    monkeypatch.setattr(sys, "argv", ["x.py"])
    with pytest.raises(SystemExit) as exit_info:
        validation.run_script(main)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "x.py: error: cannot write results/x.json: No space left on device\n"
