"""What a user waits for: wall time of CLI commands and of the Python API, each in a fresh process.

Usage: python benchmarks/time_to_result.py [--root CHECKOUT] [--cases help,evaluate,...] [--repeats 3]
       [--out results/time_to_result.json]
       python benchmarks/time_to_result.py --compare BEFORE.json AFTER.json   (a Markdown table)

Every case runs as a new process (``cimjax ...`` from this interpreter's environment, or a fresh
``python -c`` for the API), with ``PYTHONPATH`` set to ``--root`` so any checkout can be measured (e.g.
an older commit unpacked with ``git archive``):

* **cold**: an empty ``CIMJAX_CACHE`` directory for every run (no compiled program on disk);
* **warm**: one ``CIMJAX_CACHE`` directory shared by every run of the case, filled by one run first that
  is not counted.

Each run's wall time is the whole process (interpreter start, imports, compilation, work, exit). Medians
go to the JSON, with the process's CPU time (user + system, less sensitive to other jobs than wall time)
and the 1-minute load average (``os.getloadavg``) before every run: on a shared machine wall times are
upper bounds. ``--quiet-load 2`` makes every run wait (up to ``--quiet-wait`` seconds) until that load
average is below 2, for figures close to an idle machine's. The API case (``python``) reports the
process's phases separately: import, first ``evaluate_design``, second (same model, another design) and a
second model's first.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODEL, PRECISION = "llama3.2-1b", "int4"  # the table: llama3.2-1b int4 unless noted
_SEARCH = ["search", "--model", MODEL, "--precision", PRECISION]
CLI_CASES = {
    "help": ["--help"],
    "models": ["models"],
    "evaluate": ["evaluate", "--model", "llama3.2-3b", "--precision", "int8"],
    "search_exhaustive": [*_SEARCH, "--method", "exhaustive", "--alpha", "0.5"],
    "search_gradient": [*_SEARCH, "--method", "gradient", "--alpha", "0.5"],
    "search_ga": [*_SEARCH, "--method", "ga"],
    "sweep": ["sweep", "--model", MODEL, "--precision", PRECISION, "--alphas", "0,1", "--out", "{tmp}"],
    "optimize_small": ["optimize", "--model", MODEL, "--budget", "int8", "--starts", "2", "--rounds", "1"],
    "optimize_defaults": ["optimize", "--model", MODEL, "--budget", "int8"],
    "optimize_area": ["optimize", "--model", MODEL, "--budget", "int4", "--alpha", "0.5", "--area-max", "30"],
}
"""Command lines after ``cimjax`` ({tmp} becomes a fresh temporary directory)."""

API_SCRIPT = """
import json, time
t0 = time.perf_counter()
from cimjax.api import evaluate_design
from cimjax.hardware.config import EDGECIM_ALPHA05_DESIGN as d
t1 = time.perf_counter()
evaluate_design("llama3.2-1b", "int4", d)
t2 = time.perf_counter()
evaluate_design("llama3.2-1b", "int4", d | {"m": 2})
t3 = time.perf_counter()
evaluate_design("llama3.2-3b", "int8", d)
t4 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "first_evaluate_s": t2 - t1, "second_evaluate_s": t3 - t2,
                  "other_model_first_s": t4 - t3}))
"""
CASES = [*CLI_CASES, "python"]


def command(case: str, tmp: str) -> list[str]:
    if case == "python":
        return [sys.executable, "-c", API_SCRIPT]
    script = Path(sys.executable).parent / "cimjax"  # the console script, as a user runs it
    launcher = [str(script)] if script.exists() else [sys.executable, "-c", "from cimjax.cli.main import app; app()"]
    return [*launcher, *(a.replace("{tmp}", tmp) for a in CLI_CASES[case])]


QUIET = {"load": None, "wait_s": 0.0}
"""``--quiet-load``: each run first waits (at most ``wait_s``) for the 1-minute load average to fall below it."""


def wait_for_quiet() -> None:
    deadline = time.monotonic() + QUIET["wait_s"]
    while QUIET["load"] is not None and os.getloadavg()[0] >= QUIET["load"] and time.monotonic() < deadline:
        time.sleep(5)


def run_once(case: str, root: Path, cache: str, timeout: float) -> dict:
    """One fresh process; its wall time, exit status, load average before it, and the API's phases."""
    with tempfile.TemporaryDirectory(prefix="ttr-out-") as tmp:
        env = os.environ | {"PYTHONPATH": str(root), "CIMJAX_CACHE": cache}
        wait_for_quiet()
        load = os.getloadavg()[0]
        cpu = _children_cpu_s()
        start = time.perf_counter()
        try:
            proc = subprocess.run(command(case, tmp), env=env, cwd=tmp, capture_output=True, text=True, timeout=timeout)
            rc, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired:
            rc, stdout, stderr = "timeout", "", ""
        wall = time.perf_counter() - start
    run = {"wall_s": wall, "cpu_s": _children_cpu_s() - cpu, "rc": rc, "load_1min": load}
    if rc != 0:
        run["stderr_tail"] = stderr[-500:]
    if case == "python" and rc == 0:
        run |= json.loads(stdout.strip().splitlines()[-1])
    return run


