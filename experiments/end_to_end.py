"""End-to-end check on a real (small) LM: apply the optimised bit assignment for real and measure its loss.

The byte-level LLaMA-style model of the proxy issue (``TrainConfig()``, trained or loaded from
``$CIMJAX_CACHE``) gets its sensitivities on training-split windows; the ``loss_curves`` proxy (the
best-ranked variant in docs/proxy.md, no fitted coefficients) prices assignments. For each budget
(the proxy at uniform INT8 / INT6 / INT4), the joint optimiser (alpha = 1, tokens/s) picks bits and
hardware for this model's shape on the accelerator. Then every assignment is applied with fake
quantisation and its loss increase measured on validation-split windows, next to

* what the proxy promised for it,
* the uniform assignments (W = A = KV, widths 2-8) on their own best hardware, whose tokens/s bracket
  ours: "uniform assignments of the same cost".

    python experiments/end_to_end.py --out results/end_to_end [--budgets int8,int6,int4] [--eval-windows 64]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from cimjax.joint.baselines import uniform_front
from cimjax.joint.optimizer import optimize
from cimjax.joint.problem import make_problem
from cimjax.quant import corpus
from cimjax.quant.proxy import make_proxy
from cimjax.quant.sensitivity import estimate
from cimjax.quant.train import BENCHMARK, train
from cimjax.quant.validate import measure_losses


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("results/end_to_end"))
    parser.add_argument("--budgets", default="int8,int6,int4")
    parser.add_argument("--calib-windows", type=int, default=16)
    parser.add_argument("--eval-windows", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    trained = train(BENCHMARK, log=log)
    cfg, spec = trained.config, trained.model.spec
    train_tokens, val_tokens = corpus.split(cfg.val_fraction)
    rng = np.random.default_rng(args.seed)
    starts = rng.integers(0, len(train_tokens) - cfg.seq_len - 1, size=args.calib_windows)
    calib = train_tokens[starts[:, None] + np.arange(cfg.seq_len + 1)[None, :]]
    evaluation = corpus.windows(val_tokens, cfg.seq_len, args.eval_windows)
    log("sensitivities (loss curves) ...")
    proxy = make_proxy("loss_curves", estimate(trained.model, calib, n_samples=2, seed=args.seed))

    rows = []
    for budget in args.budgets.split(","):
        problem = make_problem(spec, budget, proxy=proxy, alpha=1.0)
        log(f"{budget}: joint optimisation ...")
        ours = optimize(problem)
        uniform = uniform_front(problem, range(2, 9))
        tables = np.stack([ours.table] + [u.table for u in uniform])
        log(f"{budget}: measuring {len(tables)} assignments on {len(evaluation)} validation windows ...")
        measured, base = measure_losses(trained, evaluation, tables)
        entries = [("joint (ours)", ours.report, measured[0])]
        entries += [
            (f"uniform W{w}A{w}KV{w}", u.report, m) for w, u, m in zip(range(2, 9), uniform, measured[1:], strict=True)
        ]
        for name, report, dl in entries:
            rows.append(
                {
                    "budget": budget,
                    "budget_value": problem.budget,
                    "assignment": name,
                    "tokens_per_s": report["tokens_per_s"],
                    "tokens_per_j": report["tokens_per_j"],
                    "proxy": report["proxy"],
                    "measured_loss_increase": float(dl),
                    "mean_bits": report["mean_bits"],
                }
            )
        rows[-len(entries)]["wall_s"] = ours.wall_s
        rows[-len(entries)]["bits"] = ours.report["bits"]
        rows[-len(entries)]["base_loss"] = base

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "end_to_end.json").write_text(json.dumps({"model": spec.id, "rows": rows}, indent=2) + "\n")
    lines = [
        f"model {spec.id}: {trained.n_params} parameters, val loss {trained.val_loss:.4f} nats/token; "
        f"proxy loss_curves; {len(evaluation)} validation windows",
        "",
        "| budget | assignment | tokens/s | tokens/J | proxy (promised) | measured dL | mean W/A/KV bits |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        b = r["mean_bits"]
        lines.append(
            f"| {r['budget']} ({r['budget_value']:.3g}) | {r['assignment']} | {r['tokens_per_s']:.1f} | "
            f"{r['tokens_per_j']:.1f} | {r['proxy']:.4g} | {r['measured_loss_increase']:.4g} | "
            f"{b['weight']:.2f}/{b['act']:.2f}/{b['kv']:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    (args.out / "end_to_end.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
