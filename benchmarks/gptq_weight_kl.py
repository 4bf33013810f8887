"""Which GPTQ to use, judged without the verified gains: weight-only KL on windows GPTQ never saw.

For each weight quantiser -- round to nearest, GPTQ with Hessians from the 16 sensitivity windows (seeded),
GPTQ with Hessians from the 128 evenly spaced training-split windows (``Calibration.gptq_windows``), and the
same in act-order -- the mean per-token KL divergence from full precision with every weight at ``w`` bits
(2..8) and activations / KV at 16 bits (MSE-clipped per-channel grid, docs/quantisation.md), on

* *selection* windows: training-split windows midway between consecutive Hessian windows, any that overlap
  a Hessian window of either GPTQ variant left out (the criterion: same split, unseen tokens);
* the 64 check windows of the validation split (a report, not the criterion).

    python benchmarks/gptq_weight_kl.py [--size benchmark|subword] [--seed 0] [--windows 64] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from cimjax import validation
from cimjax.files import output_file_argument
from cimjax.quant import gptq
from cimjax.quant.calibration import Calibration, gptq_starts
from cimjax.quant.measured import checkpoint_scheme, loss_and_kl, with_tokenizer
from cimjax.quant.train import BENCHMARK, SUBWORD, train
from cimjax.workload.precision import N_POINTS, POINTS

WIDTHS = tuple(range(2, 9))


def weight_only_tables(n_layers: int) -> np.ndarray:
    """``(7, L, 17)``: weights at each of :data:`WIDTHS`, activations and KV at 16 bits."""
    is_weight = np.array([kind == "weight" for kind, _ in POINTS])
    return np.stack([np.broadcast_to(np.where(is_weight, b, 16), (n_layers, N_POINTS)) for b in WIDTHS]).astype(
        np.float32
    )


def selection_windows(calibration: Calibration, n: int) -> np.ndarray:
    """Up to ``n`` training-split windows midway between the evenly spaced Hessian windows, none overlapping
    a Hessian window of either GPTQ variant (evenly spaced, or the seeded sensitivity windows)."""
    train_tokens, _ = calibration.split()
    span = calibration.seq_len + 1
    even = gptq_starts(len(train_tokens), calibration.seq_len, calibration.gptq_windows)
    rng = np.random.default_rng(calibration.seed)  # the sensitivity windows' starts (Calibration.tokens)
    seeded = rng.integers(0, len(train_tokens) - span, size=calibration.windows)
    used = np.concatenate([even, seeded])
    mid = (even[:-1] + even[1:]) // 2
    free = mid[np.all(np.abs(mid[:, None] - used[None, :]) >= span, axis=1)]
    picked = free[np.linspace(0, len(free) - 1, min(n, len(free))).astype(int)]
    return train_tokens[picked[:, None] + np.arange(span)[None, :]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=("benchmark", "subword"), default="benchmark")
    parser.add_argument("--seed", type=int, default=0, help="the sensitivity windows' seed")
    parser.add_argument("--windows", type=int, default=64, help="selection windows")
    parser.add_argument("--json", type=output_file_argument, default=None, help="write the table as JSON here")
    args = parser.parse_args(argv)
    validation.seed("--seed", args.seed)
    validation.integer("--windows", args.windows, 1)

    trained = train({"benchmark": BENCHMARK, "subword": SUBWORD}[args.size], log=lambda m: print(m, file=sys.stderr))
    directory = trained.directory / "hf"
    calibration = with_tokenizer(Calibration(seq_len=trained.config.seq_len, seed=args.seed), directory)
    scheme, rtn = checkpoint_scheme(True), checkpoint_scheme(False)
    variants = {  # Hessian windows (None: round to nearest) and act-order
        "round to nearest": (None, False),
        f"GPTQ, {calibration.windows} sensitivity windows": (calibration.tokens(), False),
        f"GPTQ, {calibration.gptq_windows} even windows": (calibration.gptq_tokens(), False),
        f"GPTQ, {calibration.gptq_windows} even windows, act-order": (calibration.gptq_tokens(), True),
    }
    selection = selection_windows(calibration, args.windows)
    sets = {"selection (train)": selection, "check (val)": calibration.check_tokens()}
    tables = weight_only_tables(trained.model.spec.n_layers)
    rows = {}
    for name, (hessian_windows, act_order) in variants.items():
        cpu = time.process_time()
        if hessian_windows is None:
            model, quantiser = trained.model, rtn
        else:
            model, quantiser = gptq.prepare(trained.model, hessian_windows, scheme.weight, act_order), scheme
        prep = time.process_time() - cpu
        rows[name] = {"prepare_cpu_s": prep}
        for set_name, windows in sets.items():
            rows[name][set_name] = loss_and_kl(model, windows, tables, quantiser)[1].tolist()
        print(f"{name}: prepared in {prep:.1f} CPU s", file=sys.stderr)

    n_sel = len(sets["selection (train)"])
    print(f"model {trained.model.spec.id}; sensitivity seed {args.seed}; {n_sel} selection windows, "
          f"{len(sets['check (val)'])} check windows; weight-only KL (nats/token), W at w bits, A/KV 16")  # fmt: skip
    for set_name in sets:
        print(f"\n{set_name}\n\n| quantiser | " + " | ".join(f"W{b}" for b in WIDTHS) + " |")
        print("|---|" + "---|" * len(WIDTHS))
        for name, row in rows.items():
            print(f"| {name} | " + " | ".join(f"{v:.4g}" for v in row[set_name]) + " |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"model": trained.model.spec.id, "seed": args.seed, "widths": WIDTHS, "rows": rows}, fh)
    return 0


if __name__ == "__main__":
    validation.run_script(main)
