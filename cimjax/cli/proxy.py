"""``cimjax proxy``: validate the accuracy proxy against a trained LM, or estimate a checkpoint's sensitivities.

With ``--json`` stdout holds exactly one JSON object; progress goes to stderr. A missing or malformed
checkpoint prints one line to stderr and exits with status 2.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

import cimjax.validation as validation
from cimjax.cli.common import (
    GptqOpt,
    GptqWindowsOpt,
    SensitivityTextOpt,
    check_sensitivity_text,
    checkpoint_calibration,
    err,
    progress_updates,
    user_errors,
)
from cimjax.cli.common import out as stdout
from cimjax.files import check_output_file, output_dir

MAX_CONFIGS = 10_000
"""Most held-out assignments ``proxy validate`` measures (each is a full evaluation of the LM)."""
MAX_HELD_OUT = 100_000
"""Most held-out windows ``proxy validate --protocol frontier`` measures on."""

proxy_app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


def _log(msg: str) -> None:
    err.print(msg, highlight=False)


PAIRS_HELP = (
    "Pairs of quantised tensors measured for the 'pairwise' variant: 'block', 'layer', 'all', or 'none' (no pair "
    "measurement and no 'pairwise'; all pairs cost ~230 CPU-s on the byte LM). Default: all (benchmark, tiny), "
    "layer (subword)."
)
OptimizerProxyOpt = Annotated[
    str | None,
    typer.Option(
        help="Frontier protocol: the variant that drives the optimiser, 'interaction' (that of `cimjax optimize "
        "--checkpoint` by default), 'pairwise' (needs pairs: not with --pairs none), 'interaction_spline' or "
        "'interaction_envelope'. Default: interaction."
    ),
]


LmSeedOpt = Annotated[
    int,
    typer.Option(
        help="Seeds the LM's training (initialisation and batches): 0 is the documented model; another seed trains "
        "(and caches) another model of the same recipe, to judge proxies on a model not used to choose them."
    ),
]


@proxy_app.command()
@user_errors
def validate(
    seed: Annotated[int, typer.Option(help="Seeds the random assignments and the estimators.")] = 0,
    configs: Annotated[int, typer.Option(help="Held-out random assignments the proxy is judged on.")] = 60,
    fit_configs: Annotated[
        int | None, typer.Option(help="Random assignments fitted variants are fitted on (default: 4 x --configs).")
    ] = None,
    size: Annotated[
        str, typer.Option(help="Model and measurement size: benchmark, tiny (byte-level) or subword (8 layers, BPE).")
    ] = "benchmark",
    granularity: Annotated[
        str, typer.Option(help="Random assignments per 'layer' (and kind) or per 'tensor'.")
    ] = "layer",
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    out: Annotated[str | None, typer.Option(help="Directory for validation.json and proxy_scatter.png.")] = None,
    protocol: Annotated[
        str,
        typer.Option(
            help="'random' assignments, or the 'frontier': what the joint optimiser returns at budgets INT8..INT4 "
            "and seeds 0, 1, plus one-step neighbours (tensor-wise; --configs and --granularity do not apply)"
        ),
    ] = "random",
    target: Annotated[
        str,
        typer.Option(
            help="What is measured and predicted: the 'loss' increase or the 'kl' divergence from full "
            "precision (nats/token)."
        ),
    ] = "loss",
    held_out_windows: Annotated[
        int | None,
        typer.Option(
            help="Frontier protocol: windows the assignments are measured on, after the check windows of the "
            "validation split and, beyond its end, in the standard library's docstrings (default: the rest of "
            "the split)."
        ),
    ] = None,
    quantiser: Annotated[
        str | None,
        typer.Option(
            help="Random protocol: 'default' (max-scale round to nearest) or 'checkpoint' (the quantiser of "
            "`cimjax optimize --checkpoint`: MSE-clipped grid + GPTQ); the frontier protocol always uses "
            "'checkpoint'. Default: default."
        ),
    ] = None,
    sensitivity_text: Annotated[
        str | None,
        typer.Option(
            help="Frontier protocol: where the checkpoint's sensitivities are measured, 'train' (random "
            "training-split windows) or 'check' (16 of the check windows; the held-out windows stay disjoint "
            "from both). Default: train."
        ),
    ] = None,
    pairs: Annotated[str | None, typer.Option(help=PAIRS_HELP)] = None,
    optimizer_proxy: OptimizerProxyOpt = None,
    lm_seed: LmSeedOpt = 0,
) -> None:
    """Train (or load the cached) byte-level LM and rank mixed-precision assignments by every proxy."""
    from cimjax.quant.train import train
    from cimjax.report.proxy_frontier import FRONTIER_SIZES, validate_frontier
    from cimjax.report.proxy_validation import QUANTISERS, SIZES, write_outputs
    from cimjax.report.proxy_validation import validate as run_validation

    # every option is checked before the LM is trained
    _check_validate_options(configs, fit_configs, seed, size, granularity, protocol, target, held_out_windows, lm_seed)
    _check_quantiser(quantiser, protocol)
    split = _check_sensitivity_text(sensitivity_text, protocol)
    config, measure = SIZES[size]
    config = dataclasses.replace(config, seed=lm_seed)
    measure = measure | ({} if pairs is None else {"pair_set": _check_pairs(pairs)})
    driver = _check_optimizer_proxy(optimizer_proxy, protocol, measure["pair_set"])
    with contextlib.ExitStack() as stack:
        directory = None if out is None else stack.enter_context(output_dir(out, "--out"))
        common = {"seed": seed, "target": target, "log": _log, "progress": progress_updates(stack, "measuring")}
        trained = train(config, log=_log)
        if protocol == "frontier":
            sizes = measure | FRONTIER_SIZES[size] | ({} if held_out_windows is None else {"n_eval": held_out_windows})
            sizes |= {} if driver is None else {"optimizer_variant": driver}
            result = validate_frontier(trained, sensitivity_split=split, **common, **sizes)
        else:
            sizes = measure | {"n_configs": configs, "n_fit": fit_configs, "scheme": QUANTISERS[quantiser or "default"]}
            result = run_validation(trained, granularity=granularity, **common, **sizes)
        payload = result.to_json()
        if directory is not None:
            files = write_outputs(directory, result)
            _log(f"wrote {' and '.join(map(str, files))}")
    if json_output:
        print(json.dumps(payload, allow_nan=False))
        return
    _print_validation(result, payload, target, protocol)


def _check_validate_options(configs, fit_configs, seed, size, granularity, protocol, target, held_out_windows, lm_seed):
    """One-line errors for ``proxy validate``'s options, before any LM is trained."""
    from cimjax.quant.measured import TARGETS
    from cimjax.report.proxy_validation import GRANULARITIES, PROTOCOLS, SIZES

    validation.integer("--configs", configs, 3, MAX_CONFIGS)
    if fit_configs is not None:
        validation.integer("--fit-configs", fit_configs, 1, MAX_CONFIGS)
    validation.seed("--seed", seed)
    validation.seed("--lm-seed", lm_seed)
    if size not in SIZES:
        raise validation.fail("--size", size, f"allowed: {', '.join(SIZES)}")
    if granularity not in GRANULARITIES:
        raise validation.fail("--granularity", granularity, f"allowed: {', '.join(GRANULARITIES)}")
    if protocol not in PROTOCOLS:
        raise validation.fail("--protocol", protocol, f"allowed: {', '.join(PROTOCOLS)}")
    if target not in TARGETS:
        raise validation.fail("--target", target, f"allowed: {', '.join(TARGETS)}")
    if held_out_windows is not None:
        validation.integer("--held-out-windows", held_out_windows, 1, MAX_HELD_OUT)


