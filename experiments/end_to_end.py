"""End-to-end check on a real (small) LM: the verified gain of joint optimisation at measured budgets.

The byte-level LLaMA-style model of docs/proxy.md (``TrainConfig()``, trained or loaded from
``$CIMJAX_CACHE``) is exported as a Hugging Face checkpoint and measured as ``cimjax optimize --checkpoint``
does (:func:`cimjax.quant.measured.for_checkpoint`, cached by content). For each budget -- the *measured*
loss increase of uniform INT8 / INT6 / INT4 on the check windows -- ``optimize --verify`` (alpha = 1,
tokens/s) returns an assignment whose loss was measured within the budget (or says it is not), next to
the best uniform design meeting the same measured budget. Both are then also measured on validation
windows that neither the budget nor the verification used (``held-out``).

    python experiments/end_to_end.py --out results/end_to_end [--budgets int8,int6,int4] [--held-out 128]
        [--target loss|kl] [--refine 48] [--size benchmark|subword] [--clip max|mse] [--area-max MM2]
        [--smooth A|none] [--evolve N] [--gptq|--no-gptq] [--sensitivity-text train|check]
        [--proxy interaction|pairwise|interaction_spline|interaction_envelope] [--pairs block|layer|all]

With ``--target kl`` the budgets and the verification are in measured KL divergence from the full-precision
model instead of loss increase; both are reported either way. ``--refine N``: at most N assignments
measured by the refinement after the verify rounds (:mod:`cimjax.joint.refine`; 0: none; default 48 with
``--target kl``, 0 with ``loss``, whose noise a measured search selects for). ``--size
subword``: the second, larger model (``SUBWORD``: 8 layers, a 1,024-id byte-level BPE tokenizer trained on
the corpus), exported with its ``tokenizer.json``, so every window is in its own sub-word ids. ``--clip``:
the weight quantiser's scale, ``max`` or ``mse`` (clip search, docs/quantisation.md), for every
assignment, the uniform budgets included. ``--smooth A``: activation smoothing of strength ``A`` folded
into the weights (SmoothQuant, docs/quantisation.md), for every assignment, the budgets included; ``none``:
off. ``--evolve N``: at most N assignments measured by the evolutionary search of the recommended design's
bits on training-split selection windows (:mod:`cimjax.joint.evolve`; 0: off, the default). ``--gptq``
(the default, that of measured checkpoints) / ``--no-gptq``: weights quantised by GPTQ on training-split
calibration windows, or rounded to nearest (docs/quantisation.md), for every assignment, the budgets
included. ``--sensitivity-text``: where the sensitivities are measured, training-split windows (the
default) or as many of the check windows (docs/joint.md, "Calibration text"). ``--proxy``: the proxy that
steers the search, ``interaction`` (the default of ``optimize --checkpoint``) or ``pairwise`` with the measured
pairs of ``--pairs`` (default ``layer``; :func:`cimjax.quant.pairs.of_checkpoint`, as ``optimize --checkpoint
--proxy pairwise`` measures them, cached; their CPU seconds in each row's ``pairs``). Each row
also gives both designs' area and tokens/J, and the optimiser's own design (same bits, its hardware before
optimize's area rule picks the recommended chip: docs/results.md) with its gain and area,
and what the iso-area search (the verified search again within the uniform design's area, when the rule
moved the design to a smaller chip: docs/joint.md) found.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from cimjax import validation
from cimjax.files import output_dir_argument
from cimjax.joint.problem import parse_budget
from cimjax.joint.refine import MEASUREMENTS
from cimjax.joint.verified import optimize_measured
from cimjax.lm.checkpoint import save_checkpoint
from cimjax.quant import corpus
from cimjax.quant.calibration import SENSITIVITY_SPLITS
from cimjax.quant.measured import CHECKPOINT_SCHEME, TARGETS, Calibration, for_checkpoint, loss_and_kl
from cimjax.quant.pairs import CHECKPOINT_PAIR_SET, PAIR_SETS, of_checkpoint
from cimjax.quant.proxy import OPTIMIZER_PROXY, OPTIMIZER_VARIANTS
from cimjax.quant.quantizers import CLIPS, QuantScheme, TensorScheme
from cimjax.quant.train import BENCHMARK, SUBWORD, train
from cimjax.validation import MAX_EVOLVE, MAX_REFINE, MAX_VERIFY_ROUNDS
from cimjax.workload.precision import table_from_bits


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=output_dir_argument, default=Path("results/end_to_end"))
    parser.add_argument("--budgets", default="int8,int6,int4")
    parser.add_argument("--held-out", type=int, default=128, help="validation windows after the check windows")
    parser.add_argument("--rounds", type=int, default=5, help="most verification rounds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", choices=TARGETS, default="loss", help="budgets in loss increase or in KL")
    refine_help = f"most assignments the refinement measures (default {MEASUREMENTS} for kl, 0 for loss)"
    parser.add_argument("--refine", type=int, default=None, help=refine_help)
    parser.add_argument("--size", choices=("benchmark", "subword"), default="benchmark", help="which trained LM")
    clip_help = "the weight quantiser's scale (default: that of measured checkpoints)"
    parser.add_argument("--area-max", type=float, default=None, help="area limit (mm^2) of every design")
    parser.add_argument("--clip", choices=CLIPS, default=CHECKPOINT_SCHEME.weight.clip, help=clip_help)
    smooth_help = "activation smoothing strength in [0, 1], or none (default: that of measured checkpoints)"
    parser.add_argument("--smooth", type=_alpha, default=CHECKPOINT_SCHEME.smooth, help=smooth_help)
    parser.add_argument("--evolve", type=int, default=0, help="most assignments the evolutionary search measures")
    gptq_help = "weights quantised by GPTQ instead of rounded to nearest (default: that of measured checkpoints)"
    parser.add_argument("--gptq", action=argparse.BooleanOptionalAction, default=CHECKPOINT_SCHEME.gptq, help=gptq_help)
    text_help = "where the sensitivities are measured: training-split or check windows (docs/joint.md)"
    parser.add_argument(
        "--sensitivity-text", choices=SENSITIVITY_SPLITS, default=Calibration.sensitivity_split, help=text_help
    )
    parser.add_argument("--proxy", choices=OPTIMIZER_VARIANTS, default=OPTIMIZER_PROXY, help="the search's proxy")
    parser.add_argument("--pairs", choices=PAIR_SETS, default=CHECKPOINT_PAIR_SET, help="pairs of --proxy pairwise")
    args = parser.parse_args(argv)
    _check(parser, args)

    trained = train({"benchmark": BENCHMARK, "subword": SUBWORD}[args.size], log=log)
    directory = trained.directory / "hf"
    if not (directory / "config.json").is_file():
        save_checkpoint(trained.model, directory, tokenizer=trained.tokenizer)
    calibration = Calibration(seq_len=trained.config.seq_len, seed=args.seed, sensitivity_split=args.sensitivity_text)
    scheme = QuantScheme(weight=TensorScheme(True, "channel", clip=args.clip), smooth=args.smooth, gptq=args.gptq)
    measured = for_checkpoint(directory, calibration, log=log, scheme=scheme)
    _, val_tokens = measured.calibration.split()
    n_check = calibration.check_windows
    n_held = min(args.held_out, (len(val_tokens) - 1) // calibration.seq_len - n_check)
    held_out = corpus.windows(val_tokens, calibration.seq_len, n_check + n_held)[n_check:]

    model = measured.model(trained.model)  # as every budget was measured (smoothed, GPTQ's weights, or not)
    pairs = of_checkpoint(model, measured, args.pairs) if args.proxy == "pairwise" else None
    rows = []
    for budget in args.budgets.split(","):
        log(f"{budget}: verified joint optimisation ...")
        start, cpu = time.perf_counter(), time.process_time()
        report = optimize_measured(measured, budget, model=trained.model, verify=True, max_rounds=args.rounds,
                                   seed=args.seed, target=args.target, refine=args.refine, area_max=args.area_max,
                                   evolve=args.evolve, proxy=args.proxy, pairs=pairs, log=log)  # fmt: skip
        wall = time.perf_counter() - start
        base = report["baseline"]
        tables = [table_from_bits(report["bits"])] + [np.full_like(table_from_bits(report["bits"]), base["width"])]
        held, held_kl, _ = loss_and_kl(model, held_out, np.stack(tables), measured.scheme)
        rows.append(
            {
                "budget": budget,
                "measured_budget": report["measured_budget"],
                "tokens_per_s": report["tokens_per_s"],
                "baseline_tokens_per_s": base["tokens_per_s"],
                "baseline_width": base["width"],
                "area_mm2": report["area_mm2"],
                "baseline_area_mm2": base["area_mm2"],
                "tokens_per_j": report["tokens_per_j"],
                "baseline_tokens_per_j": base["tokens_per_j"],
                "optimiser_design": report.get("optimiser_design"),
                "optimiser_gain": _optimiser_gain(report),
                "iso_area": report["iso_area"],
                "gain": report["gain"],
                "chosen": report["chosen"],
                "target": args.target,
                "measured_loss": report["measured_loss"],
                "measured_kl": report["measured_kl"],
                "verified": report["verified"],
                "baseline_measured_loss": base["measured_loss"],
                "baseline_measured_kl": base["measured_kl"],
                "held_out_loss": float(held[0]),
                "baseline_held_out_loss": float(held[1]),
                "held_out_kl": float(held_kl[0]),
                "baseline_held_out_kl": float(held_kl[1]),
                "rounds": report["rounds"],
                "verify_wall_s": report["verify_wall_s"],
                "verify_history": report["verify_history"],
                "refine": report["refine"],
                "evolve": report["evolve"],
                "cpu_s": time.process_time() - cpu,
                "proxy_name": report["proxy_name"],
                "pairs": report["pairs"],
                "mean_bits": report["mean_bits"],
                "bits": report["bits"],
                "wall_s": wall,
            }
        )

    args.out.mkdir(parents=True, exist_ok=True)
    calibration_text = measured.calibration.describe(trained.model.spec.vocab, measured.scheme.gptq)
    payload = {"model": trained.model.spec.id, "calibration": calibration_text, "target": args.target,
               "clip": args.clip, "smooth": args.smooth, "area_max": args.area_max, "rows": rows}  # fmt: skip
    payload |= {"gptq": args.gptq, "proxy": args.proxy}
    (args.out / "end_to_end.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = [
        f"model {trained.model.spec.id}: {trained.n_params} parameters, val loss {trained.val_loss:.4f} nats/token; "
        f"{payload['calibration']}; budgets in measured {args.target}; held-out: {len(held_out)} further "
        f"validation windows; weight scales: {args.clip}; smoothing: {args.smooth}; GPTQ: {args.gptq}; proxy: "
        f"{args.proxy}" + (f" ({args.pairs} pairs)" if pairs is not None else ""),
        "",
        "| budget (measured) | ours tokens/s | uniform tokens/s (width) | gain | measured dL ours / uniform | "
        "measured KL ours / uniform | verified | held-out dL ours / uniform | held-out KL ours / uniform | rounds | "
        "refine: measured, bits lowered, gain before | wall s | CPU s | mean W/A/KV bits | area mm2 ours / uniform | "
        "tokens/J ours / uniform | optimiser's own design: gain, area mm2 | iso-area search: gain, area mm2, "
        "measured value, rounds, recommended (over the first search's pick: gain, area mm2) | evolutionary search: "
        "measured, generations, selection value / budget, check value, accepted |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        b = r["mean_bits"]
        lines.append(
            f"| {r['budget']} ({r['measured_budget']:.4g}) | {r['tokens_per_s']:.0f} | "
            f"{r['baseline_tokens_per_s']:.0f} (INT{r['baseline_width']}) | {r['gain']:.3f} | "
            f"{r['measured_loss']:.4g} / {r['baseline_measured_loss']:.4g} | "
            f"{r['measured_kl']:.4g} / {r['baseline_measured_kl']:.4g} | {r['verified']} | "
            f"{r['held_out_loss']:.4g} / {r['baseline_held_out_loss']:.4g} | "
            f"{r['held_out_kl']:.4g} / {r['baseline_held_out_kl']:.4g} | {r['rounds']} | {_refined(r)} | "
            f"{r['wall_s']:.0f} | {r['cpu_s']:.0f} | "
            f"{b['weight']:.2f}/{b['act']:.2f}/{b['kv']:.2f} | {r['area_mm2']:.3g} / {r['baseline_area_mm2']:.3g} | "
            f"{r['tokens_per_j']:.4g} / {r['baseline_tokens_per_j']:.4g} | {_own(r)} | {_iso(r)} | {_evolved(r)} |"
        )
    text = "\n".join(lines) + "\n"
    (args.out / "end_to_end.md").write_text(text)
    print(text)
    return 0


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Every option's value checked before the LM is trained or measured (argparse's one-line error): an hour
    of work never ends in a budget or a round count that cannot be used."""
    try:
        for budget in args.budgets.split(","):
            parse_budget(budget, lambda width: 1.0, "measured")  # the label or number; its value is measured later
        validation.integer("--held-out", args.held_out, 1)
        validation.integer("--rounds", args.rounds, 1, MAX_VERIFY_ROUNDS)
        validation.seed("--seed", args.seed)
        if args.refine is not None:
            validation.integer("--refine", args.refine, 0, MAX_REFINE)
        validation.integer("--evolve", args.evolve, 0, MAX_EVOLVE)
        if args.area_max is not None:
            validation.number("--area-max", args.area_max, 0.0, low_open=True)
    except ValueError as err:
        parser.error(str(err))


