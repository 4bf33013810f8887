"""Fuzz of the keyword arguments of ``cimjax.search`` and ``cimjax.optimize_report``, the calls a notebook makes.

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


def calls():
    """``(label, call)`` for every argument and hostile value."""
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write every call and its outcome here")
    parser.add_argument("--timeout", type=int, default=120, help="seconds before a call counts as a hang")
    args = parser.parse_args()
    signal.signal(signal.SIGALRM, alarm)
    rows, start = [], time.perf_counter()
    for label, call in calls():
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
