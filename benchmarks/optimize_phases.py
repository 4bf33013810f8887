"""Where a warm ``cimjax optimize`` spends its time, phase by phase and thread by thread.

Usage: python benchmarks/optimize_phases.py [--model llama3.2-1b] [--budget int8]

Runs ``cimjax optimize --model M --budget B --json`` in this process (run it twice: the first run fills
the on-disk compilation cache, ``$CIMJAX_CACHE``) with the phases of :mod:`cimjax.joint` wrapped, and
prints for each phase call its thread, wall seconds, the CPU seconds of its own thread
(``time.thread_time``: Python and the C code run in that thread, e.g. HiGHS) and of the whole process
(``os.times``, XLA's threads included; overlapping phases share it). On a shared machine wall times are
upper bounds; the CPU seconds show what each part costs and which parts can overlap.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


ROWS: list[tuple[str, str, float, float, float]] = []


def _timed(module, name: str) -> None:
    function = getattr(module, name)

    def timed(*args, **kwargs):
        wall, own, process = time.perf_counter(), time.thread_time(), _cpu()
        try:
            return function(*args, **kwargs)
        finally:
            ROWS.append((
                name, threading.current_thread().name, time.perf_counter() - wall, time.thread_time() - own,
                _cpu() - process,
            ))  # fmt: skip

    setattr(module, name, timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="llama3.2-1b")
    parser.add_argument("--budget", default="int8")
    args = parser.parse_args()
    start, start_own, start_cpu = time.perf_counter(), time.thread_time(), _cpu()
    import cimjax.joint.allocation as allocation
    import cimjax.joint.compare as compare
    import cimjax.joint.discrete as discrete
    import cimjax.joint.optimizer as optimizer
    import cimjax.joint.runner as runner
    from cimjax.cli.main import app

    own, process = time.thread_time() - start_own, _cpu() - start_cpu
    ROWS.append(("imports", "MainThread", time.perf_counter() - start, own, process))
    for module, name in [
        (runner, "uniform_baseline"), (optimizer, "_descend"), (optimizer, "discrete_starts"),
        (allocation, "allocate_bits"), (discrete, "allocate"), (discrete, "polish"), (compare, "_pick_hardware"),
    ]:  # fmt: skip
        _timed(module, name)
    stdout = sys.stdout
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (the report itself is not the point)
    try:
        app(["optimize", "--model", args.model, "--budget", args.budget, "--json"])
    except SystemExit as exited:  # the command's one-line error is on stderr; a failed run has no phases to show
        if exited.code:
            raise
    finally:
        sys.stdout.close()
        sys.stdout = stdout
    own, process = time.thread_time() - start_own, _cpu() - start_cpu
    ROWS.append(("whole run", "MainThread", time.perf_counter() - start, own, process))
    print(f"{'phase':18s} {'thread':26s} {'wall s':>7s} {'own CPU s':>9s} {'process CPU s':>13s}")
    for name, thread, wall, own, process in ROWS:
        print(f"{name:18s} {thread:26s} {wall:7.2f} {own:9.2f} {process:13.2f}")


if __name__ == "__main__":
    main()