def _check_quantiser(quantiser: str | None, protocol: str) -> None:
    """One-line errors for ``--quantiser``: a known name, and none but ``checkpoint`` with the frontier protocol
    (it always measures with the checkpoint quantiser)."""
    from cimjax.report.proxy_validation import QUANTISERS

    if quantiser is not None and quantiser not in QUANTISERS:
        raise validation.fail("--quantiser", quantiser, f"allowed: {', '.join(QUANTISERS)}")
    if protocol == "frontier" and quantiser not in (None, "checkpoint"):
        raise validation.fail(
            "--quantiser", quantiser, "allowed with --protocol frontier: checkpoint (what it always measures with)"
        )


def _check_pairs(pairs: str) -> str | None:
    """``--pairs`` checked: a pair set of :data:`cimjax.quant.pairs.PAIR_SETS` or ``none`` (returned as None)."""
    from cimjax.quant.pairs import PAIR_SETS

    if pairs not in (*PAIR_SETS, "none"):
        raise validation.fail("--pairs", pairs, f"allowed: {', '.join((*PAIR_SETS, 'none'))}")
    return None if pairs == "none" else pairs


def _check_optimizer_proxy(optimizer_proxy: str | None, protocol: str, pair_set: str | None) -> str | None:
    """``--optimizer-proxy`` checked: a variant that can drive the optimiser, with the frontier protocol only (the
    random one runs no optimiser), and ``pairwise`` only with pairs measured (not ``--pairs none``)."""
    from cimjax.quant.proxy import OPTIMIZER_VARIANTS

    if optimizer_proxy is None:
        return None
    if optimizer_proxy not in OPTIMIZER_VARIANTS:
        raise validation.fail("--optimizer-proxy", optimizer_proxy, f"allowed: {', '.join(OPTIMIZER_VARIANTS)}")
    if protocol != "frontier":
        raise validation.fail("--optimizer-proxy", optimizer_proxy, "allowed with --protocol frontier only")
    if optimizer_proxy == "pairwise" and pair_set is None:
        raise validation.fail("--optimizer-proxy", optimizer_proxy, "allowed with measured pairs (not --pairs none)")
    return optimizer_proxy