def _alpha(value: str) -> float | None:
    """``--smooth``: ``none`` or a number in [0, 1]."""
    if value == "none":
        return None
    try:
        alpha = float(value)
    except ValueError:
        alpha = -1.0
    if not 0.0 <= alpha <= 1.0:
        raise argparse.ArgumentTypeError(f"--smooth {value!r}: allowed: a number in [0, 1] or none")
    return alpha


def _optimiser_gain(report: dict) -> float | None:
    """The optimiser's own design's tokens/s over the baseline's (None without either)."""
    own, base = report.get("optimiser_design"), report.get("baseline")
    return None if own is None or base is None else own["tokens_per_s"] / base["tokens_per_s"]


def _own(row: dict) -> str:
    """The optimiser's own design's column: its gain and area."""
    own = row["optimiser_design"]
    return "-" if own is None else f"{row['optimiser_gain']:.3f}, {own['area_mm2']:.3g}"


def _iso(row: dict) -> str:
    """The iso-area search's column (docs/joint.md): its gain, area, measured target, rounds, and whether
    optimize recommends it."""
    iso = row["iso_area"]
    if iso is None:
        return "-"
    value = iso["measured_kl" if row["target"] == "kl" else "measured_loss"]
    first = iso["first_pick"]
    return (
        f"{iso['gain']:.3f}, {iso['area_mm2']:.3g}, {value:.4g}, {iso['rounds']}, {iso['recommended']} "
        f"(first search's pick: {first['gain']:.3f}, {first['area_mm2']:.3g})"
    )


def _evolved(row: dict) -> str:
    """The evolutionary search's column: assignments measured, generations, its design's value on the
    selection windows over the selection budget, its one value on the check windows, and whether it was taken."""
    info = row["evolve"]
    if info is None:
        return "-"
    check = "-" if info["measured_check"] is None else f"{info['measured_check']:.4g}"
    return (
        f"{info['measured']}, {info['generations']}, {info['selection_value']:.4g} / {info['selection_budget']:.4g}, "
        f"{check}, {info['accepted']}"
    )


def _refined(row: dict) -> str:
    """The refinement's column: assignments measured, bits lowered, and the gain before it."""
    info = row["refine"]
    if info is None:
        return "-"
    return f"{info['measured']}, {info['moves']}, {info['tokens_per_s_before'] / row['baseline_tokens_per_s']:.3f}"


if __name__ == "__main__":
    validation.run_script(main)
