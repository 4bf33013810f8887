"""Benchmark-sized validation of the accuracy proxy against a byte-level LM trained from scratch.

Trains (or loads from ``$CIMJAX_CACHE``) the 4-layer model of ``TrainConfig()``, estimates its
sensitivities, measures the real loss increase of random mixed-precision assignments (weights,
activations, KV cache; 2-8 bits) and reports Kendall tau / Spearman rho and measured/predicted ratios
of every proxy variant on held-out assignments; with ``--frontier`` also on the assignments the joint
optimiser returns (``cimjax proxy validate --protocol frontier``). Writes ``validation_<set>.json`` and
``proxy_scatter_<set>.png`` (set: layer, tensor, frontier).

    python benchmarks/proxy_validation.py --out results/proxy [--configs 60] [--seed 0] [--frontier] [--target kl]

With ``--target kl`` the measured and predicted quantity is the KL divergence from full precision (files
``validation_<set>_kl.json``). ``--spread`` only measures how much the paired loss increase and KL of uniform
INT8/INT6/INT4 vary from window to window, on the validation split and on the standard library's docstrings,
and how many windows a standard error of 10 % of the mean needs, counting windows as independent
(``spread.json``; ``standard_error`` is by batch means, ``standard_error_independent`` is not).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from cimjax import validation
from cimjax.cli.proxy import MAX_CONFIGS
from cimjax.files import output_dir_argument
from cimjax.quant import corpus
from cimjax.quant.measured import TARGETS
from cimjax.quant.paired import paired, standard_error
from cimjax.quant.train import train
from cimjax.report.proxy_frontier import FRONTIER_SIZES, validate_frontier
from cimjax.report.proxy_validation import GRANULARITIES, SIZES, scatter_plot, validate
from cimjax.workload.precision import N_POINTS


def spread(trained, widths=(8, 6, 4), max_windows: int = 1000) -> dict:
    """Per-window spread of the paired loss increase and KL of uniform W=A=KV at ``widths`` on the whole
    validation split and on up to ``max_windows`` evenly spaced docstring windows, and the windows a
    standard error of 10 % of the mean needs."""
    seq_len, n_layers = trained.config.seq_len, trained.model.spec.n_layers
    docs = np.frombuffer(corpus.docstrings().encode("utf-8"), np.uint8).astype(np.int32)
    doc_windows = corpus.windows(docs, seq_len)
    texts = {
        "validation": corpus.windows(corpus.split(trained.config.val_fraction)[1], seq_len),
        "docstrings": doc_windows[:: max(1, len(doc_windows) // max_windows)][:max_windows],
    }
    tables = np.stack([np.full((n_layers, N_POINTS), float(b), np.float32) for b in widths])
    out = {}
    for name, windows in texts.items():
        measured = paired(trained.model, windows, tables)
        loss, kl = measured.loss_windows, measured.kl_windows
        rows = {}
        for b, dl, div in zip(widths, loss, kl, strict=True):
            rows[f"int{b}"] = {
                key: {
                    "mean": float(x.mean()),
                    "sd_per_window": float(x.std(ddof=1)),
                    "standard_error": float(standard_error(x)),  # batch means
                    "standard_error_independent": float(x.std(ddof=1) / np.sqrt(len(x))),
                    "windows_for_10pct": int(np.ceil((x.std(ddof=1) / (0.1 * abs(x.mean()))) ** 2)),
                }
                for key, x in (("loss", dl), ("kl", div))
            }
        out[name] = {"windows": len(windows), "base_loss": measured.base, "uniform": rows}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=output_dir_argument, default=Path("results/proxy"))
    parser.add_argument("--configs", type=int, default=60, help="held-out assignments (twice as many are fitted)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--granularity", choices=(*GRANULARITIES, "both"), default="both")
    parser.add_argument("--frontier", action="store_true", help="also judge the optimiser's frontier assignments")
    parser.add_argument("--target", choices=TARGETS, default="loss", help="measure and predict loss or KL")
    parser.add_argument("--spread", action="store_true", help="only the per-window spread of uniform INT8/6/4")
    args = parser.parse_args(argv)
    validation.integer("--configs", args.configs, 3, MAX_CONFIGS)
    validation.seed("--seed", args.seed)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    config, measure = SIZES["benchmark"]
    trained = train(config, log=log)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.spread:
        payload = spread(trained)
        (args.out / "spread.json").write_text(json.dumps(payload, indent=2) + "\n")
        print(json.dumps(payload, indent=2))
        return 0
    granularities = GRANULARITIES if args.granularity == "both" else (args.granularity,)
    runs = [(g, lambda g=g: validate(trained, n_configs=args.configs, seed=args.seed, granularity=g, log=log,
                                     target=args.target, **measure)) for g in granularities]  # fmt: skip
    if args.frontier:
        runs.append(("frontier", lambda: validate_frontier(trained, seed=args.seed, log=log, target=args.target,
                                                           **(measure | FRONTIER_SIZES["benchmark"]))))  # fmt: skip
    for name, run in runs:
        result = run()
        payload = result.to_json()
        name = name if args.target == "loss" else f"{name}_{args.target}"
        (args.out / f"validation_{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
        scatter_plot(result, args.out / f"proxy_scatter_{name}.png")
        m = result.model
        print(f"\n== {name} assignments: {result.n_configs} held-out, {result.n_fit} fit ==")
        print(
            f"model {m['n_params']} params, {m['train_steps']} steps, {m['train_seconds']:.0f} s training, "
            f"final train loss {m['final_train_loss']:.4f}, val loss {m['val_loss']:.4f} nats/token"
        )
        print(
            f"sensitivities in {result.sensitivity_seconds:.0f} s; measured dL median "
            f"{payload['measured_loss_increase']['median']:.4f}, max {payload['measured_loss_increase']['max']:.3f}"
        )
        print(f"{'variant':18s} {'tau':>7s} {'rho':>7s} {'ratio min..max':>15s}  fitted")
        for v in sorted(result.variants, key=lambda v: -2.0 if v.kendall_tau is None else -v.kendall_tau):
            tau, rho = (float("nan") if x is None else x for x in (v.kendall_tau, v.spearman))
            ratios = f"{min(v.ratios):.2f}..{max(v.ratios):.2f}"
            print(f"{v.name:18s} {tau:7.3f} {rho:7.3f} {ratios:>15s}  {'yes' if v.fitted else 'no'}")
        print(f"best: {result.best.name}; budgets at uniform W/A/KV: {payload['budgets']}")
    return 0


if __name__ == "__main__":
    validation.run_script(main)
