"""What limits the verified INT4 gain on the trained byte LM (docs/joint.md, "What limits the INT4 gain").

Two measurements:

1. **Cost side**: tokens/s of bit variants of a reported design (a row of ``experiments/end_to_end.py``'s
   JSON) at its hardware and with the hardware swept again: every weight one bit lower, every
   activation / KV entry one bit lower, activations and KV at 16 or 8 bits, weights at 4 or 8 bits. Says
   whether weight bits (macro columns and DRAM traffic) or activation bits (bit-serial streaming) set
   tokens/s for this model.
2. **Accuracy side**: measured loss increase and KL of uniform W=A=KV widths and of weight-only /
   activation-only tables on the check windows, and of each activation point alone at 4 bits, with the
   weight scales ``max`` and ``mse`` and with ``mse`` plus activation smoothing of strength ``--smooth``
   (docs/quantisation.md), i.e. what 2- and 3-bit weights cost under each quantiser and which activation
   spends the INT4 budget. Also the activation outliers: per linear input and layer, the largest
   channel's ``max |x_j|`` over the median channel's, on the calibration windows, before and after smoothing.

    python benchmarks/int4_limits.py results/end_to_end/end_to_end.json [--row 2] [--out results/int4_limits]
        [--smooth 0.5]

Prints both tables and writes them to ``OUT/int4_limits.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from cimjax import validation
from cimjax.evaluation import design_report
from cimjax.files import output_dir_argument
from cimjax.hardware.config import FIELDS
from cimjax.joint.allocation import best_hardware
from cimjax.joint.problem import ExactEvaluator, make_problem
from cimjax.quant.measured import Calibration, loss_and_kl, smoothed, with_tokenizer
from cimjax.quant.quantizers import CLIPPED_SCHEME, DEFAULT_SCHEME
from cimjax.quant.smoothing import DEFAULT_ALPHA, outlier_ratios
from cimjax.quant.train import BENCHMARK, train
from cimjax.workload.precision import MATMUL_OPS, N_POINTS, POINTS, Precision, table_from_bits

WEIGHT = np.array([kind == "weight" for kind, _ in POINTS])
KV = np.array([kind == "kv" for kind, _ in POINTS])
ACT = ~WEIGHT & ~KV


def cost_side(spec, table: np.ndarray) -> dict:
    """Tokens/s of bit variants of ``table``, relative to it, at its best hardware and re-swept."""
    problem = make_problem(spec, 1.0)  # only the exact cost model is used here, not the proxy
    evaluate = ExactEvaluator(problem)
    hardware, _ = best_hardware(problem, table)

    def tokens_per_s(t, choice):
        return problem.workload.generate / float(evaluate(choice[None], t[None]).latency_s[0])

    base = tokens_per_s(table, hardware)
    config = {n: problem.space.values[n][int(hardware[i])] for i, n in enumerate(FIELDS)}
    prec = Precision.from_table(jnp.asarray(table, jnp.float32))
    full = design_report(spec, prec, "mixed", config, problem.workload, problem.tech, problem.space)
    by_operator = sorted(full["latency_by_operator_s"].items(), key=lambda kv: -kv[1])
    shares = ", ".join(f"{name} {t / full['latency_s']:.0%}" for name, t in by_operator[:5])
    print(f"design at its best hardware {config}: {base:,.0f} tokens/s; DRAM roofline "
          f"{full['roofline_tokens_per_s']:,.0f} tokens/s; latency by operator: {shares}")  # fmt: skip
    variants = {
        "weights -1 bit (>= 2)": np.where(WEIGHT, np.maximum(table - 1, 2), table),
        "activations -1 bit (>= 2)": np.where(ACT, np.maximum(table - 1, 2), table),
        "KV -1 bit (>= 2)": np.where(KV, np.maximum(table - 1, 2), table),
        "activations + KV at 16": np.where(~WEIGHT, 16, table),
        "activations + KV at 8": np.where(~WEIGHT, 8, table),
        "weights at 4": np.where(WEIGHT, 4, table),
        "weights at 8": np.where(WEIGHT, 8, table),
    }
    ratios = {}
    for name, t in variants.items():
        swept, _ = best_hardware(problem, t)
        ratios[name] = {"same_hardware": tokens_per_s(t, hardware) / base, "re_swept": tokens_per_s(t, swept) / base}
        print(f"  {name:26s} {ratios[name]['same_hardware']:.3f}x (same hardware), "
              f"{ratios[name]['re_swept']:.3f}x (re-swept)")  # fmt: skip
    return {"tokens_per_s": base, "roofline_tokens_per_s": full["roofline_tokens_per_s"], "config": config,
            "latency_share": {name: t / full["latency_s"] for name, t in by_operator}, "variants": ratios}  # fmt: skip


def accuracy_side(trained, alpha: float) -> dict:
    """Measured loss increase and KL of uniform, weight-only and activation-only tables, max vs mse scales vs
    mse scales on the model smoothed with strength ``alpha``; the activation outliers before and after."""
    calibration = with_tokenizer(Calibration(seq_len=trained.config.seq_len), trained.directory / "hf")
    windows = calibration.check_tokens()
    n_layers = trained.model.spec.n_layers
    names, tables = [], []
    for b in (8, 6, 4, 3, 2):
        names.append(f"uniform W=A=KV {b}")
        tables.append(np.full((n_layers, N_POINTS), float(b)))
    for b in (4, 3, 2):
        names.append(f"weights {b}, rest 16")
        tables.append(np.where(WEIGHT, float(b), 16.0) * np.ones((n_layers, 1)))
    names.append("weights 8, rest 4")
    tables.append(np.where(WEIGHT, 8.0, 4.0) * np.ones((n_layers, 1)))
    names.append("activations 4, rest 16")
    tables.append(np.where(ACT, 4.0, 16.0) * np.ones((n_layers, 1)))
    for op in MATMUL_OPS:
        names.append(f"activation {op} 4, rest 16")
        tables.append(np.where(np.arange(N_POINTS) == POINTS.index(("act", op)), 4.0, 16.0) * np.ones((n_layers, 1)))
    print(f"measured on {len(windows)} check windows: loss increase / KL (nats/token)")
    smooth_scheme = dataclasses.replace(CLIPPED_SCHEME, smooth=alpha)
    model = smoothed(trained.model, smooth_scheme, calibration)
    schemes = {"max": (trained.model, DEFAULT_SCHEME), "mse": (trained.model, CLIPPED_SCHEME),
               f"mse smooth {alpha}": (model, smooth_scheme)}  # fmt: skip
    results = {clip: loss_and_kl(m, windows, np.stack(tables), scheme) for clip, (m, scheme) in schemes.items()}
    for i, name in enumerate(names):
        cells = "   ".join(f"{clip}: {r[0][i]:.4g} / {r[1][i]:.4g}" for clip, r in results.items())
        print(f"  {name:22s} {cells}")
    rows = {name: {clip: {"loss": float(r[0][i]), "kl": float(r[1][i])} for clip, r in results.items()}
            for i, name in enumerate(names)}  # fmt: skip
    outliers = {"plain": outlier_ratios(trained.model, calibration.tokens()),
                f"smooth {alpha}": outlier_ratios(model, calibration.tokens())}  # fmt: skip
    print(f"largest / median channel max|x_j| per layer on {calibration.windows} calibration windows:")
    for op in outliers["plain"]:
        cells = "   ".join(f"{k}: " + " ".join(f"{v:.1f}" for v in o[op]) for k, o in outliers.items())
        print(f"  {op:5s} {cells}")
    return {"check_windows": len(windows), "rows": rows, "outliers": outliers}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("end_to_end_json", help="experiments/end_to_end.py's end_to_end.json (byte LM)")
    parser.add_argument("--row", type=int, default=2, help="which budget's row (default 2: int4)")
    parser.add_argument(
        "--out", type=output_dir_argument, default=Path("results/int4_limits"), help="directory for int4_limits.json"
    )
    parser.add_argument("--smooth", type=float, default=DEFAULT_ALPHA, help="smoothing strength of the third column")
    args = parser.parse_args(argv)
    validation.number("--smooth", args.smooth, 0.0, 1.0)
    data = validation.read_json(args.end_to_end_json, "end_to_end.json")
    rows = validation.json_object(data, "end_to_end.json", args.end_to_end_json).get("rows", [])
    row = rows[validation.integer("--row", args.row, 0, len(rows) - 1)]
    try:  # read before the LM is trained
        design = {k: row[k] for k in ("budget", "gain", "mean_bits")}
        table = table_from_bits(row["bits"]).astype(np.float64)
        bits = row["mean_bits"]
        print(f"{row['budget']} design: gain {row['gain']:.3f}, mean W/A/KV bits "
              f"{bits['weight']:.2f}/{bits['act']:.2f}/{bits['kv']:.2f}")  # fmt: skip
    except (KeyError, TypeError, ValueError) as err:
        parser.error(f"row {args.row} of {args.end_to_end_json} is not one experiments/end_to_end.py writes ({err!r})")
    trained = train(BENCHMARK, log=lambda msg: None)
    figures = {
        "design": design,
        "cost_side": cost_side(trained.model.spec, table),
        "accuracy_side": accuracy_side(trained, args.smooth),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "int4_limits.json"
    path.write_text(json.dumps(figures, indent=1, default=float), encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    validation.run_script(main)
