"""Fuzz of the keyword arguments of the Python entry points: ``cimjax.search`` and ``cimjax.optimize_report``, the
calls a notebook makes (``--entry notebook``, the default); ``cimjax.evaluate_design`` (``--entry evaluate``);
``cimjax.joint.verified.optimize_measured`` and the ``Calibration`` of ``cimjax.quant.measured.for_checkpoint``
on a tiny trained checkpoint (``--entry checkpoint``).

Each argument is set in turn to each of eight hostile values (``None``, a string, -1, 1e30, NaN, ``True``, a
dict, an ``np.float32``) on a small workload, and each call is classified: ``clear`` (a ValueError or
TypeError raised by cimjax itself), ``deep`` (an exception from inside JAX or NumPy, or an AttributeError,
KeyError, IndexError or OverflowError anywhere), ``nan`` (a result holding NaN or infinity), ``hang`` (no
answer within ``--timeout`` seconds) or ``ok`` (a finite result). docs/benchmarks.md, "Hostile input", gives
the figures before and after the entry points checked their arguments.

    python benchmarks/keyword_fuzz.py --json out.json
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import time
import traceback
from pathlib import Path

import numpy as np

MODEL = "qwen2.5-0.5b"
VALUES = [None, "x", -1, 1e30, float("nan"), True, {}, np.float32(0.5)]


class Hang(Exception):
    """A call that gave no answer within its time limit."""


def alarm(*_):
    """The SIGALRM handler: ends the call in progress with :class:`Hang`."""
    raise Hang


def classify(call, timeout: int) -> tuple[str, str]:
    """How one call ends, and the first line of its message or result."""
    signal.alarm(timeout)
    try:
        result = call()
    except Hang:
        return "hang", f"no answer within {timeout} s"
    except Exception as e:  # noqa: BLE001 - every way a call can end is counted
        where = traceback.extract_tb(e.__traceback__)[-1].filename
        inside = "cimjax" in where and not isinstance(e, AttributeError | KeyError | IndexError | OverflowError)
        return ("clear" if inside else "deep"), f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
    finally:
        signal.alarm(0)
    text = json.dumps(result, default=str)
    return ("nan" if "NaN" in text or "Infinity" in text else "ok"), text[:80]


def calls(entry: str = "notebook"):
    """``(label, call)`` for every argument and hostile value of the ``entry`` points."""
    if entry == "evaluate":
        yield from evaluate_calls()
        return
    if entry == "checkpoint":
        yield from checkpoint_calls()
        return
    import cimjax

    small = cimjax.Workload(prefill=16, generate=16)
    ga = {"workload": small, "pop_size": 8, "n_gen": 2}
    searches = {
        "alpha": lambda v: cimjax.search(MODEL, "int8", v, "ga", **ga),
        "method": lambda v: cimjax.search(MODEL, "int8", 0.5, v, workload=small),
        "gradient steps": lambda v: cimjax.search(MODEL, "int8", 0.5, "gradient", workload=small, steps=v, starts=2),
        "gradient starts": lambda v: cimjax.search(MODEL, "int8", 0.5, "gradient", workload=small, starts=v, steps=5),
    }
    for name in ("area_max", "tolerance", "seed", "pop_size", "n_gen", "workload", "tech", "space"):
        searches[name] = lambda v, name=name: cimjax.search(MODEL, "int8", 0.5, "ga", **ga | {name: v})
    optimizations = {
        "budget": lambda v: cimjax.optimize_report(MODEL, v, workload=small, method="sequential"),
        "method": lambda v: cimjax.optimize_report(MODEL, "int8", workload=small, method=v),
    }
    for name in ("alpha", "area_max", "seed", "tolerance", "workload", "tech", "proxy", "settings", "checkpoint_dir"):
        optimizations[name] = lambda v, name=name: cimjax.optimize_report(
            MODEL, "int8", method="sequential", **{"workload": small} | {name: v}
        )
    for value in VALUES:
        for name, call in searches.items():
            yield f"search {name}={value!r}", lambda call=call, value=value: call(value)
        for name, call in optimizations.items():
            yield f"optimize_report {name}={value!r}", lambda call=call, value=value: call(value)


def evaluate_calls():
    """``cimjax.evaluate_design``: the precision, the whole config, one of its fields, the workload, the technology."""
    import cimjax

    small = cimjax.Workload(prefill=16, generate=16)
    arguments = {
        "precision": lambda v: cimjax.evaluate_design(MODEL, v, {}, small),
        "config": lambda v: cimjax.evaluate_design(MODEL, "int8", v, small),
        "config c_v": lambda v: cimjax.evaluate_design(MODEL, "int8", {"c_v": v}, small),
        "workload": lambda v: cimjax.evaluate_design(MODEL, "int8", {}, v),
        "tech": lambda v: cimjax.evaluate_design(MODEL, "int8", {}, small, v),
    }
    for value in VALUES:
        for name, call in arguments.items():
            yield f"evaluate_design {name}={value!r}", lambda call=call, value=value: call(value)


def checkpoint_calls():
    """``for_checkpoint``'s, ``load_checkpoint``'s and ``save_checkpoint``'s arguments (in a scratch working
    directory), ``optimize_measured`` on a tiny trained checkpoint's measurement, and each field of the
    ``Calibration`` that :func:`cimjax.quant.measured.for_checkpoint` measures with."""
    import tempfile

    from cimjax.joint.settings import JointSettings
    from cimjax.joint.verified import optimize_measured
    from cimjax.lm import load_checkpoint, save_checkpoint
    from cimjax.quant.measured import Calibration, checkpoint_scheme, for_checkpoint
    from cimjax.quant.train import TINY, train

    trained = train(TINY)
    directory = Path(tempfile.mkdtemp(prefix="cimjax-keyword-fuzz-"))
    save_checkpoint(trained.model, directory)
    small = {"windows": 2, "seq_len": 32, "samples": 1, "check_windows": 4}
    scheme = checkpoint_scheme(False)
    measured = for_checkpoint(directory, Calibration(**small), scheme=scheme)
    fast = {"settings": JointSettings(starts=2, rounds=2), "target": "kl"}

    def optimized(name, v):
        kwargs = fast | {name: v} | ({"model": trained.model} if name in ("verify", "max_rounds", "refine") else {})
        if name in ("max_rounds", "refine"):
            kwargs.setdefault("verify", True)
        return optimize_measured(measured, kwargs.pop("budget", "int4"), **kwargs)

    names = ("budget", "target", "verify", "max_rounds", "refine", "evolve", "proxy", "pairs", "log", "seed",
             "alpha", "area_max", "tolerance", "method", "settings")  # fmt: skip
    fields = ("windows", "seq_len", "samples", "seed", "check_windows", "gptq_windows", "sensitivity_split")
    checkpoints = {
        "for_checkpoint directory": lambda v: for_checkpoint(v, Calibration(**small), scheme=scheme),
        "load_checkpoint directory": load_checkpoint,
        "save_checkpoint model": lambda v: save_checkpoint(v, "saved"),
        "save_checkpoint directory": lambda v: save_checkpoint(trained.model, v),
    }
    for name in ("calibration", "scheme", "n_fit", "log", "progress"):
        checkpoints[f"for_checkpoint {name}"] = lambda v, name=name: for_checkpoint(
            directory, **{"calibration": Calibration(**small), "scheme": scheme} | {name: v}
        ).report(directory)
    os.chdir(tempfile.mkdtemp(prefix="cimjax-keyword-fuzz-cwd-"))  # "x" is a valid directory to save into
    for value in VALUES:
        for name, call in checkpoints.items():
            yield f"{name}={value!r}", lambda call=call, value=value: call(value)
    for value in VALUES:
        for name in names:
            yield f"optimize_measured {name}={value!r}", lambda name=name, value=value: optimized(name, value)
        for name in fields:
            yield (
                f"for_checkpoint Calibration {name}={value!r}",
                lambda name=name, value=value: for_checkpoint(
                    directory, Calibration(**small | {name: value}), scheme=scheme
                ).report(directory),
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write every call and its outcome here")
    parser.add_argument("--timeout", type=int, default=120, help="seconds before a call counts as a hang")
    parser.add_argument("--entry", choices=("notebook", "evaluate", "checkpoint"), default="notebook")
    args = parser.parse_args()
    signal.signal(signal.SIGALRM, alarm)
    rows, start = [], time.perf_counter()
    for label, call in calls(args.entry):
        outcome, message = classify(call, args.timeout)
        rows.append({"call": label, "outcome": outcome, "message": message})
        print(f"{outcome:6s} {label:50s} {message}", flush=True)
    counts = collections.Counter(row["outcome"] for row in rows)
    print(f"\n{len(rows)} calls: " + ", ".join(f"{counts[k]} {k}" for k in ("clear", "ok", "deep", "nan", "hang")))
    print(f"({time.perf_counter() - start:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({"counts": dict(counts), "calls": rows}, indent=1))


if __name__ == "__main__":
    main()
