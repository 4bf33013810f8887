"""Where a test run's compile time goes: a pytest plugin that logs every JAX compilation per test.

Usage (a cold run: an empty ``CIMJAX_CACHE``)::

    PYTHONPATH=$PWD COMPILE_LOG=results/compile_log \
        pytest -q -n 2 --dist loadfile -p benchmarks.compile_log tests
    python benchmarks/compile_log.py results/compile_log      # the summary

(Not ``-p compile_log`` with ``benchmarks/`` on ``PYTHONPATH``: ``benchmarks/tornado.py`` would shadow the
``tornado`` package the notebook test needs.)

Each process (xdist worker) writes ``<COMPILE_LOG>/<worker>.jsonl``: one line per test (setup, call and
teardown together, so a module fixture's compilations count under the test that first needs it) with its
wall and CPU seconds and, for every program JAX built, its name and the seconds of tracing, lowering to
StableHLO and XLA compilation (JAX's own monitoring events; XLA's includes reading a program back from
the disk cache, which on a cold run is rare; its CPU seconds are the process's, so they overlap when
several threads compile at once). The summary lists per test file and per program name the
count and seconds of each stage.
"""

from __future__ import annotations

import collections
import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest

STAGES = {
    "/jax/core/compile/jaxpr_trace_duration": "trace",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
    "/jax/core/compile/backend_compile_duration": "compile",
}

_events: list = []
_started: dict = {}


def _start(event: str, value: float, **kwargs) -> None:
    """JAX records a stage's start as a scalar event: note this process's CPU clock."""
    if event in STAGES:
        _started[event, threading.get_ident()] = time.process_time()


def _listener(event: str, duration: float, **kwargs) -> None:
    stage = STAGES.get(event)
    if stage:
        cpu = time.process_time() - _started.pop((event, threading.get_ident()), time.process_time())
        _events.append((stage, str(kwargs.get("fun_name", "?")), duration, cpu))


def pytest_configure(config):
    import jax.monitoring

    jax.monitoring.register_scalar_listener(_start)
    jax.monitoring.register_event_duration_secs_listener(_listener)


def _out_file() -> Path:
    root = Path(os.environ.get("COMPILE_LOG", "results/compile_log"))
    root.mkdir(parents=True, exist_ok=True)
    return root / f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.jsonl"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Notes the clocks, runs the test (setup, call, teardown), then writes its line."""
    _events.clear()
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    line = {
        "test": item.nodeid,
        "wall_s": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
        "programs": list(_events),
    }
    with _out_file().open("a") as f:
        f.write(json.dumps(line) + "\n")
    _events.clear()


def summary(root: Path, top: int = 15) -> None:
    """Prints per test file and per program: tests' wall/CPU seconds, compile counts and seconds by stage."""
    files = collections.defaultdict(lambda: collections.Counter())
    programs = collections.defaultdict(lambda: collections.Counter())
    for path in sorted(root.glob("*.jsonl")):
        for raw in path.read_text().splitlines():
            line = json.loads(raw)
            f = files[line["test"].split("::")[0]]
            f["wall_s"] += line["wall_s"]
            f["cpu_s"] += line["cpu_s"]
            for stage, name, seconds, *cpu in line["programs"]:
                f[stage] += seconds
                f[stage + "_cpu"] += cpu[0] if cpu else 0.0
                f[stage + "_n"] += stage == "compile"
                programs[name][stage] += seconds
                programs[name][stage + "_cpu"] += cpu[0] if cpu else 0.0
                programs[name]["n"] += stage == "compile"
    total = sum(files.values(), collections.Counter())
    print(
        f"all: {total['wall_s']:.0f} s wall, {total['cpu_s']:.0f} s CPU in tests; {total['compile_n']} XLA "
        f"compilations {total['compile']:.0f} s wall ({total['compile_cpu']:.0f} s CPU), tracing "
        f"{total['trace']:.0f} s ({total['trace_cpu']:.0f}), lowering {total['lower']:.0f} s ({total['lower_cpu']:.0f})"
    )
    print("\nwall and CPU seconds (CPU: this process's, all threads)")
    print(f"{'test file':36s} {'wall':>6s} {'cpu':>6s} {'#comp':>5s} {'compile':>7s} {'c.cpu':>6s} {'tr+lo cpu':>9s}")
    for name, f in sorted(files.items(), key=lambda kv: -kv[1]["cpu_s"])[:top]:
        print(
            f"{name:36s} {f['wall_s']:6.1f} {f['cpu_s']:6.1f} {f['compile_n']:5d} {f['compile']:7.1f}"
            f" {f['compile_cpu']:6.1f} {f['trace_cpu'] + f['lower_cpu']:9.1f}"
        )
    print(f"\n{'program':48s} {'#':>5s} {'compile':>7s} {'c.cpu':>6s} {'lower cpu':>9s}")
    for name, p in sorted(programs.items(), key=lambda kv: -kv[1]["compile_cpu"] - kv[1]["compile"] / 1e3)[:top]:
        print(f"{name[:48]:48s} {p['n']:5d} {p['compile']:7.1f} {p['compile_cpu']:6.1f} {p['lower_cpu']:9.1f}")


if __name__ == "__main__":
    summary(Path(sys.argv[1] if len(sys.argv) > 1 else "results/compile_log"))
