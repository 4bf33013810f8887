"""Where compilation time goes: trace, lower and XLA-compile each program a command needs, then run it.

Usage: python benchmarks/compile_time.py [--model llama3.2-1b] [--precision int4] [--out results/compile_time.json]

Programs (LLaMA3.2-1B INT4 by default, the paper's workload): ``evaluate`` (one design, decode and prefill,
as ``cimjax evaluate``), ``sweep-chunk`` (65,536 designs, decode, as the exhaustive sweep), ``exact-batch``
(128 designs, as gradient search's exact stage), ``descent`` (32 starts x 200 Adam steps on the relaxed
model's gradient, one ``lax.scan``) and ``joint-round`` (one round of ``cimjax optimize``'s default
descent: 16 starts x 50 Adam steps on the augmented Lagrangian, int8 budget, no area limit). For each:
wall and CPU seconds of tracing, lowering and compiling, the size of the lowered program (StableHLO
operations) and of the compiled executable (serialised bytes), and a run (median of 5), at XLA's default
optimisation level and at ``xla_backend_optimization_level=0`` (less LLVM work, slower code). Nothing is
read from or written to the on-disk caches. CPU seconds are this process's (all threads); wall seconds on
a shared machine are upper bounds, with the load average recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ["CIMJAX_NO_CACHE"] = "1"  # measure compilation, not the cache

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.experimental.serialize_executable import serialize  # noqa: E402

from cimjax import validation
from cimjax.cost.batched import compress_uniform, make_evaluator  # noqa: E402
from cimjax.files import output_file_argument
from cimjax.hardware.config import EDGECIM_ALPHA05_DESIGN, PAPER_SPACE, HardwareConfig  # noqa: E402
from cimjax.hardware.technology import default_technology  # noqa: E402
from cimjax.joint import descent as joint_descent  # noqa: E402
from cimjax.joint.problem import make_problem  # noqa: E402
from cimjax.joint.settings import JointSettings  # noqa: E402
from cimjax.search.exhaustive import DEFAULT_CHUNK  # noqa: E402
from cimjax.search.gradient import EXACT_BATCH, descent_program, search_box  # noqa: E402
from cimjax.search.symmetry import MirrorFolding  # noqa: E402
from cimjax.workload.models import resolve_model
from cimjax.workload.operators import Workload  # noqa: E402
from cimjax.workload.precision import resolve_precision  # noqa: E402

RUNS = 5
"""Timed runs after compiling (median reported)."""


def _clock():
    return time.perf_counter(), time.process_time()


def _since(start) -> dict:
    wall, cpu = _clock()
    return {"wall_s": wall - start[0], "cpu_s": cpu - start[1]}


def profile(program, args: tuple, options: dict) -> dict:
    """Trace, lower, compile (with XLA ``options``) and run ``program`` once on ``args``."""
    jitted = program._jitted
    start = _clock()
    traced = jitted.trace(*args)
    out = {"trace": _since(start)}
    start = _clock()
    lowered = traced.lower()
    out["lower"] = _since(start)
    out["stablehlo_ops"] = lowered.as_text().count("stablehlo.")
    start = _clock()
    compiled = lowered.compile(compiler_options=options)
    out["compile"] = _since(start)
    out["executable_bytes"] = len(serialize(compiled)[0])
    jax.block_until_ready(compiled(*args))  # the first run also loads the code
    runs = []
    for _ in range(RUNS):
        start = _clock()
        jax.block_until_ready(compiled(*args))
        runs.append(_since(start))
    out["run"] = {key: statistics.median(r[key] for r in runs) for key in ("wall_s", "cpu_s")}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="llama3.2-1b")
    parser.add_argument("--precision", default="int4")
    parser.add_argument("--programs", default=None, help="comma-separated subset of the programs (default: all)")
    parser.add_argument("--out", type=output_file_argument, default=Path("results/compile_time.json"))
    args = parser.parse_args()

    spec = resolve_model(args.model)
    prec = compress_uniform(resolve_precision(args.precision, spec))
    workload, tech = Workload(), default_technology()
    hw = HardwareConfig.from_dict(EDGECIM_ALPHA05_DESIGN)
    steps, starts = 200, 32
    temperatures = jnp.asarray(np.geomspace(1.0, 1e-3, steps), jnp.float32)
    programs = {
        "evaluate": (
            make_evaluator(spec, workload, designs="design", full=True),
            (hw, resolve_precision(args.precision, spec), tech),
        ),
        "sweep-chunk": (
            make_evaluator(spec, workload, MirrorFolding(PAPER_SPACE), "range", size=DEFAULT_CHUNK),
            (jnp.asarray(0), prec, tech),
        ),
        "exact-batch": (
            make_evaluator(spec, workload, PAPER_SPACE, "choice"),
            (np.zeros((EXACT_BATCH, 9), np.int32), prec, tech),
        ),
        "descent": (
            descent_program(spec, workload, 0.1),
            (jnp.zeros((starts, 9)), jnp.float32(0.5), temperatures, prec, tech, search_box(PAPER_SPACE)),
        ),
    }
    problem, settings = make_problem(spec, "int8"), JointSettings()
    programs["joint-round"] = (
        joint_descent._make_round(
            spec, problem.workload, problem.space, settings.learning_rate, settings.penalty_growth
        ),
        (
            joint_descent.make_descent(problem, settings).init(0),
            jnp.ones((settings.steps_per_round,), jnp.float32),
            joint_descent._problem_data(problem),
        ),
    )
    if args.programs is not None:
        wanted = validation.names("--programs", args.programs, programs)
        programs = {name: programs[name] for name in wanted}
    report = {"model": spec.id, "precision": args.precision, "jax": jax.__version__, "programs": {}}
    for name, (program, program_args) in programs.items():
        for level, options in (("default", {}), ("O0", {"xla_backend_optimization_level": 0})):
            load = os.getloadavg()[0]
            result = profile(program, program_args, options) | {"load_1min": load}
            report["programs"].setdefault(name, {})[level] = result
            trace, lower = result["trace"]["wall_s"], result["lower"]["wall_s"]
            print(
                f"{name:12s} {level:8s} trace {trace:6.2f} s  lower {lower:5.2f} s"
                f"  compile {result['compile']['wall_s']:6.2f} s (cpu {result['compile']['cpu_s']:6.2f})"
                f"  run {result['run']['wall_s']:7.3f} s  ops {result['stablehlo_ops']:5d}"
                f"  exe {result['executable_bytes'] / 1e6:5.2f} MB  load {load:.1f}",
                flush=True,
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    validation.run_script(main)