def _children_cpu_s() -> float:
    """User + system CPU seconds of finished child processes (less sensitive to other jobs than wall time)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def summarise(runs: list[dict]) -> dict:
    ok = [r for r in runs if r["rc"] == 0]
    keys = [k for k in (ok[0] if ok else {}) if k.endswith("_s")]
    return {
        "runs": runs,
        "failed": len(runs) - len(ok),
        **{f"median_{k}": statistics.median(r[k] for r in ok) for k in keys},
        "median_load_1min": statistics.median(r["load_1min"] for r in runs),
    }


def measure(case: str, root: Path, repeats: int, timeout: float) -> dict:
    cold = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="ttr-cold-") as cache:
            cold.append(run_once(case, root, cache, timeout))
    with tempfile.TemporaryDirectory(prefix="ttr-warm-") as cache:
        run_once(case, root, cache, timeout)  # fills the cache; not counted
        warm = [run_once(case, root, cache, timeout) for _ in range(repeats)]
    return {"argv": command(case, "{tmp}")[1:] if case != "python" else "API_SCRIPT",
            "cold": summarise(cold), "warm": summarise(warm)}  # fmt: skip


def git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return None


def markdown(before: dict | None, after: dict) -> str:
    """Table of median wall times (cold / warm), optionally before -> after."""
    head = "| case | " + ("before cold | before warm | " if before else "") + "cold | warm |"
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for case in after["cases"]:
        cells = []
        for source in ([before] if before else []) + [after]:
            entry = source["cases"].get(case)
            for kind in ("cold", "warm"):
                cells.append(_cell(entry[kind]) if entry else "-")
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(summary: dict) -> str:
    if "median_wall_s" not in summary:
        return "failed"
    text = f"{summary['median_wall_s']:.2f} s (cpu {summary['median_cpu_s']:.2f})"
    if "median_first_evaluate_s" in summary:
        text += (
            f" (import {summary['median_import_s']:.2f}, 1st {summary['median_first_evaluate_s']:.2f},"
            f" 2nd {summary['median_second_evaluate_s']:.2f}, new model {summary['median_other_model_first_s']:.2f})"
        )
    return text + (f" [{summary['failed']} failed]" if summary["failed"] else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1], help="checkout to time")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {CASES}")
    parser.add_argument("--repeats", type=int, default=3, help="cold runs and warm runs per case")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds before a run counts as failed")
    parser.add_argument("--quiet-load", type=float, help="before each run, wait for a 1-minute load average below this")
    parser.add_argument("--quiet-wait", type=float, default=1800.0, help="most seconds each run waits for it")
    parser.add_argument("--label", default="", help="free text kept in the JSON (e.g. the commit of an unpacked tree)")
    parser.add_argument("--out", type=Path, default=Path("results/time_to_result.json"))
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"), help="print a table and exit")
    args = parser.parse_args()
    if args.compare:
        before, after = (json.loads(p.read_text()) for p in args.compare)
        print(markdown(before, after))
        return
    QUIET.update(load=args.quiet_load, wait_s=args.quiet_wait)
    cases = args.cases.split(",")
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {unknown}; allowed: {CASES}")
    report = {
        "root": str(args.root.resolve()),
        "commit": git_commit(args.root),
        "label": args.label,
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "repeats": args.repeats,
        "quiet_load": args.quiet_load,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cases": {},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for case in cases:
        report["cases"][case] = measure(case, args.root.resolve(), args.repeats, args.timeout)
        args.out.write_text(json.dumps(report, indent=1) + "\n")  # partial results survive an interruption
        entry = report["cases"][case]
        print(f"{case}: cold {_cell(entry['cold'])}, warm {_cell(entry['warm'])}, "
              f"load {entry['warm']['median_load_1min']:.1f}", flush=True)  # fmt: skip
    print(markdown(None, report))


if __name__ == "__main__":
    main()
