"""Golden outputs: every ``cimjax`` command's numbers, stored once and compared after a change.

Usage: python benchmarks/golden_outputs.py --write benchmarks/golden   (store the current code's outputs)
       python benchmarks/golden_outputs.py --check [--golden benchmarks/golden] [--cases evaluate_3b_int8,...]
       python benchmarks/golden_outputs.py --compare OLD_DIR NEW_DIR

A refactor must not change any output. Each case runs one command line as a fresh ``cimjax`` process
(``PYTHONPATH`` = ``--root``, so any checkout can be measured) and keeps what a user's script would read:
the ``--json`` object on stdout, or the JSON, CSV and Markdown files of ``--out``. Comparison is
structural: the same keys, the same list lengths, equal strings, and numbers equal to ``--rtol``
(1e-6 relative) — in text files number by number. Timings, the git commit and the version are not
outputs of the model and are skipped (``VOLATILE``).

Not covered (minutes of LM training each; the test suite checks them): ``proxy validate``, ``proxy
export``, ``proxy sensitivities``, ``optimize --verify/--checkpoint``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TECH_OVERRIDES = {"dram_efficiency": 0.8, "fu_overlap": 0.0, "pe_cycle_energy": 3e-12}
_EXH = ["search", "--model", "llama3.2-1b", "--precision", "int4", "--json"]
_OPT = ["optimize", "--model", "llama3.2-1b", "--starts", "2", "--rounds", "1", "--json"]
CASES = {
    "evaluate_3b_int8": ["evaluate", "--model", "llama3.2-3b", "--precision", "int8", "--json"],
    "evaluate_qwen_int4_config": [
        "evaluate", "--model", "qwen2.5-0.5b", "--precision", "int4", "--c-v", "4", "--c-h", "1", "--m", "3",
        "--pes-per-tile", "16", "--bus-intra-tile", "512", "--json",
    ],
    "evaluate_mixed_prefill": [
        "evaluate", "--model", "qwen3-0.6b", "--precision", "w4a8kv4", "--prefill", "64", "--generate", "32", "--json",
    ],
    "evaluate_tech": ["evaluate", "--model", "phi3.5-mini", "--precision", "int6", "--tech", "{tech}", "--json"],
    "search_exhaustive": [*_EXH, "--alpha", "0.5"],
    "search_exhaustive_limits": [*_EXH, "--alpha", "1", "--tolerance", "0.01", "--area-max", "20"],
    "search_gradient": [*_EXH, "--method", "gradient", "--alpha", "0.5", "--seed", "0"],
    "search_ga": [*_EXH, "--method", "ga", "--alpha", "1", "--seed", "1"],
    "sweep": [
        "sweep", "--model", "qwen2.5-0.5b", "--precision", "int8", "--alphas", "0,0.5,1", "--ga-runs", "1",
        "--out", "{out}",
    ],
    "reproduce": ["reproduce", "--models", "qwen2.5-0.5b,llama3.2-3b", "--ga-seeds", "2", "--out", "{out}"],
    "optimize_gradient": [*_OPT, "--budget", "int8"],
    "optimize_gradient_area": [*_OPT, "--budget", "int4", "--alpha", "0.5", "--area-max", "30", "--out", "{out}"],
    "optimize_ga": ["optimize", "--model", "qwen2.5-0.5b", "--budget", "int6", "--method", "ga", "--json"],
    "optimize_sequential": [
        "optimize", "--model", "qwen2.5-0.5b", "--budget", "0.1", "--method", "sequential", "--json",
    ],
    "tech": ["tech", "--json"],
}  # fmt: skip
"""Command lines after ``cimjax``: {out} becomes an output directory, {tech} a file of TECH_OVERRIDES."""

VOLATILE = {"wall_s", "compile_s", "sweep_s", "designs_per_s", "git_commit", "cimjax_version", "jax_version"}
"""Keys whose values are not model outputs (timings, provenance); compared for presence only."""
TEXT_SUFFIXES = (".json", ".csv", ".md")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def run_case(name: str, root: Path, dest: Path) -> float:
    """Runs one case and stores its outputs under ``dest/name``; returns its wall time."""
    case_dir = dest / name
    case_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="golden-") as tmp:
        tech = Path(tmp) / "tech.json"
        tech.write_text(json.dumps(TECH_OVERRIDES))
        out = Path(tmp) / "out"
        argv = [a.replace("{out}", str(out)).replace("{tech}", str(tech)) for a in CASES[name]]
        env = os.environ | {"PYTHONPATH": str(root)}
        start = time.perf_counter()
        launcher = [sys.executable, "-c", "from cimjax.cli.main import app; app()"]
        proc = subprocess.run([*launcher, *argv], env=env, cwd=tmp, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"case {name} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        def keep(file: str, text: str) -> None:  # the temporary directory's name is not an output
            (case_dir / file).write_text(text.replace(tmp, "{tmp}"))

        if "--json" in argv:
            keep("stdout.json", json.dumps(json.loads(proc.stdout), indent=1, sort_keys=True))
        if out.exists():
            for path in sorted(out.rglob("*")):
                if path.suffix in TEXT_SUFFIXES:
                    keep(path.name, path.read_text())
    return wall


def _close(a: float, b: float, rtol: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= rtol * max(abs(a), abs(b))


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def compare_values(old, new, rtol: float, where: str = "") -> list[str]:
    """Differences between two JSON values, as 'path: old -> new' lines."""
    if isinstance(old, dict) and isinstance(new, dict):
        diffs = [f"{where}: keys {sorted(set(old) ^ set(new))} only on one side"] if set(old) != set(new) else []
        for key in sorted(set(old) & set(new)):
            if key not in VOLATILE:
                diffs += compare_values(old[key], new[key], rtol, f"{where}.{key}")
        return diffs
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return [f"{where}: length {len(old)} -> {len(new)}"]
        pairs = enumerate(zip(old, new, strict=True))
        return [d for i, (a, b) in pairs for d in compare_values(a, b, rtol, f"{where}[{i}]")]
    if _is_number(old) and _is_number(new):
        return [] if _close(float(old), float(new), rtol) else [f"{where}: {old!r} -> {new!r}"]
    return [] if old == new else [f"{where}: {old!r} -> {new!r}"]


def compare_text(old: str, new: str, rtol: float, where: str) -> list[str]:
    """Line by line: the text between numbers equal, the numbers equal to ``rtol``."""
    old_lines, new_lines = old.splitlines(), new.splitlines()
    if len(old_lines) != len(new_lines):
        return [f"{where}: {len(old_lines)} -> {len(new_lines)} lines"]
    diffs = []
    for i, (a, b) in enumerate(zip(old_lines, new_lines, strict=True)):
        same_text = _NUMBER.sub("#", a) == _NUMBER.sub("#", b)  # then both have as many numbers
        pairs = zip(_NUMBER.findall(a), _NUMBER.findall(b), strict=same_text)
        if not same_text or not all(_close(float(x), float(y), rtol) for x, y in pairs):
            diffs.append(f"{where} line {i + 1}: {a!r} -> {b!r}")
    return diffs


def compare_dirs(old: Path, new: Path, rtol: float, cases: list[str]) -> list[str]:
    diffs = []
    for name in cases:
        old_files = {p.name for p in (old / name).iterdir()} if (old / name).exists() else set()
        new_files = {p.name for p in (new / name).iterdir()} if (new / name).exists() else set()
        if old_files != new_files:
            diffs.append(f"{name}: files {sorted(old_files ^ new_files)} only on one side")
        for file in sorted(old_files & new_files):
            a, b = (old / name / file).read_text(), (new / name / file).read_text()
            if file.endswith(".json"):
                diffs += compare_values(json.loads(a), json.loads(b), rtol, f"{name}/{file}")
            else:
                diffs += compare_text(a, b, rtol, f"{name}/{file}")
    return diffs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", type=Path, help="store the outputs in this directory")
    mode.add_argument("--check", action="store_true", help="run the cases and compare them with --golden")
    mode.add_argument("--compare", nargs=2, type=Path, metavar=("OLD", "NEW"), help="compare two stored directories")
    parser.add_argument("--golden", type=Path, default=Path(__file__).parent / "golden")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1], help="checkout to run")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated case names")
    parser.add_argument("--rtol", type=float, default=1e-6)
    args = parser.parse_args()
    cases = [c for c in args.cases.split(",") if c]
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        raise SystemExit(f"--cases {unknown} are not known; allowed: {list(CASES)}")
    if args.compare:
        diffs = compare_dirs(*args.compare, args.rtol, cases)
    else:
        with tempfile.TemporaryDirectory(prefix="golden-new-") as tmp:
            dest = args.write or Path(tmp)
            for name in cases:
                print(f"{name}: {run_case(name, args.root.resolve(), dest):.1f} s", flush=True)
            if args.write:
                return
            diffs = compare_dirs(args.golden, dest, args.rtol, cases)
    for line in diffs[:200]:
        print(line)
    print(f"{len(diffs)} difference(s) in {len(cases)} case(s)" if diffs else f"OK: {len(cases)} case(s) identical")
    sys.exit(1 if diffs else 0)


if __name__ == "__main__":
    main()
