"""Fuzz of every value-taking option of the ``cimjax`` commands, read from the CLI itself (a new option is fuzzed
without a change here).

Each option (and positional argument) of ``evaluate``, ``search``, ``sweep``, ``reproduce``, ``optimize`` (once
with ``--model``, once with an exported ``--checkpoint``), ``proxy validate``, ``proxy sensitivities``,
``schema`` and ``cache clear`` is set in turn to each hostile value of :data:`VALUES` on a small
base command line that runs in seconds, in-process (typer's CliRunner) in a scratch directory with its own
cache. Path options are left out (the hostile probe, ``benchmarks/hostile_probe.py``, throws bad files and paths).
Each run is classified:

- ``clear``: exit 2 with one line, ``error: ...``, and nothing else on stderr;
- ``late``: exit 2 with that line, but only after other output (work done before the refusal);
- ``deep``: an uncaught exception, or an exit status other than 0 and 2;
- ``nan``: exit 0 with NaN or infinity in the output;
- ``hang``: no answer within ``--timeout`` seconds;
- ``ok``: exit 0 with finite output (the value is a valid one: a seed of 0, an alpha of 0).

docs/benchmarks.md, "Hostile input", gives the figures before and after the options were checked by name.

    python benchmarks/option_fuzz.py --json out.json
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import tempfile
import time
from pathlib import Path

from keyword_fuzz import Hang, alarm

MODEL = "qwen2.5-0.5b"
VALUES = ["nan", "inf", "-1", "0", "1e30", "2.5", "x", "", str(10**9), str(10**23)]
SPACE = {"c_v": [2], "c_h": [3], "t_v_act": [4], "t_h_act": [2], "m": [1, 2], "pes_per_tile": [4]}
SMALL = ["--prefill", "16", "--generate", "16"]
FAST = ["--starts", "2", "--rounds", "2"]
PATHS = {"config", "tech", "space", "out", "out_dir", "html", "checkpoint", "checkpoint_dir", "sensitivities"}
"""The path options (by parameter name), left to the hostile probe."""
CHECKPOINT = ["--checkpoint", "ckpt"]
SENSITIVITY_WINDOWS = ["--windows", "2", "--seq-len", "32", "--check-windows", "4", "--no-gptq"]
CALIBRATION = ["--calib-windows", "2", "--calib-seq-len", "32", "--check-windows", "4", "--no-gptq"]
"""The tiny exported checkpoint's windows (its budget: the KL of uniform INT4; its INT8 loss increase is below noise
and its INT8 KL below what the proxy predicts at the highest bits)."""


def base_commands(work: Path) -> dict[str, list[str]]:
    """A base command line per command: valid, and done in seconds on two cores."""
    return {
        "evaluate": ["evaluate", "--model", MODEL, *SMALL],
        "search": ["search", "--model", MODEL, "--method", "gradient", *SMALL],
        "sweep": ["sweep", "--model", MODEL, "--space", str(work / "space.json"), "--out", "sweep", *SMALL],
        "reproduce": ["reproduce", "--models", MODEL, "--out", "reproduce"],
        "optimize --model": ["optimize", "--model", MODEL, "--budget", "int8", *FAST],
        "optimize --checkpoint": ["optimize", *CHECKPOINT, "--budget", "int4", "--target", "kl", *FAST, *CALIBRATION],
        "proxy validate": ["proxy", "validate", "--size", "tiny", "--configs", "3"],
        "proxy sensitivities": ["proxy", "sensitivities", *CHECKPOINT, "--samples", "1", *SENSITIVITY_WINDOWS],
        "schema": ["schema", "config"],
        "cache clear": ["cache", "clear", "all", "--older-than", "365"],  # a dry run: deletes nothing
    }


def command_params(app, argv: list[str]) -> tuple[list, int]:
    """The click parameters of the command ``argv`` runs, and how many words name it (``proxy validate``: 2)."""
    import typer.main

    command, depth = typer.main.get_command(app), 0
    while hasattr(command, "commands"):
        command, depth = command.commands[argv[depth]], depth + 1
    return command.params, depth


def fuzzed(param) -> bool:
    """Whether ``param`` takes a value that is not a path (flags and paths are left out)."""
    return not getattr(param, "is_flag", False) and param.name not in PATHS


def variants(app, bases: dict[str, list[str]]):
    """``(label, argv)`` for every fuzzed option of every base command and every value."""
    for name, base in bases.items():
        params, depth = command_params(app, base)
        for param in filter(fuzzed, params):
            if name == "optimize --checkpoint" and param.opts[0] not in CALIBRATION + ["--verify-rounds", "--seed"]:
                continue  # the other options are fuzzed with --model
            for value in VALUES:
                if param.param_type_name == "argument":  # the positional value after the command words
                    argv = [*base[:depth], value, *base[depth + 1 :]]
                else:
                    flag = param.opts[0]
                    argv = [*base, flag, value]
                    if flag in base:
                        at = base.index(flag)
                        argv = [*base[:at], flag, value, *base[at + 2 :]]
                yield f"{name} {param.opts[0]}={value!r}", argv


def classify(runner, app, argv: list[str], timeout: int) -> tuple[str, str]:
    """How one command line ends, and its last line."""
    signal.alarm(timeout)
    try:
        result = runner.invoke(app, argv)  # it catches the alarm's Hang, as every exception of the command
    finally:
        signal.alarm(0)
    if isinstance(result.exception, Hang):
        return "hang", f"no answer within {timeout} s"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    last = (lines[-1] if lines else " ".join(result.stdout.split()))[-140:]
    if result.exit_code not in (0, 2) or (result.exception and not isinstance(result.exception, SystemExit)):
        return "deep", f"exit {result.exit_code}: {result.exception!r}"[:140]
    if result.exit_code == 2:
        return ("clear" if len(lines) == 1 and lines[0].startswith("error:") else "late"), last
    text = result.stdout.lower()
    return ("nan" if any(w in text for w in ("nan", "infinity")) else "ok"), last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write every run and its outcome here")
    parser.add_argument("--timeout", type=int, default=120, help="seconds before a run counts as a hang")
    parser.add_argument("--only", help="fuzz only the base commands whose name contains this")
    args = parser.parse_args()
    out = args.json.resolve() if args.json else None
    work = Path(tempfile.mkdtemp(prefix="cimjax-option-fuzz-"))
    os.environ.setdefault("CIMJAX_CACHE", str(work / "cache"))
    os.chdir(work)
    (work / "space.json").write_text(json.dumps(SPACE))
    from typer.testing import CliRunner

    from cimjax.cli.main import app

    runner = CliRunner()
    assert runner.invoke(app, ["proxy", "export", "--size", "tiny", "--out", "ckpt"]).exit_code == 0
    signal.signal(signal.SIGALRM, alarm)
    bases = {k: v for k, v in base_commands(work).items() if args.only is None or args.only in k}
    for name, argv in bases.items():  # a hostile value means something only against a base that runs
        outcome, message = classify(runner, app, argv, args.timeout)
        if outcome != "ok":
            raise SystemExit(f"base command {name!r} does not run ({outcome}): {message}")
    rows, start = [], time.perf_counter()
    for label, argv in variants(app, bases):
        began = time.perf_counter()
        outcome, message = classify(runner, app, argv, args.timeout)
        rows.append({"run": label, "outcome": outcome, "message": message, "s": round(time.perf_counter() - began, 1)})
        print(f"{outcome:5s} {rows[-1]['s']:6.1f}s {label:55s} {message}", flush=True)
    counts = collections.Counter(row["outcome"] for row in rows)
    kinds = ("clear", "ok", "late", "deep", "nan", "hang")
    print(f"\n{len(rows)} runs: " + ", ".join(f"{counts[k]} {k}" for k in kinds))
    print(f"({time.perf_counter() - start:.0f} s; scratch directory {work})")
    if out:
        out.write_text(json.dumps({"counts": dict(counts), "runs": rows}, indent=1))


if __name__ == "__main__":
    main()
