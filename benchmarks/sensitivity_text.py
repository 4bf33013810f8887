"""Two optimizer proxies judged on the same frontier assignments: those of the two calibration texts (docs/proxy.md,
"Sensitivities on text the model was not trained on"), the two driving variants (docs/proxy.md, "Pairwise
driving the optimiser") or the fit set with and without the optimiser's own assignments (docs/proxy.md, "Fitting
where the optimiser goes").

A frontier run (``cimjax proxy validate --protocol frontier``) judges each proxy on the assignments the
optimiser returned *with that proxy*, so two runs differ both in the proxy and in the assignments. This
separates the two. ``--compare text``: for ``--sensitivity-text train`` and ``check`` it measures the checkpoint
as the frontier protocol does (from the cache when measured) and fits the optimizer proxy. ``--compare proxy``:
on the ``train`` measurement it fits ``interaction`` and ``pairwise`` (with the checkpoint's measured ``--pairs``,
default ``layer``, as ``--optimizer-proxy pairwise --pairs P`` does). ``--compare frontier-fit``: on the ``train``
measurement it fits ``interaction`` on the checkpoint's fit set (``random``) and on that fit set plus the
optimiser's own assignments at the measured INT7 and INT5 budgets (``frontier-fit``: :func:`frontier_fit`).
Either way it regenerates each run's 24 frontier assignments (the same optimiser settings and seeds,
bit-identical), measures all 48 on the same held-out windows (every validation window after the check windows, or
``--held-out-windows N`` as ``proxy validate`` takes it: past the validation split into the docstrings),
and prints each proxy's Kendall tau, its tau over the pairs the measurement resolves and measured / predicted range
on its own assignments, on the other's, and on all 48.

    python benchmarks/sensitivity_text.py --size benchmark|subword --target kl|loss [--seed S] [--out FILE]
        [--compare text|proxy|frontier-fit] [--pairs block|layer|all] [--held-out-windows N]

``--seed`` is ``proxy validate``'s: it draws the sensitivity windows (of either split), the fit set and the
neighbours (the optimiser's seeds stay 0 and 1).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import NamedTuple

import numpy as np
from scipy import stats

from cimjax import validation
from cimjax.cli.proxy import MAX_HELD_OUT
from cimjax.files import output_file_argument
from cimjax.joint.problem import proxy_values
from cimjax.quant.calibration import SENSITIVITY_SPLITS
from cimjax.quant.measured import TARGETS, Measured, loss_and_kl
from cimjax.quant.paired import paired
from cimjax.quant.pairs import CHECKPOINT_PAIR_SET, PAIR_SETS, of_checkpoint
from cimjax.quant.proxy import OPTIMIZER_VARIANTS, optimizer_proxy
from cimjax.quant.train import train
from cimjax.report.proxy_frontier import (
    FRONTIER_SIZES,
    frontier_tables,
    held_out_windows,
    measured_checkpoint,
    reliability,
)
from cimjax.report.proxy_validation import SIZES


class Predicted(NamedTuple):
    """A proxy's predictions, as :func:`reliability` reads a judged variant."""

    name: str
    predicted: np.ndarray


FIT_WIDTHS = (7, 5)
"""Budgets of the frontier fit: the measured KL of uniform INT7 and INT5, between the judged INT8/INT6/INT4."""