def _check_sensitivity_text(sensitivity_text: str | None, protocol: str) -> str:
    """``--sensitivity-text`` checked (a known split, and only with the frontier protocol, whose checkpoint
    measurement it sets); the split to use."""
    from cimjax.quant.calibration import Calibration

    if sensitivity_text is None:
        return Calibration.sensitivity_split
    if check_sensitivity_text(sensitivity_text) and protocol != "frontier":
        raise ValueError(
            "--sensitivity-text applies to --protocol frontier (the random protocol measures its sensitivities "
            "on training-split windows)"
        )
    return sensitivity_text


def _print_validation(result, payload, target: str, protocol: str) -> None:
    """``proxy validate``'s terminal table: every variant's rank correlation and ratio range."""
    from cimjax.report.proxy_validation import RATIO_BAND, in_ratio_band

    table = Table(
        title=f"proxy vs measured {target}, {result.n_configs} held-out {protocol} assignments (fit on {result.n_fit})",
        caption="tau: Kendall's, rho: Spearman's; in band: measured/predicted within "
        f"[{RATIO_BAND[0]}, {RATIO_BAND[1]}]",
    )
    for col in ("variant", "tau", "rho", "measured/predicted", "in band", "fitted"):
        table.add_column(col)
    for v in sorted(result.variants, key=lambda v: 2.0 if v.kendall_tau is None else -v.kendall_tau):
        name = v.name + (" (optimizer proxy)" if v.name == payload["optimizer_proxy"] else "")
        ratios = f"{min(v.ratios):.2f} to {max(v.ratios):.2f}"
        tau, rho = (f"{x:.3f}" if x is not None else "n/a" for x in (v.kendall_tau, v.spearman))
        in_band = f"{in_ratio_band(v.ratios).sum()}/{len(v.ratios)}"
        table.add_row(name, tau, rho, ratios, in_band, "yes" if v.fitted else "no")
    stdout.print(table)
    reliability = payload.get("reliability")  # the frontier protocol's: how far its measurements can rank
    if reliability is not None:
        within = ", ".join(f"{b} {x:.0%}" for b, x in reliability["resolved_within_budget"].items())
        split, own = reliability["split_half_tau"], reliability["variants"][payload["optimizer_proxy"]]
        stdout.print(
            f"measurements: split-half tau {'n/a' if split is None else f'{split:.3f}'}, "
            f"{reliability['resolved_pairs']:.0%} of pairs resolved (within {within}); "
            f"{payload['optimizer_proxy']} over the resolved pairs: tau "
            + ("n/a" if own["resolved_pair_tau"] is None else f"{own['resolved_pair_tau']:.3f}")
        )
        if "cross_seed" in own:
            stdout.print(
                f"{payload['optimizer_proxy']} orders as measured "
                + "; ".join(
                    f"{own[g]['concordant']} of {own[g]['pairs']} {g.replace('_', '-')} pairs"
                    for g in ("across_budgets", "same_seed", "cross_seed")
                )
            )
    reference = payload.get("check_window_reference")  # the frontier's: its own measurement on the check windows
    if reference is not None:
        tau = "n/a" if reference["kendall_tau"] is None else f"{reference['kendall_tau']:.3f}"
        stdout.print(
            f"reference: each assignment's own measurement on the check windows as the prediction: tau {tau}, "
            f"measured/predicted {reference['ratio_min']:.2f} to {reference['ratio_max']:.2f}"
        )
    m = result.model
    stdout.print(
        f"model: {m['n_params']} parameters, {m['train_steps']} steps in {m['train_seconds']:.0f} s, "
        f"final train loss {m['final_train_loss']:.4f}, validation loss {m['val_loss']:.4f} nats/token"
    )


