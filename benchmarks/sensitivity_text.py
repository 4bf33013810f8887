"""Both calibration texts' optimizer proxies judged on the same frontier assignments (docs/proxy.md,
"Sensitivities on text the model was not trained on").

A frontier run (``cimjax proxy validate --protocol frontier``) judges each proxy on the assignments the
optimiser returned *with that proxy*, so two runs differ both in the proxy and in the assignments. This
separates the two: for ``--sensitivity-text train`` and ``check`` it measures the checkpoint as the frontier
protocol does (from the cache when measured), fits the optimizer proxy, regenerates that run's 24 frontier
assignments (the same optimiser settings and seeds, bit-identical), measures all 48 on the same held-out
windows (every validation window after the check windows), and prints each proxy's Kendall tau and
measured / predicted range on its own assignments, on the other's, and on all 48.

    python benchmarks/sensitivity_text.py --size benchmark|subword --target kl|loss [--seed S] [--out FILE]

``--seed`` is ``proxy validate``'s: it draws the sensitivity windows (of either split), the fit set and the
neighbours (the optimiser's seeds stay 0 and 1).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from scipy import stats

from cimjax.lm.checkpoint import save_checkpoint
from cimjax.quant.calibration import SENSITIVITY_SPLITS, Calibration
from cimjax.quant.fitting import saturate
from cimjax.quant.measured import TARGETS, for_checkpoint
from cimjax.quant.paired import paired
from cimjax.quant.proxy import batch_features, optimizer_proxy
from cimjax.quant.train import train
from cimjax.report.proxy_frontier import FRONTIER_SIZES, frontier_tables, held_out_windows
from cimjax.report.proxy_validation import SIZES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=("benchmark", "subword"), default="benchmark")
    parser.add_argument("--target", choices=TARGETS, default="kl")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    start, cpu = time.perf_counter(), time.process_time()
    config, sizes = SIZES[args.size]
    trained = train(config)
    directory = trained.directory / "hf"
    if not (directory / "config.json").is_file():
        save_checkpoint(trained.model, directory, tokenizer=trained.tokenizer)
    proxies, tables, measured = {}, {}, {}
    for split in SENSITIVITY_SPLITS:
        calibration = Calibration(sizes["n_calib"], config.seq_len, sizes["n_samples"], args.seed,
                                  FRONTIER_SIZES[args.size]["check_windows"], sensitivity_split=split)  # fmt: skip
        m = measured[split] = for_checkpoint(directory, calibration, log=print)
        proxies[split] = optimizer_proxy(m.sens, m.joint_tables, m.joint(args.target), args.target)
        tables[split], _ = frontier_tables(m, proxies[split], args.target, (8, 6, 4), (0, 1), 3, args.seed, None, print)
    m = measured["train"]  # the model and quantiser are the same for both (GPTQ's windows do not change)
    held_out, _ = held_out_windows(m.calibration, config.val_fraction, None)
    every = np.concatenate([tables[s] for s in SENSITIVITY_SPLITS])
    values, _ = paired(m.model(trained.model), held_out, every, m.scheme).of(args.target)
    n = len(tables["train"])
    rows = {}
    for name, proxy in proxies.items():
        feats = batch_features(proxy, jnp.asarray(every, jnp.float32))
        predicted = np.asarray(saturate(feats @ proxy.coef, proxy.saturation), np.float64)
        for on, part in (("train", slice(0, n)), ("check", slice(n, None)), ("both", slice(None))):
            ratio = values[part] / predicted[part]
            rows[f"{name} proxy on {on} assignments"] = {
                "kendall_tau": float(stats.kendalltau(predicted[part], values[part]).statistic),
                "spearman": float(stats.spearmanr(predicted[part], values[part]).statistic),
                "ratio_min": float(ratio.min()),
                "ratio_max": float(ratio.max()),
                "within_band": int(np.sum((ratio >= 0.67) & (ratio <= 1.5))),
                "n": int(len(ratio)),
            }
    for label, r in rows.items():
        print(f"{label}: tau {r['kendall_tau']:.3f} rho {r['spearman']:.3f} ratio {r['ratio_min']:.2f}-"
              f"{r['ratio_max']:.2f} in band {r['within_band']}/{r['n']}")  # fmt: skip
    print(f"{len(held_out)} held-out windows; wall {time.perf_counter() - start:.0f} s, "
          f"CPU {time.process_time() - cpu:.0f} s")  # fmt: skip
    if args.out is not None:
        payload = {"size": args.size, "target": args.target, "seed": args.seed, "rows": rows}
        payload["measured"] = values.tolist()
        args.out.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