def frontier_fit(m: Measured, model, target: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The fit set plus 16 assignments where the optimiser goes: the optimiser (``interaction`` fitted on the KL
    of the fit set) at :data:`FIT_WIDTHS` and seeds 0, 1, each with 3 one-step neighbours, measured on the check
    windows (the fit set's); returns all tables and their measured ``target``."""
    drive = optimizer_proxy(m.sens, m.joint_tables, m.joint("kl"), "kl")
    # neighbours from another random stream than the judged frontier's (which uses ``seed``)
    tables, _ = frontier_tables(m, drive, "kl", FIT_WIDTHS, (0, 1), 3, seed + 100, None, print)
    loss, kl, _ = loss_and_kl(model, m.calibration.check_tokens(), tables, m.scheme)
    new = {"loss": loss, "kl": kl}[target]
    return np.concatenate([m.joint_tables, tables]), np.concatenate([m.joint(target), new])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=("benchmark", "subword"), default="benchmark")
    parser.add_argument("--target", choices=TARGETS, default="kl")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=output_file_argument, default=None)
    parser.add_argument("--compare", choices=("text", "proxy", "frontier-fit"), default="text")
    parser.add_argument("--pairs", choices=PAIR_SETS, default=CHECKPOINT_PAIR_SET)
    parser.add_argument("--held-out-windows", type=int, default=None)
    args = parser.parse_args()
    validation.seed("--seed", args.seed)
    if args.held_out_windows is not None:
        validation.integer("--held-out-windows", args.held_out_windows, 1, MAX_HELD_OUT)
    start, cpu = time.perf_counter(), time.process_time()
    config, sizes = SIZES[args.size]
    trained = train(config)

    def checkpoint(split: str):
        check_windows = FRONTIER_SIZES[args.size]["check_windows"]
        return measured_checkpoint(
            trained, sizes["n_calib"], sizes["n_samples"], args.seed, check_windows, split, print
        )

    measured = {split: checkpoint(split) for split in (SENSITIVITY_SPLITS if args.compare == "text" else ("train",))}
    m = measured["train"]  # the model and quantiser are the same for both (GPTQ's windows do not change)
    model = m.model(trained.model)
    if args.compare == "text":
        proxies = {s: optimizer_proxy(x.sens, x.joint_tables, x.joint(args.target), args.target) for s, x in
                   measured.items()}  # fmt: skip
    elif args.compare == "frontier-fit":
        tables, values = frontier_fit(m, model, args.target, args.seed)
        proxies = {"random": optimizer_proxy(m.sens, m.joint_tables, m.joint(args.target), args.target),
                   "frontier-fit": optimizer_proxy(m.sens, tables, values, args.target)}  # fmt: skip
    else:
        pairs = of_checkpoint(model, m, args.pairs).coefficients()
        proxies = {v: optimizer_proxy(m.sens, m.joint_tables, m.joint(args.target), args.target, v, pairs)
                   for v in OPTIMIZER_VARIANTS}  # fmt: skip
    runs = {name: frontier_tables(measured.get(name, m), proxy, args.target, (8, 6, 4), (0, 1), 3, args.seed, None,
                                  print) for name, proxy in proxies.items()}  # fmt: skip
    held_out, _ = held_out_windows(m.calibration, config.val_fraction, args.held_out_windows)
    every = np.concatenate([tables for tables, _ in runs.values()])
    budgets = np.array([x["budget"] for _, labels in runs.values() for x in labels])
    measurement = paired(model, held_out, every, m.scheme)
    values, per_window = measurement.of(args.target)[0], measurement.windows_of(args.target)
    (first, second), n = list(proxies), len(every) // 2
    rows = {}
    for name, proxy in proxies.items():
        predicted = proxy_values(proxy, every)  # the optimiser's own pricing of each table
        for on, part in ((first, slice(0, n)), (second, slice(n, None)), ("both", slice(None))):
            ratio = values[part] / predicted[part]
            resolved = reliability(per_window[part], list(budgets[part]), [Predicted(name, predicted[part])])
            rows[f"{name} proxy on {on} assignments"] = {
                "kendall_tau": float(stats.kendalltau(predicted[part], values[part]).statistic),
                "spearman": float(stats.spearmanr(predicted[part], values[part]).statistic),
                "ratio_min": float(ratio.min()),
                "ratio_max": float(ratio.max()),
                "within_band": int(np.sum((ratio >= 0.67) & (ratio <= 1.5))),
                "resolved_pairs": resolved["resolved_pairs"],
                "resolved_pair_tau": resolved["variants"][name]["resolved_pair_tau"],
                "n": int(len(ratio)),
            }
    for label, r in rows.items():
        print(f"{label}: tau {r['kendall_tau']:.3f} rho {r['spearman']:.3f} ratio {r['ratio_min']:.2f}-"
              f"{r['ratio_max']:.2f} in band {r['within_band']}/{r['n']}; resolved pairs {r['resolved_pairs']:.0%}, "
              f"tau over them {r['resolved_pair_tau']:.3f}")  # fmt: skip
    print(f"{len(held_out)} held-out windows; wall {time.perf_counter() - start:.0f} s, "
          f"CPU {time.process_time() - cpu:.0f} s")  # fmt: skip
    if args.out is not None:
        payload = {"size": args.size, "target": args.target, "seed": args.seed, "compare": args.compare, "rows": rows}
        payload |= {"held_out_windows": len(held_out)}
        payload |= {"pairs": args.pairs if args.compare == "proxy" else None, "measured": values.tolist()}
        args.out.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    validation.run_script(main)
