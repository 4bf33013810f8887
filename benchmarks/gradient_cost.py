"""Cost of a gradient of the relaxed model against a forward evaluation of the exact model (issue 3).

Both are jitted and vmapped over the same batch of random valid designs: the forward pass is the exact
model's latency and energy; the gradient is ``value_and_grad`` of the relaxed log objective
``alpha log L + (1 - alpha) log E`` with respect to all nine hardware leaves. The relaxed forward pass is
timed too, to separate the cost of the relaxation from the cost of differentiation. Compile time is
measured apart from run time; run times are the median of several repeats. Goal: ratio <= 3.

    .venv/bin/python benchmarks/gradient_cost.py [--model ID] [--precision P] [--batch N] [--repeats R]

Prints a table and writes ``results/gradient_cost.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from cimjax.cost.batched import compress_uniform
from cimjax.cost.model import evaluate
from cimjax.cost.relaxed import relaxed_ops
from cimjax.files import output_file_argument
from cimjax.hardware.config import PAPER_SPACE
from cimjax.hardware.technology import default_technology
from cimjax.search.pareto import log_alpha_objective
from cimjax.validation import run_script
from cimjax.workload.models import get_model
from cimjax.workload.operators import Workload
from cimjax.workload.precision import preset

ALPHA = 0.5
TEMPERATURE = 0.05


def _compile(fn, args) -> tuple:
    """(compiled function, compile seconds)."""
    start = time.perf_counter()
    compiled = fn.lower(*args).compile()
    return compiled, time.perf_counter() - start


def _interleaved_runs(cases: dict, repeats: int) -> dict[str, list[float]]:
    """Run seconds of each compiled case, the cases interleaved in every repeat so that load from other
    processes affects them alike."""
    for compiled, args in cases.values():
        jax.block_until_ready(compiled(*args))  # warm-up
    runs = {name: [] for name in cases}
    for _ in range(repeats):
        for name, (compiled, args) in cases.items():
            start = time.perf_counter()
            jax.block_until_ready(compiled(*args))
            runs[name].append(time.perf_counter() - start)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="llama3.2-3b")
    parser.add_argument("--precision", default="int8")
    parser.add_argument("--batch", type=int, default=16384, help="designs per call")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=output_file_argument, default="results/gradient_cost.json")
    args = parser.parse_args()
    if args.batch < 1 or args.repeats < 1:
        raise ValueError(f"--batch = {args.batch} and --repeats = {args.repeats} must both be >= 1")

    spec, workload, tech = get_model(args.model), Workload(), default_technology()
    prec = compress_uniform(preset(args.precision, spec.n_layers))
    index = np.random.default_rng(0).integers(0, PAPER_SPACE.size, args.batch)
    hw = jax.block_until_ready(PAPER_SPACE.decode(jnp.asarray(index)))

    def exact(h):
        costs = evaluate(h, prec, spec, workload, tech, with_prefill=False)
        return costs.latency_s, costs.energy_j

    def relaxed_objective(h, tau):
        costs = evaluate(h, prec, spec, workload, tech, relaxed_ops(tau), with_prefill=False)
        return log_alpha_objective(costs.latency_s, costs.energy_j, ALPHA)

    tau = jnp.float32(TEMPERATURE)
    cases = {
        "exact_forward": (jax.jit(jax.vmap(exact)), (hw,)),
        "relaxed_forward": (jax.jit(jax.vmap(relaxed_objective, in_axes=(0, None))), (hw, tau)),
        "relaxed_value_and_grad": (
            jax.jit(jax.vmap(jax.value_and_grad(relaxed_objective), in_axes=(0, None))),
            (hw, tau),
        ),
    }
    compiled = {name: _compile(fn, call_args) for name, (fn, call_args) in cases.items()}
    runs = _interleaved_runs({name: (compiled[name][0], cases[name][1]) for name in cases}, args.repeats)
    median = {name: statistics.median(r) for name, r in runs.items()}
    ratios = [g / f for g, f in zip(runs["relaxed_value_and_grad"], runs["exact_forward"], strict=True)]
    result = {
        "model": spec.id,
        "precision": args.precision,
        "batch": args.batch,
        "repeats": args.repeats,
        "alpha": ALPHA,
        "temperature": TEMPERATURE,
        "device": str(jax.devices()[0]),
        "platform": platform.platform(),
        "compile_s": {name: c[1] for name, c in compiled.items()},
        "run_s_median": median,
        "run_s_min": {name: min(r) for name, r in runs.items()},
        "us_per_design": {name: 1e6 * t / args.batch for name, t in median.items()},
        "gradient_over_exact_forward": median["relaxed_value_and_grad"] / median["exact_forward"],
        "gradient_over_exact_forward_per_repeat_median": statistics.median(ratios),
        "gradient_over_relaxed_forward": median["relaxed_value_and_grad"] / median["relaxed_forward"],
        "goal_ratio_at_most": 3.0,
    }
    print(f"{spec.id} {args.precision}, {args.batch} designs per call, median of {args.repeats}, {result['device']}")
    print(f"{'':24s} {'compile s':>10s} {'run ms':>10s} {'us/design':>10s}")
    for name in cases:
        run_s = median[name]
        print(f"{name:24s} {compiled[name][1]:10.2f} {1e3 * run_s:10.2f} {1e6 * run_s / args.batch:10.3f}")
    print(f"gradient / exact forward:   {result['gradient_over_exact_forward']:.2f} (goal <= 3)")
    print(f"gradient / relaxed forward: {result['gradient_over_relaxed_forward']:.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    run_script(main)
