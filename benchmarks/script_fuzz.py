"""Fuzz of every value-taking option of the benchmark and experiment scripts, read from each script's own
argparse parser (a new option is fuzzed without a change here).

``option_fuzz.py`` does this for the ``cimjax`` command; the scripts (``benchmarks/*.py``,
``experiments/*.py``) are what users run to reproduce the tables, and some run for an hour, so a bad value
must be refused before the work starts. Each script's parser is captured by running the script with
``ArgumentParser.parse_args`` replaced; then each option that takes a value other than a path or a fixed
choice is set in turn to each value of :data:`VALUES`, with every output path in a scratch directory, in a
subprocess with ``--timeout`` seconds. Each run is classified:

- ``clear``: a non-zero exit with an ``error:`` line last on stderr and no traceback (argparse's usage error or
  the script's own one-line refusal);
- ``traceback``: a non-zero exit with a Python traceback (the message may be clear, the form is not);
- ``late``: a ``clear`` or ``traceback`` refusal that came after ``--late`` seconds (work was done first);
- ``error_exit_0``: exit 0 with an ``error:`` line on stderr (a refusal a calling script takes for success);
- ``ran``: exit 0, or still running at the timeout: the value was taken (right for a seed of 0, wrong for
  ``nan``); the JSON keeps its last line for review.

docs/benchmarks.md, "Hostile input", gives the figures before and after the scripts checked their options.

    python benchmarks/script_fuzz.py --timeout 30 --jobs 2 --json out.json
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import contextlib
import io
import json
import os
import runpy
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VALUES = ["nan", "-1", "0", "1e30", "2.5", "x", ""]
SKIPPED = {"script_fuzz.py", "option_fuzz.py", "keyword_fuzz.py", "hostile_probe.py", "interrupt_probe.py",
           "golden_outputs.py", "time_to_result.py", "architecture.py", "compile_log.py"}  # fmt: skip
"""The fuzz, probe, timing and test-run harnesses: tools run on this project's checkouts, not on users'
questions (``compile_log.py`` is a pytest plugin with one positional path)."""
POSITIONALS = {"int4_limits.py": ["{work}/end_to_end.json"]}
"""Required positional arguments: files in the scratch directory, written by :func:`main` (an
``end_to_end.json`` with three budget rows, so ``--row`` is judged against them)."""


class _Captured(Exception):
    def __init__(self, parser: argparse.ArgumentParser):
        self.parser = parser


def scripts() -> list[Path]:
    found = sorted((ROOT / "benchmarks").glob("*.py")) + sorted((ROOT / "experiments").glob("*.py"))
    return [path for path in found if path.name not in SKIPPED]


def parser_of(script: Path) -> argparse.ArgumentParser | None:
    """The parser ``script`` builds, taken at its ``parse_args`` call (nothing of the script runs after it);
    None for a script that reads ``sys.argv`` itself."""

    def capture(self, args=None, namespace=None):
        raise _Captured(self)

    original = argparse.ArgumentParser.parse_args
    argparse.ArgumentParser.parse_args = capture
    sys.path.insert(0, str(script.parent))
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # a script without argparse prints its usage
            runpy.run_path(str(script), run_name="__main__")
    except _Captured as captured:
        return captured.parser
    except SystemExit:  # it printed its usage without arguments
        return None
    finally:
        argparse.ArgumentParser.parse_args = original
        sys.path.remove(str(script.parent))
    return None


def _is_path(action: argparse.Action) -> bool:
    kind = action.type
    return kind is Path or getattr(kind, "__name__", "") in ("output_file_argument", "output_dir_argument")


def outputs(parser: argparse.ArgumentParser, work: Path) -> list[str]:
    """Every output option pointed into ``work`` (a run that is taken then writes nothing of the user's)."""
    argv = []
    for action in parser._actions:
        if action.option_strings and _is_path(action) and action.dest in ("out", "json", "out_dir"):
            argv += [action.option_strings[0], str(work / action.dest)]
    return argv


def fuzzed(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The optional arguments that take one free value: not flags, paths, fixed choices or help."""
    free = (argparse._StoreAction, argparse._AppendAction)
    return [
        action
        for action in parser._actions
        if type(action) in free and action.option_strings and action.nargs is None and action.choices is None
        and not _is_path(action)
    ]  # fmt: skip


def classify(argv: list[str], cwd: Path, timeout: float, late: float) -> tuple[str, float, str]:
    start = time.perf_counter()
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    try:
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "ran", timeout, f"still running after {timeout:.0f} s"
    wall = time.perf_counter() - start
    lines = [line for line in done.stderr.splitlines() if line.strip()] or done.stdout.splitlines() or [""]
    last = lines[-1]
    if done.returncode == 0:
        return ("error_exit_0" if "error:" in done.stderr else "ran"), wall, last[-160:]
    kind = "traceback" if "Traceback (most recent call last)" in done.stderr else "clear"
    if kind == "clear" and "error" not in last.lower():
        kind = "traceback"  # a failure without a message counts with the unreadable ones
    return ("late" if wall > late else kind), wall, last[-160:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write every run and its outcome here")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before a run counts as taken")
    parser.add_argument("--late", type=float, default=15.0, help="a refusal after this many seconds is late")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once")
    parser.add_argument("--only", help="fuzz only the scripts whose name contains this")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cimjax-script-fuzz-"))
    os.environ.setdefault("CIMJAX_CACHE", str(work / "cache"))
    (work / "end_to_end.json").write_text(json.dumps({"rows": [{}, {}, {}]}))
    cases = []
    for script in scripts():
        script_parser = parser_of(script) if not args.only or args.only in script.name else None
        if script_parser is None:
            continue
        positional = [text.format(work=work) for text in POSITIONALS.get(script.name, [])]
        for action in fuzzed(script_parser):
            for value in VALUES:
                scratch = Path(tempfile.mkdtemp(dir=work))
                argv = [sys.executable, str(script), *positional, *outputs(script_parser, scratch)]
                option = action.option_strings[0]
                cases.append((script.name, option, value, scratch, [*argv, option, value]))

    def run(case):
        name, option, value, scratch, argv = case
        outcome, wall, last = classify(argv, scratch, args.timeout, args.late)
        print(f"{outcome:9s} {wall:5.1f} s  {name} {option}={value!r}: {last}", flush=True)
        return {"script": name, "option": option, "value": value, "outcome": outcome, "wall_s": round(wall, 2),
                "last_line": last}  # fmt: skip

    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        runs = list(pool.map(run, cases))
    counts = collections.Counter(run["outcome"] for run in runs)
    print(dict(counts))
    if args.json:
        args.json.write_text(json.dumps({"counts": counts, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