@proxy_app.command()
@user_errors
def export(
    out: Annotated[str, typer.Option(help="Directory to write config.json and model.safetensors into.")],
    size: Annotated[
        str, typer.Option(help="Which trained LM: benchmark or tiny (byte-level), or subword (8 layers, BPE).")
    ] = "benchmark",
) -> None:
    """Write a trained LM (trained now or loaded from the cache) as a Hugging Face checkpoint (with its
    tokenizer.json for the sub-word model)."""
    from cimjax.lm import save_checkpoint
    from cimjax.quant.train import train
    from cimjax.report.proxy_validation import SIZES

    configs = {name: config for name, (config, _) in SIZES.items()}
    if size not in configs:
        raise ValueError(f"--size {size!r} is not known; allowed: {', '.join(configs)}")
    with output_dir(out, "--out") as directory:  # checked before training, locked while written
        trained = train(configs[size], log=_log)
        save_checkpoint(trained.model, directory, tokenizer=trained.tokenizer)
    _log(f"wrote {directory / 'config.json'} and {directory / 'model.safetensors'} ({trained.n_params} parameters)")


def _sensitivity_tables(payload: dict, title: str) -> list:
    """The per-element Hessian diagonals with the points as rows and the layers as columns, in as many tables
    of consecutive layers as the terminal's width needs, so every value is printed whole (18 columns of
    numbers, one per point, would be cut to a few characters each)."""
    rows = payload["hessian_per_element"]
    label = max(len(name) for name in payload["points"]) + 3  # a column's text, padding and border
    per_table = max(1, (stdout.width - label - 1) // (len("-1.00e-05") + 3))
    tables = []
    for start in range(0, len(rows), per_table):
        layers = range(start, min(start + per_table, len(rows)))
        table = Table(title=title if start == 0 else None)
        table.add_column("point")
        for layer in layers:
            table.add_column(f"layer {layer}", justify="right")
        for name in payload["points"]:
            table.add_row(name, *(f"{rows[layer][name]:.2e}" for layer in layers))
        tables.append(table)
    return tables


@proxy_app.command()
@user_errors
def sensitivities(
    checkpoint: Annotated[Path, typer.Option(help="A Hugging Face checkpoint directory (config.json + safetensors).")],
    out: Annotated[
        str | None, typer.Option(help="Write everything measured here (for `cimjax optimize --sensitivities`).")
    ] = None,
    windows: Annotated[int, typer.Option(help="Calibration sequences.")] = 16,
    seq_len: Annotated[int, typer.Option(help="Tokens per calibration sequence.")] = 128,
    samples: Annotated[int, typer.Option(help="Hutchinson / output-MSE samples.")] = 4,
    seed: Annotated[int, typer.Option(help="Seeds the calibration windows and the samples.")] = 0,
    check_windows: Annotated[
        int, typer.Option(help="Validation-split windows whole assignments (budgets, fit set) are measured on.")
    ] = 64,
    gptq: GptqOpt = None,
    gptq_windows: GptqWindowsOpt = None,
    sensitivity_text: SensitivityTextOpt = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
) -> None:
    """Per-layer, per-tensor sensitivities of a real checkpoint, its measured uniform INT8..INT2 losses, and
    the proxy at uniform INT8/6/4. Cached under the cache directory by the checkpoint's content and the
    quantiser. The weights are quantised by GPTQ (--no-gptq: rounded to nearest), the budgets included; the
    --out file says which, so `cimjax optimize --sensitivities FILE` measures with it too.

    Calibration text is the pydoc corpus, in the ids of the checkpoint's tokenizer.json when it has one, else
    as byte-valued token ids (for a subword vocabulary without tokenizer.json the sensitivities then describe
    the model on unusual input; the output says so).
    """
    from cimjax.quant.measured import checkpoint_scheme, for_checkpoint

    if out is not None:  # before measuring: minutes of work never end in a path that cannot be written
        check_output_file(out, "--out")
    sizes = {"--windows": windows, "--seq-len": seq_len, "--check-windows": check_windows}
    calibration = checkpoint_calibration(checkpoint, sizes, seed, (gptq, gptq_windows), sensitivity_text, samples)
    scheme = checkpoint_scheme(gptq)
    with contextlib.ExitStack() as bar:
        measured = for_checkpoint(
            checkpoint, calibration, log=_log, scheme=scheme, progress=progress_updates(bar, "measuring")
        )
    if out is not None:
        measured.save(out, flag="--out")
        _log(f"wrote {out}")
    payload = measured.report(checkpoint)
    if json_output:
        print(json.dumps(payload, allow_nan=False))
        return
    for table in _sensitivity_tables(payload, f"sensitivities of {checkpoint} (mean Hessian diagonal per element)"):
        stdout.print(table)
    stdout.print(f"full-precision calibration loss {payload['base_loss']:.4f} nats/token")
    budgets = payload["measured_budgets"]
    stdout.print("measured (uniform W=A=KV): " + ", ".join(f"{k} {v:.3g}" for k, v in budgets.items()) + " nats/token")
    for name, budgets in payload["budgets"].items():
        stdout.print(f"{name}: " + ", ".join(f"{k} {v:.3g}" for k, v in budgets.items()) + " nats/token")
