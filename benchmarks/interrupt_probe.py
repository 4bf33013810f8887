"""Presses Ctrl-C on real ``cimjax`` runs at a grid of moments and counts how each run ends.

Each run starts the console script's entry function (``--entry``, as the installed ``cimjax`` does) or a script
in a fresh process, waits the given delay and sends it SIGINT, as a terminal does on Ctrl-C. Outcomes:

- ``stopped``: exit status 130, the work not finished (no result printed), no traceback;
- ``ran_on``: the run finished its work all the same (printed its result, or exited 0): Ctrl-C did not stop it;
- ``traceback``: a Python traceback or "Exception ignored" on stderr (``finished`` says whether the run finished
  its work all the same);
- ``crash``: killed by a signal other than SIGINT (the interpreter crashed: SIGSEGV, SIGABRT);
- ``other``: any other exit; ``finished_first``: the run ended before the delay (not a test of Ctrl-C).

``stop_s`` is the time from the signal to the exit of the ``stopped`` runs. The runs go one at a time, since
when the signal lands is what is measured. docs/benchmarks.md, "Hostile input", gives the figures.

    CIMJAX_CACHE=/tmp/cimjax-probe python benchmarks/interrupt_probe.py --repeats 3 --json out.json
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cimjax import validation
from cimjax.files import output_file_argument

MODEL = "qwen2.5-0.5b"
ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "evaluate": (
        ["cimjax", "evaluate", "--model", MODEL, "--json"],
        [0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0, 1.5],
    ),
    "optimize": (["cimjax", "optimize", "--model", MODEL, "--budget", "int8", "--json"], [1.0, 2.0, 4.0, 8.0]),
    "decompose.py": (["benchmarks/decompose.py", "--out", "{scratch}/decompose.json"], [0.5, 1.0, 2.0, 3.0, 4.0, 6.0]),
}
"""Each command line (``cimjax`` is the console script, anything else a script of this checkout) and the delays
(s) at which Ctrl-C is pressed: on a warm cache evaluate ends in about 2 s, optimize runs for about 10 s and
decompose.py for about 9 s, the first 2 s of it in its imports (before the script's ``main`` runs)."""
FINISHED = re.compile(r"^(\{|wrote )", re.MULTILINE)
"""The line that says a run finished its work: the CLI's JSON result, the script's ``wrote <file>``."""
TIME_LIMIT_S = 300


def run_once(command: list[str], delay: float) -> dict:
    """One run of ``command`` with Ctrl-C after ``delay`` seconds; its outcome, exit status and stop time."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    sent = proc.poll() is None
    if sent:
        proc.send_signal(signal.SIGINT)
    signalled = time.perf_counter()
    stdout, stderr = proc.communicate(timeout=TIME_LIMIT_S)
    code = proc.returncode
    if not sent:
        outcome = "finished_first"
    elif code < 0 and code != -signal.SIGINT:
        outcome = "crash"
    elif "Traceback" in stderr or "Exception ignored" in stderr:
        outcome = "traceback"
    elif code == 0 or FINISHED.search(stdout):
        outcome = "ran_on"
    else:
        outcome = "stopped" if code == 130 else "other"
    last = (stderr.strip().splitlines() or [""])[-1][:160]
    stop_s = time.perf_counter() - signalled
    return {
        "delay_s": delay,
        "outcome": outcome,
        "exit": code,
        "finished": bool(FINISHED.search(stdout)),
        "stop_s": stop_s,
        "last": last,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=output_file_argument, help="write every run and its outcome here")
    parser.add_argument("--repeats", type=int, default=3, help="runs per command and delay")
    parser.add_argument("--entry", default="cimjax.cli:main", help="MODULE:FUNCTION the console script calls")
    parser.add_argument("--only", choices=sorted(COMMANDS), help="probe only this command")
    args = parser.parse_args()
    validation.count("--repeats", args.repeats, 1, 100)
    module, _, function = args.entry.partition(":")
    if not all(part.isidentifier() for part in [*module.split("."), function]):
        raise validation.fail("--entry", args.entry, "allowed: MODULE:FUNCTION, e.g. cimjax.cli:main")
    entry = [sys.executable, "-c", f"import sys; from {module} import {function}; sys.exit({function}())"]

    runs, summary = [], collections.defaultdict(collections.Counter)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cimjax-interrupt-") as scratch:
        for name, (argv, delays) in COMMANDS.items():
            if args.only and name != args.only:
                continue
            program = entry if argv[0] == "cimjax" else [sys.executable, str(ROOT / argv[0])]
            command = program + [arg.format(scratch=scratch) for arg in argv[1:]]
            base = subprocess.run(command, capture_output=True, text=True, timeout=TIME_LIMIT_S)
            if base.returncode != 0:  # the command must run on its own first, or every outcome is about something else
                raise SystemExit(f"interrupt_probe.py: error: {' '.join(argv)} fails on its own: {base.stderr[-300:]}")
            for delay in delays:
                for _ in range(args.repeats):
                    row = {"command": name} | run_once(command, delay)
                    runs.append(row)
                    summary[name][row["outcome"]] += 1
                    print(
                        f"{name:9s} {delay:5.2f} s  {row['outcome']:14s} exit {row['exit']:4d}  {row['last']}",
                        flush=True,
                    )
    stops = [row["stop_s"] for row in runs if row["outcome"] == "stopped"]
    stop_s = {"median": statistics.median(stops), "max": max(stops)} if stops else {}
    for name, counts in summary.items():
        print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print(f"stop time after Ctrl-C: {stop_s}; wall {time.perf_counter() - start:.0f} s")
    if args.json:
        report = {"entry": args.entry, "summary": {k: dict(v) for k, v in summary.items()}, "stop_s": stop_s}
        args.json.write_text(json.dumps(report | {"runs": runs}, indent=1))


if __name__ == "__main__":
    validation.run_script(main)
